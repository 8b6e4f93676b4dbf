"""Subscriptions: ``indicator updated`` events for district and commune systems, coalesced, exactly once.

How a value reaches a subscriber:

1. the projections record the (unit, period) keys a batch changed in ``scoring_dirty``, in the same
   transaction as their counters (:func:`mark_dirty`, called through the projection's change hook): a
   changed key is never lost, and a rolled-back batch marks nothing;
2. the :class:`IndicatorPublisher` wakes every ``interval`` and, in one transaction, takes the dirty keys,
   recomputes their indicators with the same read-model functions and formulas as the query API, compares
   each value with the last one it published (``scoring_published``), appends an
   :class:`~contracts.scoring.IndicatorUpdated` event for each value that changed to the scoring service's
   own event store (stream = the unit code), records the new values and deletes the keys it handled;
3. eventkit's relay publishes the event store to ``vn.cchc.scoring.indicators`` exactly once (Kafka
   transactions), keyed by the stream id, i.e. the unit code.

Coalescing: a burst of a thousand dossier events for one commune within one interval yields at most one
event per (unit, period, indicator) whose value changed, whatever the burst's size. Units: every commune
(5 digits) and its province (2 digits, the rollup); pre-2025 legacy districts are not published.

Race-free without locking the projections: the dirty table is insert-only for the projections (no row a
publisher deletes is ever updated), and the publisher deletes exactly the rows it read. A batch that
commits while the publisher computes leaves its own rows behind, so the next round recomputes the key (and
publishes only if the value moved). Publishers of several replicas serialise on a transaction-scoped
advisory lock.
"""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections import defaultdict
from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime
from functools import lru_cache
from typing import cast

import asyncpg

from contracts.envelope import Envelope, make_envelope
from contracts.scoring import IndicatorUpdated
from contracts.scoring import NaReason as WireNaReason
from contracts.scoring import PeriodKind as WirePeriodKind
from eventkit.logging import get_logger
from eventkit.pg import Connection, Migration
from eventkit.postgres import PostgresEventStore
from services.scoring.dirty import UnitDay, UnitDaysHook
from services.scoring.domain.activity import VN_TZ
from services.scoring.domain.indicators import SPECS, IndicatorValue, NaReason, OpenCounts, compute
from services.scoring.domain.periods import STORED_KINDS, PeriodKind, period_end, period_start, periods_between
from services.scoring.domain.programme import plan_values, survey_blocks, survey_values
from services.scoring.domain.surveys import Aggregator
from services.scoring.projections import ChangeHook, DossierChange
from services.scoring.readmodel import Scope, counters, open_counts, plan_counts, survey_counters, window

__all__ = [
    "MIGRATIONS",
    "DirtyKey",
    "DossierChange",
    "IndicatorPublisher",
    "ParSource",
    "Published",
    "dirty_keys",
    "dossier_change_hook",
    "indicator_values",
    "mark_dirty",
    "to_payload",
    "unit_day_keys",
    "unit_days_hook",
]

MIGRATIONS = (
    Migration(
        "0001_subscriptions",
        """
        CREATE TABLE scoring_dirty (
            id            bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
            unitcode      text NOT NULL,
            provincecode  text NOT NULL,
            period_kind   text NOT NULL,
            period_start  date NOT NULL
        );
        CREATE TABLE scoring_published (
            unitcode       text NOT NULL,
            period_kind    text NOT NULL,
            period_start   date NOT NULL,
            indicator_key  text NOT NULL,
            value          float8,
            numerator      float8,
            denominator    float8,
            na_reason      text,
            published_at   timestamptz NOT NULL DEFAULT now(),
            PRIMARY KEY (unitcode, period_kind, period_start, indicator_key)
        );
        """,
    ),
)

_log = get_logger("services.scoring.subscriptions")
_LOCK = "SELECT pg_advisory_xact_lock(hashtext('chiso.scoring.indicator_publisher'))"
SOURCE = "urn:chiso:scoring"


@dataclass(frozen=True, slots=True, order=True)
class DirtyKey:
    """A unit (commune, or a province = its rollup) and period whose indicators may have changed."""

    unitcode: str
    provincecode: str
    kind: PeriodKind
    start: date


def _local_day(at: datetime) -> date:
    return at.astimezone(VN_TZ).date()


def dirty_keys(changes: Iterable[DossierChange], today: date) -> set[DirtyKey]:
    """The (unit, period) keys whose indicators a batch of dossier changes can move.

    A dossier moves the periods of its contributions (old and new: a corrected date moves it), and, through
    the live open counts, every period from its receipt to its end (or ``today`` while it is open): it is
    carried over into, or open at the cut-off of, each of them.

    Per batch, the days and the (receipt, end) spans are gathered per unit first and turned into periods
    once per distinct day and span: thousands of dossiers of a batch share a few dozen of each.
    """
    days: dict[tuple[str, str], set[date]] = defaultdict(set)
    spans: dict[tuple[str, str], set[tuple[date, date]]] = defaultdict(set)
    for old, old_made, new, new_made in changes:
        for row, made in ((old, old_made), (new, new_made)):
            if row is None:
                continue
            # a commune marks itself and its province; any other code (province-level work) its province only
            unit = (row.unit.unitcode if len(row.unit.unitcode) == 5 else row.unit.provincecode, row.unit.provincecode)
            days[unit].update(c.day for c in made)
            if row.received_at is not None:
                first = _local_day(row.received_at)
                last = _local_day(row.resolved_at) if row.resolved_at is not None else max(today, first)
                spans[unit].add((first, last))
    for code, province in [*days.keys(), *spans.keys()]:
        if code != province:  # the province rollup moves with each of its communes
            days[(province, province)].update(days.get((code, province), ()))
            spans[(province, province)].update(spans.get((code, province), ()))
    out: set[DirtyKey] = set()
    for unit in days.keys() | spans.keys():
        starts: set[tuple[PeriodKind, date]] = set()
        for day in days.get(unit, ()):
            starts.update(_starts_of(day))
        for first, last in spans.get(unit, ()):
            starts.update(_starts_between(first, last))
        out.update(DirtyKey(unit[0], unit[1], kind, start) for kind, start in starts)
    return out


@lru_cache(maxsize=4096)
def _starts_of(day: date) -> tuple[tuple[PeriodKind, date], ...]:
    return tuple((kind, period_start(kind, day)) for kind in STORED_KINDS)


@lru_cache(maxsize=4096)
def _starts_between(first: date, last: date) -> tuple[tuple[PeriodKind, date], ...]:
    return tuple((kind, start) for kind in STORED_KINDS for start in periods_between(kind, first, last))


async def mark_dirty(conn: Connection, keys: Iterable[DirtyKey]) -> None:
    """Record changed keys inside the caller's (the projection's) transaction; insert-only."""
    ordered = sorted(set(keys))
    if not ordered:
        return
    await conn.execute(
        """INSERT INTO scoring_dirty (unitcode, provincecode, period_kind, period_start)
           SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::date[])""",
        [k.unitcode for k in ordered],
        [k.provincecode for k in ordered],
        [k.kind.value for k in ordered],
        [k.start for k in ordered],
    )


def dossier_change_hook(clock: Callable[[], datetime]) -> ChangeHook:
    """The hook :class:`~services.scoring.projections.DossierIndicatorsProjection` calls with a batch's changes."""

    async def hook(conn: Connection, changes: Sequence[DossierChange]) -> None:
        await mark_dirty(conn, dirty_keys(changes, clock().astimezone(VN_TZ).date()))

    return hook


def unit_day_keys(changed: Iterable[UnitDay]) -> set[DirtyKey]:
    """The keys of the survey and plans projections' changes: the unit (a commune) and its province rollup,
    in the period of each kind (or the one kind given) that contains the day."""
    out: set[DirtyKey] = set()
    for unit, province, day, only in changed:
        units = {unit, province} if len(unit) == 5 else {province}
        for kind in (only,) if only is not None else STORED_KINDS:
            out.update(DirtyKey(u, province, kind, period_start(kind, day)) for u in units)
    return out


def unit_days_hook() -> UnitDaysHook:
    """The hook the survey and plans projections call with a batch's changed (unit, day) keys."""

    async def hook(conn: Connection, changed: Sequence[UnitDay]) -> None:
        await mark_dirty(conn, unit_day_keys(changed))

    return hook


#: the flat PAR values (``par.*``) of every commune of a province for a year (the query API's computation)
ParSource = Callable[[str, int], Awaitable[Mapping[str, Mapping[str, IndicatorValue]]]]


@dataclass(frozen=True, slots=True)
class Published:
    """What subscribers were last told about one indicator: compared before publishing again."""

    value: float | None
    numerator: float | None
    denominator: float | None
    na_reason: str | None


async def indicator_values(
    conn: Connection,
    keys: Iterable[DirtyKey],
    now: datetime,
    *,
    aggregators: Mapping[tuple[str, str], Aggregator] | None = None,
    par: ParSource | None = None,
) -> dict[DirtyKey, dict[str, IndicatorValue]]:
    """Every indicator of each key, computed as the query API computes it (same read model, same specs).

    Dossier indicators always; with ``aggregators``, the survey values (SIPAS, PAPI-proxy) of a key that has
    answers in its period and the tasks / reports rates of a key that has something due in it; with ``par``,
    the PAR Index values (``par.*``) of a commune's year. Five queries per (province, period) whatever the
    number of its communes, plus five for the rollup (and the PAR computation per province and year).
    """
    pool = cast("asyncpg.Pool", conn)  # the read-model functions only call fetch(), which a connection has
    groups: dict[tuple[str, PeriodKind, date], list[DirtyKey]] = defaultdict(list)
    for key in keys:
        groups[(key.provincecode, key.kind, key.start)].append(key)
    out: dict[DirtyKey, dict[str, IndicatorValue]] = {}
    for (province, kind, start), wanted in sorted(groups.items()):
        w = window(kind, start, now)
        scope = Scope("provincecode", province)
        data: dict[tuple[str, date], tuple[dict[str, float], OpenCounts]] = {}
        extra: dict[str, dict[str, IndicatorValue]] = defaultdict(dict)
        communes = [k for k in wanted if k.unitcode != province]
        for by_unit, chosen in ((True, communes), (False, [k for k in wanted if k.unitcode == province])):
            if not chosen:
                continue
            sums = await counters(pool, scope, kind, [start], by_unit=by_unit)
            opened = await open_counts(pool, scope, [w], by_unit=by_unit)
            for k in chosen:
                data[(k.unitcode, start)] = (
                    sums.get((k.unitcode, start), {}),
                    opened.get((k.unitcode, start), OpenCounts()),
                )
            if aggregators is not None:
                answered = await survey_counters(pool, scope, kind, [start], by_unit=by_unit)
                due = await plan_counts(pool, scope, [w], by_unit=by_unit)
                for k in chosen:
                    if (k.unitcode, start) in due:
                        extra[k.unitcode].update(plan_values(due[(k.unitcode, start)]))
                    if (k.unitcode, start) in answered:
                        blocks = survey_blocks(aggregators, answered[(k.unitcode, start)])
                        extra[k.unitcode].update(survey_values(aggregators, blocks))
        if par is not None and kind is PeriodKind.YEAR and communes:
            yearly = await par(province, start.year)
            for k in communes:
                extra[k.unitcode].update(yearly.get(k.unitcode, {}))
        for k in wanted:
            sums_k, opened_k = data[(k.unitcode, start)]
            values = compute(list(SPECS), sums_k, opened_k)
            values.update(extra.get(k.unitcode, {}))
            out[k] = values
    return out


def _published(v: IndicatorValue) -> Published:
    return Published(v.value, v.numerator, v.denominator, v.na_reason.value if v.na_reason else None)


def to_payload(key: DirtyKey, v: IndicatorValue, ruleset: str, computed_at: datetime) -> IndicatorUpdated | None:
    """The wire event of one value; None for a value the contract cannot carry (an indicator not computed)."""
    if v.na_reason is NaReason.NOT_COMPUTED or (v.value is None) == (v.na_reason is None):
        return None
    return IndicatorUpdated(
        indicator_key=v.key,
        period_kind=WirePeriodKind(key.kind.value),
        period_start=key.start,
        period_end=period_end(key.kind, key.start),
        numerator=v.numerator,
        denominator=v.denominator,
        value=v.value,
        na_reason=WireNaReason(v.na_reason.value) if v.na_reason else None,
        ruleset_version=ruleset,
        computed_at=computed_at,
    )


def _now() -> datetime:
    return datetime.now(UTC)


class IndicatorPublisher:
    """The component that turns dirty keys into ``indicator updated`` events (see the module docstring)."""

    name = "scoring.indicator_publisher"

    def __init__(
        self,
        *,
        pool: asyncpg.Pool,
        store: PostgresEventStore,
        ruleset_version: str,
        interval_s: float = 0.5,
        max_keys: int = 5000,
        clock: Callable[[], datetime] = _now,
        aggregators: Mapping[tuple[str, str], Aggregator] | None = None,
        par: ParSource | None = None,
    ) -> None:
        self._pool = pool
        self._store = store
        self._ruleset = ruleset_version
        self._interval_s = interval_s
        self._max_keys = max_keys
        self._clock = clock
        self._full = False
        self._aggregators = aggregators  # None: dossier indicators only
        self._par = par

    async def start(self) -> None:
        """Nothing to connect: the publisher works through the pool and the relay."""

    async def stop(self) -> None:
        """Nothing to close."""

    async def run(self, stop: asyncio.Event) -> None:
        """Publish a round every ``interval`` until ``stop`` is set (a failed round is retried next time)."""
        while not stop.is_set():
            try:
                while await self.publish_round() >= 0 and self._full:
                    pass  # a backlog larger than one round: keep going without waiting
            except Exception:
                _log.exception("indicator publishing round failed; retrying")
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), timeout=self._interval_s)

    async def publish_round(self) -> int:
        """One round in one transaction; returns how many events it appended (-1: nothing was dirty)."""
        now = self._clock()
        async with self._pool.acquire() as conn, conn.transaction():
            await conn.execute(_LOCK)
            rows = await conn.fetch(
                "SELECT id, unitcode, provincecode, period_kind, period_start FROM scoring_dirty ORDER BY id LIMIT $1",
                self._max_keys,
            )
            self._full = len(rows) == self._max_keys
            if not rows:
                return -1
            keys = {
                DirtyKey(r["unitcode"], r["provincecode"], PeriodKind(r["period_kind"]), r["period_start"])
                for r in rows
            }
            values = await indicator_values(conn, keys, now, aggregators=self._aggregators, par=self._par)
            last = await self._last_published(conn, keys)
            changed: list[tuple[DirtyKey, IndicatorValue]] = []
            for key in sorted(keys):
                for v in values[key].values():
                    if last.get((key, v.key)) != _published(v) and (
                        (key, v.key) in last or v.na_reason is not NaReason.NOT_COMPUTED
                    ):
                        changed.append((key, v))
            events = self._envelopes(changed, now)
            if events:
                await self._store.append_many(conn, [(unit, None, evs) for unit, evs in sorted(events.items())])
            await self._record(conn, changed)
            await conn.execute("DELETE FROM scoring_dirty WHERE id = ANY($1::bigint[])", [r["id"] for r in rows])
        return sum(len(evs) for evs in events.values())

    def _envelopes(
        self, changed: Sequence[tuple[DirtyKey, IndicatorValue]], now: datetime
    ) -> dict[str, list[Envelope]]:
        events: dict[str, list[Envelope]] = defaultdict(list)
        for key, v in changed:
            payload = to_payload(key, v, self._ruleset, now)
            if payload is None:
                continue
            events[key.unitcode].append(
                make_envelope(
                    payload,
                    id=uuid.uuid4(),
                    source=SOURCE,
                    subject=key.unitcode,
                    time=now,
                    unitcode=key.unitcode,
                    provincecode=key.provincecode,
                )
            )
        return events

    @staticmethod
    async def _last_published(conn: Connection, keys: Iterable[DirtyKey]) -> Mapping[tuple[DirtyKey, str], Published]:
        ordered = sorted(keys)
        rows = await conn.fetch(
            """SELECT p.unitcode, p.period_kind, p.period_start, p.indicator_key, p.value, p.numerator,
                      p.denominator, p.na_reason, x.province
               FROM unnest($1::text[], $2::text[], $3::date[], $4::text[]) AS x(unit, kind, start, province)
               JOIN scoring_published p
                 ON p.unitcode = x.unit AND p.period_kind = x.kind AND p.period_start = x.start""",
            [k.unitcode for k in ordered],
            [k.kind.value for k in ordered],
            [k.start for k in ordered],
            [k.provincecode for k in ordered],
        )
        out: dict[tuple[DirtyKey, str], Published] = {}
        for r in rows:
            key = DirtyKey(r["unitcode"], r["province"], PeriodKind(r["period_kind"]), r["period_start"])
            out[(key, r["indicator_key"])] = Published(r["value"], r["numerator"], r["denominator"], r["na_reason"])
        return out

    @staticmethod
    async def _record(conn: Connection, changed: Sequence[tuple[DirtyKey, IndicatorValue]]) -> None:
        if not changed:
            return
        await conn.execute(
            """INSERT INTO scoring_published (unitcode, period_kind, period_start, indicator_key, value, numerator,
                                              denominator, na_reason)
               SELECT * FROM unnest($1::text[], $2::text[], $3::date[], $4::text[], $5::float8[], $6::float8[],
                                    $7::float8[], $8::text[])
               ON CONFLICT (unitcode, period_kind, period_start, indicator_key) DO UPDATE SET
                   value = EXCLUDED.value, numerator = EXCLUDED.numerator, denominator = EXCLUDED.denominator,
                   na_reason = EXCLUDED.na_reason, published_at = now()""",
            [k.unitcode for k, _ in changed],
            [k.kind.value for k, _ in changed],
            [k.start for k, _ in changed],
            [v.key for _, v in changed],
            [v.value for _, v in changed],
            [v.numerator for _, v in changed],
            [v.denominator for _, v in changed],
            [v.na_reason.value if v.na_reason else None for _, v in changed],
        )
