"""Read models of the scoring service."""

from __future__ import annotations

import json
from collections import defaultdict
from collections.abc import Awaitable, Callable, Sequence
from datetime import date

from contracts.topics import DOSSIERS_EVENTS, PLANS_EVENTS, SURVEYS_EVENTS
from eventkit.pg import Connection, Migration
from eventkit.projection import ConsumedEvent, Projection
from services.scoring.domain import count_activity
from services.scoring.domain.dossier import EVENT_TYPES, Contribution, DossierRow, UnitStamp, contributions, fold
from services.scoring.domain.periods import STORED_KINDS, period_start

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

# (unitcode, provincecode, legacy district or '', period kind, period start, counter)
_CounterKey = tuple[str, str, str, str, date, str]

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
    """Per-dossier facts and verdicts, and per (unit, period, counter) sums, from the dossier events.

    One batch = three statements whatever its size: lock and read the batch's dossiers, upsert them
    (``unnest``), add the counter deltas (``unnest``). A dossier's old contributions are stored with it and
    subtracted before its new ones are added, so re-emitted verdicts replace, late facts move a dossier to
    the period it belongs to, and the counters always equal a recount of the dossiers (what ``chiso scoring
    verify`` will check). The runner makes the batch exactly once (offsets in the same transaction).
    """

    name = "scoring.dossier_indicators"
    topics = (DOSSIERS_EVENTS,)
    event_types = EVENT_TYPES
    dedupe_event_ids = False  # the relay publishes the canonical topic exactly once; rows replace anyway
    migrations = (_DOSSIER_TABLES,)

    def __init__(self, legacy_district_of: LegacyDistrictOf | None = None, on_change: ChangeHook | None = None) -> None:
        self._district_of = legacy_district_of or (lambda code: code if len(code) == 3 else None)
        self._districts: dict[str, str | None] = {}
        self._on_change = on_change  # subscriptions: marks the changed (unit, period) keys in this transaction

    def _stamp(self, event: ConsumedEvent) -> UnitStamp:
        a = event.attributes
        legacy = a.legacyunitcode
        district = None
        if legacy is not None:
            if legacy not in self._districts:
                self._districts[legacy] = self._district_of(legacy)
            district = self._districts[legacy]
        return UnitStamp(a.unitcode, a.provincecode, legacy, district)

    async def apply(self, conn: Connection, events: Sequence[ConsumedEvent]) -> None:
        """Fold the batch into the dossiers it touches and move the counters by the difference."""
        by_dossier: dict[str, list[ConsumedEvent]] = defaultdict(list)
        for event in events:
            by_dossier[event.data.dossier_id].append(event)  # type: ignore[attr-defined]
        ids = sorted(by_dossier)  # one lock order for every transaction: no deadlock between replicas
        stored = await conn.fetch(
            """SELECT dossier_id, unitcode, provincecode, legacy_unit, legacy_district, state,
                      contrib_keys, contrib_days, contrib_values
               FROM dossier_facts WHERE dossier_id = ANY($1::text[]) ORDER BY dossier_id FOR UPDATE""",
            ids,
        )
        old: dict[str, tuple[DossierRow, tuple[Contribution, ...]]] = {}
        for r in stored:
            unit = UnitStamp(r["unitcode"], r["provincecode"], r["legacy_unit"], r["legacy_district"])
            made = tuple(
                Contribution(k, d, v)
                for k, d, v in zip(r["contrib_keys"], r["contrib_days"], r["contrib_values"], strict=True)
            )
            old[r["dossier_id"]] = (DossierRow.from_json(unit, json.loads(r["state"])), made)
        delta: dict[_CounterKey, float] = defaultdict(float)
        new_rows: list[tuple[DossierRow, tuple[Contribution, ...]]] = []
        changes: list[DossierChange] = []
        for dossier_id in ids:
            previous = old.get(dossier_id)
            row: DossierRow | None = previous[0] if previous else None
            for event in by_dossier[dossier_id]:
                stamp = self._stamp(event)
                if row is not None and stamp.legacy_unit is None and row.unit.legacy_unit is not None:
                    # derived events may omit the legacy code; the dossier keeps the one it was received with
                    stamp = UnitStamp(
                        stamp.unitcode, stamp.provincecode, row.unit.legacy_unit, row.unit.legacy_district
                    )
                row = fold(row, dossier_id, stamp, event.data)
            assert row is not None
            made = contributions(row)
            if previous is not None:
                _add(delta, previous[0].unit, previous[1], -1.0)
            _add(delta, row.unit, made, 1.0)
            new_rows.append((row, made))
            changes.append((previous[0] if previous else None, previous[1] if previous else (), row, made))
        await _upsert_dossiers(conn, new_rows)
        await _add_counters(conn, delta)
        if self._on_change is not None:
            await self._on_change(conn, changes)


def _add(delta: dict[_CounterKey, float], unit: UnitStamp, made: Sequence[Contribution], sign: float) -> None:
    district = unit.legacy_district or ""
    for c in made:
        for kind in STORED_KINDS:
            delta[(unit.unitcode, unit.provincecode, district, kind.value, period_start(kind, c.day), c.key)] += (
                sign * c.value
            )


async def _upsert_dossiers(conn: Connection, rows: Sequence[tuple[DossierRow, tuple[Contribution, ...]]]) -> None:
    await conn.execute(
        """INSERT INTO dossier_facts (dossier_id, unitcode, provincecode, legacy_unit, legacy_district,
                                      received_at, resolved_at, overdue_due_at, state,
                                      contrib_keys, contrib_days, contrib_values)
           SELECT d.id, d.unit, d.province, d.legacy, d.district, d.received, d.resolved, d.overdue, d.state::jsonb,
                  ARRAY(SELECT jsonb_array_elements_text(d.c -> 0)),
                  ARRAY(SELECT jsonb_array_elements_text(d.c -> 1))::date[],
                  ARRAY(SELECT jsonb_array_elements_text(d.c -> 2))::float8[]
           FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::text[], $6::timestamptz[],
                       $7::timestamptz[], $8::timestamptz[], $9::text[], $10::jsonb[])
                AS d(id, unit, province, legacy, district, received, resolved, overdue, state, c)
           ON CONFLICT (dossier_id) DO UPDATE SET
               unitcode = EXCLUDED.unitcode, provincecode = EXCLUDED.provincecode,
               legacy_unit = EXCLUDED.legacy_unit, legacy_district = EXCLUDED.legacy_district,
               received_at = EXCLUDED.received_at, resolved_at = EXCLUDED.resolved_at,
               overdue_due_at = EXCLUDED.overdue_due_at, state = EXCLUDED.state,
               contrib_keys = EXCLUDED.contrib_keys, contrib_days = EXCLUDED.contrib_days,
               contrib_values = EXCLUDED.contrib_values, updated_at = now()""",
        [r.dossier_id for r, _ in rows],
        [r.unit.unitcode for r, _ in rows],
        [r.unit.provincecode for r, _ in rows],
        [r.unit.legacy_unit for r, _ in rows],
        [r.unit.legacy_district for r, _ in rows],
        [r.received_at for r, _ in rows],
        [r.resolved_at for r, _ in rows],
        [r.overdue_due_at for r, _ in rows],
        [json.dumps(r.to_json()) for r, _ in rows],
        # the contributions travel as one JSON array per dossier: asyncpg cannot bind arrays of arrays
        # of different lengths, and this keeps the upsert a single statement
        [json.dumps([[c.key for c in m], [c.day.isoformat() for c in m], [c.value for c in m]]) for _, m in rows],
    )


async def _add_counters(conn: Connection, delta: dict[_CounterKey, float]) -> None:
    keys = sorted(k for k, v in delta.items() if abs(v) > 1e-12)
    if not keys:
        return
    await conn.execute(
        """INSERT INTO indicator_counters (unitcode, provincecode, legacy_district, period_kind, period_start,
                                           counter, value)
           SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::date[], $6::text[], $7::float8[])
           ON CONFLICT (unitcode, period_kind, period_start, counter, legacy_district)
           DO UPDATE SET value = indicator_counters.value + EXCLUDED.value, provincecode = EXCLUDED.provincecode""",
        [k[0] for k in keys],
        [k[1] for k in keys],
        [k[2] for k in keys],
        [k[3] for k in keys],
        [k[4] for k in keys],
        [k[5] for k in keys],
        [delta[k] for k in keys],
    )
