"""Read models of the scoring service."""

from __future__ import annotations

import json
import math
from collections import defaultdict
from collections.abc import Awaitable, Callable, Mapping, Sequence
from datetime import date, datetime
from json.encoder import encode_basestring_ascii
from operator import attrgetter
from typing import Any

import orjson

from contracts.base import EventPayload
from contracts.topics import DOSSIERS_EVENTS, PLANS_EVENTS, SURVEYS_EVENTS
from eventkit.pg import Connection, Migration
from eventkit.projection import BatchConflict, ConsumedEvent, Projection
from services.scoring.domain import count_activity
from services.scoring.domain.dossier import (
    EVENT_TYPES,
    STATE_FIELDS,
    Contribution,
    DossierRow,
    UnitStamp,
    contributions,
    fold_all,
)
from services.scoring.domain.periods import PeriodKind, period_start
from services.scoring.pg_text import date_array, float_array, instant, text_array

__all__ = ["ChangeHook", "DossierChange", "DossierIndicatorsProjection", "LegacyDistrictOf", "UnitActivityProjection"]


class UnitActivityProjection(Projection):
    """How many events of each type happened per unit and Vietnamese calendar day.

    The first read model of the system and the check that the pipeline is whole: every canonical event of
    every service lands in exactly one row, by event time (a late event updates the day it belongs to).
    Reads CloudEvents headers only, so it never needs a contract upgrade to count a new event type.
    """

    name = "scoring.unit_activity"
    topics = (DOSSIERS_EVENTS, SURVEYS_EVENTS, PLANS_EVENTS)
    validate_payloads = False
    migrations = (
        Migration(
            "0001_unit_activity",
            """
            CREATE TABLE unit_activity (
                unitcode      text NOT NULL,
                provincecode  text NOT NULL,
                day           date NOT NULL,
                event_type    text NOT NULL,
                events        bigint NOT NULL,
                PRIMARY KEY (unitcode, day, event_type)
            );
            CREATE INDEX unit_activity_province_day ON unit_activity (provincecode, day);
            """,
        ),
    )

    async def apply(self, conn: Connection, events: Sequence[ConsumedEvent]) -> None:
        """One pre-aggregated upsert per batch."""
        counts = count_activity(
            (e.attributes.unitcode, e.attributes.provincecode, e.attributes.time, e.attributes.type) for e in events
        )
        keys = sorted(counts)
        await conn.execute(
            """INSERT INTO unit_activity (unitcode, provincecode, day, event_type, events)
               SELECT * FROM unnest($1::text[], $2::text[], $3::date[], $4::text[], $5::bigint[])
               ON CONFLICT (unitcode, day, event_type)
               DO UPDATE SET events = unit_activity.events + EXCLUDED.events""",
            [k[0] for k in keys],
            [k[1] for k in keys],
            [k[2] for k in keys],
            [k[3] for k in keys],
            [counts[k] for k in keys],
        )


#: the legacy district (3 digits) a pre-2025 unit code belonged to, or None
LegacyDistrictOf = Callable[[str], str | None]
#: (previous row or None, its contributions, new row, its contributions) of each dossier a batch changed
DossierChange = tuple[DossierRow | None, Sequence[Contribution], DossierRow, Sequence[Contribution]]
#: called inside the batch's transaction with the dossiers it changed (services.scoring.subscriptions)
ChangeHook = Callable[[Connection, Sequence[DossierChange]], Awaitable[None]]

_DOSSIER_TABLES = Migration(
    "0001_dossier_indicators",
    """
    CREATE TABLE dossier_facts (
        dossier_id       text PRIMARY KEY,
        unitcode         text NOT NULL,
        provincecode     text NOT NULL,
        legacy_unit      text,
        legacy_district  text,
        received_at      timestamptz,
        resolved_at      timestamptz,
        overdue_due_at   timestamptz,
        state            jsonb NOT NULL,
        contrib_keys     text[] NOT NULL,
        contrib_days     date[] NOT NULL,
        contrib_values   float8[] NOT NULL,
        updated_at       timestamptz NOT NULL DEFAULT now()
    );
    CREATE INDEX dossier_facts_unit ON dossier_facts (unitcode, received_at);
    CREATE INDEX dossier_facts_province ON dossier_facts (provincecode, received_at);
    CREATE INDEX dossier_facts_district ON dossier_facts (legacy_district, received_at)
        WHERE legacy_district IS NOT NULL;
    CREATE TABLE indicator_counters (
        unitcode         text NOT NULL,
        provincecode     text NOT NULL,
        legacy_district  text NOT NULL,
        period_kind      text NOT NULL,
        period_start     date NOT NULL,
        counter          text NOT NULL,
        value            float8 NOT NULL,
        PRIMARY KEY (unitcode, period_kind, period_start, counter, legacy_district)
    );
    CREATE INDEX indicator_counters_province ON indicator_counters (provincecode, period_kind, period_start);
    CREATE INDEX indicator_counters_district ON indicator_counters (legacy_district, period_kind, period_start)
        WHERE legacy_district <> '';
    """,
)


class DossierIndicatorsProjection(Projection):
    """Per-dossier facts and verdicts, and per (unit, month, counter) sums, from the dossier events.

    A fixed number of statements per batch whatever its size: lock and read the batch's dossiers; stage the
    changed rows and the counter deltas by binary COPY into temporary tables and merge each with one
    ``INSERT ... ON CONFLICT``. A dossier's events of the batch are folded into one row, and its counter
    deltas are summed per (unit, month, counter), so the Python work per event stays small (quarters and
    years are sums of months, taken on read). A dossier's old contributions are stored with it and subtracted
    before its new ones are added, so re-emitted verdicts replace, late facts move a dossier to the period it
    belongs to, and the counters always equal a recount of the dossiers (what ``chiso scoring verify``
    checks); a dossier the batch leaves unchanged is not written at all. The runner makes the batch exactly
    once (offsets in the same transaction).
    """

    name = "scoring.dossier_indicators"
    topics = (DOSSIERS_EVENTS,)
    event_types = EVENT_TYPES
    dedupe_event_ids = False  # the relay publishes the canonical topic exactly once; rows replace anyway
    migrations = (
        _DOSSIER_TABLES,
        # every batch adds to the same few thousand counter rows: with room left on each page an update
        # stays on its page and skips the three indexes (a HOT update: no indexed column changes)
        Migration("0002_counters_fillfactor", "ALTER TABLE indicator_counters SET (fillfactor = 50);"),
        # months only from here on: a quarter or a year is summed from its months on read (a third of the rows
        # every batch updated); the months already stored hold every contribution, so nothing is recomputed
        Migration("0003_counters_months_only", "DELETE FROM indicator_counters WHERE period_kind <> 'month';"),
    )

    def __init__(self, legacy_district_of: LegacyDistrictOf | None = None, on_change: ChangeHook | None = None) -> None:
        self._district_of = legacy_district_of or (lambda code: code if len(code) == 3 else None)
        self._districts: dict[str, str | None] = {}
        self._stamps: dict[tuple[str, str, str | None], UnitStamp] = {}
        self._on_change = on_change  # subscriptions: marks the changed (unit, period) keys in this transaction

    def _stamp(self, event: ConsumedEvent) -> UnitStamp:
        a = event.attributes
        key = (a.unitcode, a.provincecode, a.legacyunitcode)
        stamp = self._stamps.get(key)
        if stamp is None:  # a few hundred distinct units: one stamp object each, not one per event
            legacy = a.legacyunitcode
            if legacy is not None and legacy not in self._districts:
                self._districts[legacy] = self._district_of(legacy)
            district = self._districts[legacy] if legacy is not None else None
            stamp = self._stamps[key] = UnitStamp(a.unitcode, a.provincecode, legacy, district)
        return stamp

    async def apply(self, conn: Connection, events: Sequence[ConsumedEvent]) -> None:
        """Fold the batch into the dossiers it touches and move the counters by the difference."""
        by_dossier: dict[str, list[tuple[UnitStamp, EventPayload]]] = {}
        for event in events:
            data = event.data
            dossier_id: str = data.dossier_id  # type: ignore[attr-defined]
            items = by_dossier.get(dossier_id)
            if items is None:
                items = by_dossier[dossier_id] = []
            items.append((self._stamp(event), data))
        ids = sorted(by_dossier)  # one lock order for every transaction: no deadlock between replicas
        stored = await conn.fetch(
            """SELECT dossier_id, unitcode, provincecode, legacy_unit, legacy_district, state::text AS state,
                      contrib_keys, contrib_days, contrib_values
               FROM dossier_facts WHERE dossier_id = ANY($1::text[]) ORDER BY dossier_id FOR UPDATE""",
            ids,
        )
        old: dict[str, tuple[DossierRow, tuple[Contribution, ...]]] = {}
        for r in stored:
            unit = UnitStamp(r["unitcode"], r["provincecode"], r["legacy_unit"], r["legacy_district"])
            made = tuple(map(Contribution, r["contrib_keys"], r["contrib_days"], r["contrib_values"]))
            old[r["dossier_id"]] = (DossierRow.from_json(unit, json.loads(r["state"])), made)
        delta = _Deltas()
        new_rows: list[tuple[DossierRow, tuple[Contribution, ...]]] = []
        changes: list[DossierChange] = []
        for dossier_id in ids:
            previous = old.get(dossier_id)
            row = fold_all(previous[0] if previous else None, dossier_id, by_dossier[dossier_id])
            made = contributions(row)
            if previous is not None:
                if previous[0] == row and previous[1] == made:
                    continue  # nothing moved (e.g. a verdict re-emitted unchanged): no write, no dirty key
                delta.add(previous[0].unit, previous[1], -1.0)
            delta.add(row.unit, made, 1.0)
            new_rows.append((row, made))
            changes.append((previous[0] if previous else None, previous[1] if previous else (), row, made))
        if not new_rows:
            return
        await _stage(conn)
        existed = await _upsert_dossiers(conn, new_rows)
        if raced := [c[2].dossier_id for c in changes if c[0] is None and c[2].dossier_id in existed]:
            # a dossier this batch found unstored was inserted meanwhile by another transaction: its events came
            # on more than one partition (the canonical topics are keyed by dossier, but a record keyed otherwise
            # must not be counted twice) and another member of the group projected some. Folded without them,
            # this batch would overwrite that row and leave its contributions in the counters: fail the batch
            # (rolled back); the runner retries it, and the row, committed by then, is read and locked
            raise ConcurrentDossierWrite(raced)
        if self._on_change is not None:
            await self._on_change(conn, changes)
        # the counters last: their rows are shared by every transaction (of the other members of the consumer
        # group too), and each holds their locks until it commits; the hook's Python work and its inserts
        # (into rows of their own) stay out of that window
        await _add_counters(conn, delta.rows())


class ConcurrentDossierWrite(BatchConflict):
    """Another transaction inserted dossiers this batch took for new (see :meth:`DossierIndicatorsProjection.apply`)."""

    def __init__(self, dossier_ids: Sequence[str]) -> None:
        super().__init__(f"dossiers inserted by a concurrent transaction: {', '.join(dossier_ids[:5])}")
        self.dossier_ids = tuple(dossier_ids)


class _Deltas:
    """Counter deltas of a batch, summed per (unit, month, counter): one dict update per contribution.

    Only months are stored: a quarter or a year is the sum of its months, taken on read
    (:func:`services.scoring.readmodel.counters`), so each contribution moves one counter row, not three.
    """

    __slots__ = ("_month_of", "_months")

    def __init__(self) -> None:
        # (unitcode, provincecode, legacy district or '', month start, counter) -> delta
        self._months: defaultdict[tuple[str, str, str, date, str], float] = defaultdict(float)
        self._month_of: dict[date, date] = {}

    def add(self, unit: UnitStamp, made: Sequence[Contribution], sign: float) -> None:
        months, month_of = self._months, self._month_of
        head = (unit.unitcode, unit.provincecode, unit.legacy_district or "")
        for key, day, value in made:
            month = month_of.get(day)
            if month is None:
                month = month_of[day] = period_start(PeriodKind.MONTH, day)
            months[(*head, month, key)] += sign * value

    def rows(self) -> list[tuple[str, str, str, str, date, str, float]]:
        """Every (unit, province, district, 'month', month start, counter, delta) of the batch (zeros dropped)."""
        month = PeriodKind.MONTH.value
        return [
            (unit, province, district, month, start, key, value)
            for (unit, province, district, start, key), value in self._months.items()
            if abs(value) > 1e-12
        ]


# Staging tables for the batch's rows: filled by binary COPY (asyncpg encodes whole records in one pass; bound
# unnest() arrays cost a type check per element), then merged by one INSERT ... ON CONFLICT. The dossier rows'
# timestamps and contribution arrays travel as text (services.scoring.pg_text: asyncpg's binary encoding of
# those cost more than the rest of the row) and are cast by the INSERT. Temporary and emptied at commit:
# nothing of a rolled-back batch survives, and each connection has its own.
_STAGING = """
CREATE TEMP TABLE IF NOT EXISTS scoring_dossier_rows_in (
    dossier_id text, unitcode text, provincecode text, legacy_unit text, legacy_district text,
    received_at text, resolved_at text, overdue_due_at text, state text,
    contrib_keys text, contrib_days text, contrib_values text
) ON COMMIT DELETE ROWS;
CREATE TEMP TABLE IF NOT EXISTS scoring_counters_in (
    unitcode text, provincecode text, legacy_district text, period_kind text, period_start date, counter text,
    value float8
) ON COMMIT DELETE ROWS;
"""
_DOSSIER_COLUMNS = (
    "dossier_id",
    "unitcode",
    "provincecode",
    "legacy_unit",
    "legacy_district",
    "received_at",
    "resolved_at",
    "overdue_due_at",
    "state",
    "contrib_keys",
    "contrib_days",
    "contrib_values",
)
_COUNTER_COLUMNS = ("unitcode", "provincecode", "legacy_district", "period_kind", "period_start", "counter", "value")


#: each state field's JSON key, encoded once
_STATE_KEYS: tuple[tuple[str, str], ...] = tuple((name, f"{encode_basestring_ascii(name)}:") for name in STATE_FIELDS)
_state_values = attrgetter(*STATE_FIELDS)


def _state_json(row: DossierRow) -> str:
    """The row's ``state`` document (what :meth:`DossierRow.to_json` holds) as JSON text.

    This runs once per dossier of every batch: orjson writes the document about three times faster than
    :func:`_state_json_by_field`, and writes the same JSON value (``tests/unit/test_scoring_state_json.py``).
    Where orjson would write something else — an instant (orjson rounds a UTC offset to whole minutes; they go
    through ``isoformat`` here), a non-finite float (orjson writes null) — or cannot write a value (an integer
    beyond 64 bits, a mapping that is not a dict), the field-by-field writer is used.
    """
    values = _state_values(row)
    for value in values:
        if type(value) is float and value - value != 0.0:  # NaN or an infinity
            return _state_json_by_field(row)
    try:
        return orjson.dumps(
            dict(zip(STATE_FIELDS, values, strict=True)), default=_instant, option=orjson.OPT_PASSTHROUGH_DATETIME
        ).decode()
    except TypeError:
        return _state_json_by_field(row)


def _instant(value: object) -> str:
    if type(value) is datetime:
        return value.isoformat()
    raise TypeError  # anything else orjson cannot write: the caller falls back


def _state_json_by_field(row: DossierRow) -> str:
    """The ``state`` document written field by field (the reference for :func:`_state_json`, and its fallback).

    Anything but the plain scalar types goes through :func:`json.dumps`.
    """
    parts = []
    for name, key in _STATE_KEYS:
        value = getattr(row, name)
        if value is None:
            text = "null"
        elif value is True:
            text = "true"
        elif value is False:
            text = "false"
        elif type(value) is str:
            text = encode_basestring_ascii(value)
        elif type(value) is datetime:
            text = f'"{value.isoformat()}"'
        elif type(value) is int or (type(value) is float and math.isfinite(value)):
            text = repr(value)
        else:  # the apology mapping, and anything a newer field brings
            text = json.dumps(dict(value) if isinstance(value, Mapping) else value)
        parts.append(key + text)
    return "{" + ",".join(parts) + "}"


async def _stage(conn: Connection) -> None:
    # IF NOT EXISTS: one cheap statement per batch instead of tracking which pooled connection has the tables
    await conn.execute("SET LOCAL client_min_messages = warning;" + _STAGING)


#: bound of each array-text memo below (cleared when full: a rare refill beats an unbounded dict)
_MEMO_SIZE = 4096
# the text of the contribution keys and days of a dossier, by their tuple: most dossiers of a batch add to one
# of a few dozen key lists and their days fall in a few dozen days, so the same tuples come back all the time
# (strings and dates compare equal only when they are the same value, so a hit is exactly the text the function
# would build; the values are not memoised: 0.0 and -0.0 compare equal but are written differently)
_keys_text: dict[tuple[str, ...], str] = {}
_days_text: dict[tuple[date, ...], str] = {}


def _memo_text(memo: dict[Any, str], build: Callable[[Any], str], items: tuple[Any, ...]) -> str:
    text = memo.get(items)
    if text is None:
        if len(memo) >= _MEMO_SIZE:
            memo.clear()
        text = memo[items] = build(items)
    return text


async def _upsert_dossiers(
    conn: Connection, rows: Sequence[tuple[DossierRow, tuple[Contribution, ...]]]
) -> frozenset[str]:
    """Write the batch's dossier rows; the ids of those that existed already (updated, not inserted)."""
    records = []
    keys_text, days_text = _keys_text, _days_text
    for r, made in rows:
        unit = r.unit
        keys, days, values = zip(*made, strict=True) if made else ((), (), ())
        records.append(
            (
                r.dossier_id,
                unit.unitcode,
                unit.provincecode,
                unit.legacy_unit,
                unit.legacy_district,
                instant(r.received_at),
                instant(r.resolved_at),
                instant(r.overdue_due_at),
                _state_json(r),
                keys_text.get(keys) or _memo_text(keys_text, text_array, keys),
                days_text.get(days) or _memo_text(days_text, date_array, days),
                float_array(values),
            )
        )
    await conn.copy_records_to_table(
        "scoring_dossier_rows_in", schema_name="pg_temp", columns=_DOSSIER_COLUMNS, records=records
    )
    # xmax = 0 on the returned row version: inserted by this statement (an ON CONFLICT update sets it)
    updated = await conn.fetch(
        """WITH up AS (
           INSERT INTO dossier_facts (dossier_id, unitcode, provincecode, legacy_unit, legacy_district,
                                      received_at, resolved_at, overdue_due_at, state,
                                      contrib_keys, contrib_days, contrib_values)
           SELECT dossier_id, unitcode, provincecode, legacy_unit, legacy_district, received_at::timestamptz,
                  resolved_at::timestamptz, overdue_due_at::timestamptz, state::jsonb, contrib_keys::text[],
                  contrib_days::date[], contrib_values::float8[]
           FROM pg_temp.scoring_dossier_rows_in ORDER BY dossier_id
           ON CONFLICT (dossier_id) DO UPDATE SET
               unitcode = EXCLUDED.unitcode, provincecode = EXCLUDED.provincecode,
               legacy_unit = EXCLUDED.legacy_unit, legacy_district = EXCLUDED.legacy_district,
               received_at = EXCLUDED.received_at, resolved_at = EXCLUDED.resolved_at,
               overdue_due_at = EXCLUDED.overdue_due_at, state = EXCLUDED.state,
               contrib_keys = EXCLUDED.contrib_keys, contrib_days = EXCLUDED.contrib_days,
               contrib_values = EXCLUDED.contrib_values, updated_at = now()
           RETURNING dossier_id, xmax)
           SELECT dossier_id FROM up WHERE xmax <> 0""",
    )
    return frozenset(r[0] for r in updated)


async def _add_counters(conn: Connection, rows: Sequence[tuple[str, str, str, str, date, str, float]]) -> None:
    if not rows:
        return
    await conn.copy_records_to_table(
        "scoring_counters_in", schema_name="pg_temp", columns=_COUNTER_COLUMNS, records=rows
    )
    # one lock order for every transaction (the primary key's): concurrent batches cannot deadlock
    await conn.execute(
        """INSERT INTO indicator_counters (unitcode, provincecode, legacy_district, period_kind, period_start,
                                           counter, value)
           SELECT unitcode, provincecode, legacy_district, period_kind, period_start, counter, value
           FROM pg_temp.scoring_counters_in ORDER BY unitcode, period_kind, period_start, counter, legacy_district
           ON CONFLICT (unitcode, period_kind, period_start, counter, legacy_district)
           DO UPDATE SET value = indicator_counters.value + EXCLUDED.value, provincecode = EXCLUDED.provincecode"""
    )
