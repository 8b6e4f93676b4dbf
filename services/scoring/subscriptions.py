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

A PAKN deadline that passes with no event (a PAKN in progress turning overdue) is marked dirty by the round
itself, once per deadline (:mod:`services.scoring.subscriptions_deadlines`), and recomputed in that round. So
is, once per boundary, a new month, quarter, year, year to date or report that has values before any event of
it — the units with dossiers or PAKN carried into it (:mod:`services.scoring.subscriptions_boundaries`); of
those *quiet* keys only values, and changes of published values, go out.

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
from services.scoring.cooperative import compute_values, gently, random_ids
from services.scoring.dirty import UnitDay, UnitDaysHook
from services.scoring.domain.activity import VN_TZ
from services.scoring.domain.indicators import IndicatorValue, NaReason, OpenCounts
from services.scoring.domain.periods import STORED_KINDS, PeriodKind, period_end, period_start, periods_between
from services.scoring.domain.programme import plan_values, survey_blocks, survey_values
from services.scoring.domain.report_periods import ReportScheme
from services.scoring.domain.surveys import Aggregator
from services.scoring.outside_values import add_outside_values
from services.scoring.projections import ChangeHook, DossierChange
from services.scoring.readmodel import PeriodWindow, Scope, counters, open_counts, plan_counts, survey_counters, window
from services.scoring.subscriptions_boundaries import BOUNDARY_MIGRATION, BoundaryWatch
from services.scoring.subscriptions_deadlines import take_due_deadlines
from services.scoring.subscriptions_ranges import RANGE_MIGRATION, YTD, RangeKey, mark_ranges, range_keys, range_values

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
    "range_payload",
    "rest_s",
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
    RANGE_MIGRATION,  # year-to-date and reporting periods (services.scoring.subscriptions_ranges)
    BOUNDARY_MIGRATION,  # period boundaries handled (services.scoring.subscriptions_boundaries)
)

_log = get_logger("services.scoring.subscriptions")
_LOCK = "SELECT pg_advisory_xact_lock(hashtext('chiso.scoring.indicator_publisher'))"
SOURCE = "urn:chiso:scoring"
#: rounds taking longer than this are logged as a warning
#: events appended (values recorded) per statement: a few milliseconds of encoding each
_CHUNK = 1000
_SLOW_ROUNDS_S = 2.0


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
        computed = await _dossier_values(pool, w, province, wanted, data)
        for k in wanted:
            computed[k].update(extra.get(k.unitcode, {}))
            out[k] = computed[k]
    return out


async def _dossier_values(
    pool: asyncpg.Pool,
    w: PeriodWindow,
    province: str,
    wanted: Sequence[DirtyKey],
    data: Mapping[tuple[str, date], tuple[dict[str, float], OpenCounts]],
) -> dict[DirtyKey, dict[str, IndicatorValue]]:
    """The dossier values of each key, and the 766 values computed outside the counters: the catalogue ones
    (when loaded) and group 5 (PAKN, ratings), for the communes (by unit) and the province rollup."""
    computed = await compute_values((k, *data[(k.unitcode, k.start)]) for k in wanted)
    for by_unit in (True, False):
        chosen = [k for k in wanted if (k.unitcode != province) == by_unit]
        if chosen:
            values = {(k.unitcode, k.start): computed[k] for k in chosen}
            await add_outside_values(pool, Scope("provincecode", province), [w], values, by_unit=by_unit)
    return computed


def _first(v: IndicatorValue, *, quiet: bool) -> bool:
    """Whether a value never published for its key goes out: any the contract carries (N/A with its reason
    too) for a key an event marked; for a quiet key (a period boundary marked it, no event), only a value."""
    return v.na_reason is None if quiet else v.na_reason is not NaReason.NOT_COMPUTED


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


def rest_s(interval_s: float, took_s: float, max_share: float) -> float:
    """How long the publisher rests after rounds that took ``took_s``: the interval, or longer so that rounds
    take at most ``max_share`` of the time (work / (work + rest) <= share)."""
    return max(interval_s, took_s * (1 - max_share) / max_share)


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
        max_keys: int = 200,
        clock: Callable[[], datetime] = _now,
        aggregators: Mapping[tuple[str, str], Aggregator] | None = None,
        par: ParSource | None = None,
        schemes: Mapping[str, ReportScheme] | None = None,
        range_interval_s: float = 5.0,
        max_share: float = 0.25,
    ) -> None:
        if not 0 < max_share <= 1:
            msg = "max_share must be in (0, 1]"
            raise ValueError(msg)
        self._max_share = max_share
        self._pool = pool
        self._schemes = schemes  # None: no ytd / reporting-period publishing
        self._range_interval_s = range_interval_s
        self._last_range_round = float("-inf")
        self._store = store
        self._ruleset = ruleset_version
        self._interval_s = interval_s
        self._max_keys = max_keys
        self._clock = clock
        self._full = False
        self._full_ranges = False
        self._aggregators = aggregators  # None: dossier indicators only
        self._par = par
        self._boundaries = BoundaryWatch(schemes)  # new periods with values before any event of them

    async def start(self) -> None:
        """Nothing to connect: the publisher works through the pool and the relay."""

    async def stop(self) -> None:
        """Nothing to close."""

    async def run(self, stop: asyncio.Event) -> None:
        """Publish a round every ``interval`` until ``stop`` is set (a failed round is retried next time).

        One round at a time (at most ``max_keys`` keys), and the pause after it grows with how long it took
        (``max_share``: at most that share of the time is spent in rounds). Under a flood of changes — a
        province's backlog replayed through the live path changes every indicator of every commune — rounds
        of thousands of keys and events (seconds of work for the process, PostgreSQL, the relay and the
        broker) would otherwise run back to back and take the CPU the projections need, and the query
        API's freshness with it (``bench/chain.py``). More changes then coalesce into each round instead:
        still one event per changed value and round, fewer rounds. A backlog larger than one round goes on
        after the share's pause only, without waiting for the interval.
        """
        loop = asyncio.get_running_loop()
        ranges_pending = False  # a range backlog larger than one round
        while not stop.is_set():
            began = loop.time()
            calendar = ranges = 0
            backlog = False
            try:
                if not ranges_pending:
                    calendar = max(0, await self.publish_round())
                    backlog = self._full
                ranges_due = loop.time() - self._last_range_round >= self._range_interval_s
                if self._schemes is not None and not backlog and (ranges_pending or ranges_due):
                    if not ranges_pending:
                        self._last_range_round = loop.time()
                    ranges = max(0, await self.publish_range_round())
                    backlog = ranges_pending = self._full_ranges
            except Exception:
                ranges_pending = False
                _log.exception("indicator publishing round failed; retrying")
            took = loop.time() - began
            # slow rounds are what delays everything else in the process: worth an operator's attention
            (_log.warning if took >= _SLOW_ROUNDS_S else _log.debug)(
                "indicator rounds", seconds=round(took, 3), calendar_events=calendar, range_events=ranges
            )
            rest = rest_s(0.0 if backlog else self._interval_s, took, self._max_share)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), timeout=rest)

    async def publish_round(self) -> int:
        """One round in one transaction; returns how many events it appended (-1: nothing was dirty)."""
        now = self._clock()
        boundaries: list[tuple[str, date]] = []
        async with self._pool.acquire() as conn, conn.transaction():
            await conn.execute(_LOCK)
            # PAKN deadlines passed since the last round: their keys join this round's (same transaction)
            await mark_dirty(conn, unit_day_keys(await take_due_deadlines(conn, now)))
            if self._boundaries.pending(now):  # a period begun: its carried units' keys join too, quiet
                boundaries = await self._boundaries.mark(conn, now)
            appended = await self._publish_dirty(conn, now)
        self._boundaries.committed(boundaries)  # only now: a rolled-back round leaves its boundaries pending
        return appended

    async def _publish_dirty(self, conn: Connection, now: datetime) -> int:
        rows = await conn.fetch(
            """SELECT id, unitcode, provincecode, period_kind, period_start, quiet FROM scoring_dirty
               ORDER BY id LIMIT $1""",
            self._max_keys,
        )
        self._full = len(rows) == self._max_keys
        if not rows:
            return -1
        marked = [
            (DirtyKey(r["unitcode"], r["provincecode"], PeriodKind(r["period_kind"]), r["period_start"]), r)
            for r in rows
        ]
        keys = {k for k, _ in marked}
        loud = {k for k, r in marked if not r["quiet"]}  # quiet: only a period boundary marked it, no event
        values = await indicator_values(conn, keys, now, aggregators=self._aggregators, par=self._par)
        last = await self._last_published(conn, keys)
        changed: list[tuple[DirtyKey, IndicatorValue]] = []
        async for key in gently(sorted(keys)):
            for v in values[key].values():
                known = last.get((key, v.key))
                if known != _published(v) and (known is not None or _first(v, quiet=key not in loud)):
                    changed.append((key, v))
        events = await self._envelopes(
            [(k.unitcode, k.provincecode, to_payload(k, v, self._ruleset, now)) async for k, v in gently(changed)], now
        )
        await self._append(conn, events)
        await self._record(conn, changed)
        if self._schemes is not None:  # the ytd / reporting ranges over the months handled, for the range round
            today = now.astimezone(VN_TZ).date()
            # a quiet month moves no range by itself: a range begun with it is a boundary of its own
            await mark_ranges(
                conn,
                {
                    rk
                    for k in loud
                    if k.kind is PeriodKind.MONTH
                    for rk in range_keys(k.unitcode, k.provincecode, k.start, today, self._schemes)
                },
            )
        await conn.execute("DELETE FROM scoring_dirty WHERE id = ANY($1::bigint[])", [r["id"] for r in rows])
        return sum(len(evs) for evs in events.values())

    async def publish_range_round(self) -> int:
        """One year-to-date / reporting-period round (see :mod:`services.scoring.subscriptions_ranges`); returns
        the events appended (-1: nothing was dirty).

        The values are computed first, in a read-only snapshot and without the publishers' lock (a range sums
        per-dossier rows: seconds for a province, during which the calendar rounds must keep publishing); the
        lock is then taken only to compare, append, record and delete the keys read. An event committed after
        the snapshot marks its months dirty again, so its ranges are recomputed by a later round: nothing is
        missed, and a value is still published only when it differs from the last one published.
        """
        now = self._clock()
        today = now.astimezone(VN_TZ).date()
        async with self._pool.acquire() as conn:
            async with conn.transaction(isolation="repeatable_read", readonly=True):
                rows = await conn.fetch(
                    """SELECT id, unitcode, provincecode, period_kind, period_start, period_end, quiet
                       FROM scoring_dirty_ranges ORDER BY id LIMIT $1""",
                    self._max_keys,
                )
                self._full_ranges = len(rows) == self._max_keys
                if not rows:
                    return -1
                keys = {_range_key(r, today) for r in rows}
                loud = {_range_key(r, today) for r in rows if not r["quiet"]}  # quiet: marked by a boundary only
                groups: dict[tuple[str, str, date, date], list[str]] = defaultdict(list)
                for k in keys:
                    groups[(k.provincecode, k.kind, k.first, k.last)].append(k.unitcode)
                computed: list[tuple[RangeKey, IndicatorValue]] = []
                for (province, kind, first, last), units in sorted(groups.items()):
                    values = await range_values(conn, province, units, first=first, last=last, now=now)
                    for unit in sorted(units):
                        key = RangeKey(unit, province, kind, first, last)
                        computed.extend((key, v) for v in values[unit].values())
            async with conn.transaction():
                await conn.execute(_LOCK)
                last_published = await _last_published_ranges(conn, keys)
                changed = []
                async for key, v in gently(computed):
                    known = last_published.get((key.unitcode, key.kind, key.first, v.key))
                    if known != _published(v) and (known is not None or _first(v, quiet=key not in loud)):
                        changed.append((key, v))
                events = await self._envelopes(
                    [(k.unitcode, k.provincecode, range_payload(k, v, self._ruleset, now)) for k, v in changed], now
                )
                await self._append(conn, events)
                await _record_ranges(conn, changed)
                await conn.execute(
                    "DELETE FROM scoring_dirty_ranges WHERE id = ANY($1::bigint[])", [r["id"] for r in rows]
                )
        return sum(len(evs) for evs in events.values())

    async def _append(self, conn: Connection, events: Mapping[str, Sequence[Envelope]]) -> None:
        """Append the events in chunks of about :data:`_CHUNK` (whole streams), pausing for the event loop
        between them: one statement for tens of thousands of events encodes for seconds without a pause."""
        chunk: list[tuple[str, None, Sequence[Envelope]]] = []
        size = 0
        for unit in sorted(events):
            chunk.append((unit, None, events[unit]))
            size += len(events[unit])
            if size >= _CHUNK:
                await self._store.append_many(conn, chunk)
                await asyncio.sleep(0)
                chunk, size = [], 0
        if chunk:
            await self._store.append_many(conn, chunk)

    @staticmethod
    async def _envelopes(
        payloads: Iterable[tuple[str, str, IndicatorUpdated | None]], now: datetime
    ) -> dict[str, list[Envelope]]:
        """The events of the payloads (unit, province, payload; None: a value not carried) by unit (stream)."""
        wrapped = [(unit, province, payload) for unit, province, payload in payloads if payload is not None]
        events: dict[str, list[Envelope]] = defaultdict(list)
        ids = random_ids(len(wrapped))
        async for i, (unit, province, payload) in gently(enumerate(wrapped)):
            events[unit].append(
                make_envelope(
                    payload, id=ids[i], source=SOURCE, subject=unit, time=now, unitcode=unit, provincecode=province
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
        await _record_published(conn, [((k.unitcode, k.kind.value, k.start), v) for k, v in changed])


def _range_key(row: asyncpg.Record, today: date) -> RangeKey:
    kind, first, last = str(row["period_kind"]), cast("date", row["period_start"]), cast("date", row["period_end"])
    if kind == YTD:  # 1/1 to the day of this round; a year already over is the whole year
        last = max(last, today) if today.year == last.year else date(last.year, 12, 31)
    return RangeKey(str(row["unitcode"]), str(row["provincecode"]), kind, first, last)


def range_payload(key: RangeKey, v: IndicatorValue, ruleset: str, computed_at: datetime) -> IndicatorUpdated | None:
    """The wire event of one year-to-date or reporting-period value (None: a value the contract cannot carry)."""
    if v.na_reason is NaReason.NOT_COMPUTED or (v.value is None) == (v.na_reason is None):
        return None
    return IndicatorUpdated(
        indicator_key=v.key,
        period_kind=WirePeriodKind(key.wire_kind),
        period_start=key.first,
        period_end=key.last,
        numerator=v.numerator,
        denominator=v.denominator,
        value=v.value,
        na_reason=WireNaReason(v.na_reason.value) if v.na_reason else None,
        ruleset_version=ruleset,
        computed_at=computed_at,
    )


async def _last_published_ranges(
    conn: Connection, keys: Iterable[RangeKey]
) -> Mapping[tuple[str, str, date, str], Published]:
    """What was last published per (unit, range kind, range start, indicator). A reporting range is one
    (kind, start); a ytd is one per year whatever its end: a new day's value is compared with the last one."""
    ordered = sorted(keys)
    rows = await conn.fetch(
        """SELECT p.unitcode, p.period_kind, p.period_start, p.indicator_key, p.value, p.numerator, p.denominator,
                  p.na_reason
           FROM unnest($1::text[], $2::text[], $3::date[]) AS x(unit, kind, start)
           JOIN scoring_published p ON p.unitcode = x.unit AND p.period_kind = x.kind AND p.period_start = x.start""",
        [k.unitcode for k in ordered],
        [k.kind for k in ordered],
        [k.first for k in ordered],
    )
    return {
        (r["unitcode"], r["period_kind"], r["period_start"], r["indicator_key"]): Published(
            r["value"], r["numerator"], r["denominator"], r["na_reason"]
        )
        for r in rows
    }


async def _record_ranges(conn: Connection, changed: Sequence[tuple[RangeKey, IndicatorValue]]) -> None:
    await _record_published(conn, [((k.unitcode, k.kind, k.first), v) for k, v in changed])


async def _record_published(conn: Connection, changed: Sequence[tuple[tuple[str, str, date], IndicatorValue]]) -> None:
    """Remember the values just published, per (unit, stored period kind, period start) and indicator: the next
    round publishes only what differs from them. In chunks, pausing for the event loop between them."""
    for at in range(0, len(changed), _CHUNK):
        if at:
            await asyncio.sleep(0)
        await _record_chunk(conn, changed[at : at + _CHUNK])


async def _record_chunk(conn: Connection, changed: Sequence[tuple[tuple[str, str, date], IndicatorValue]]) -> None:
    await conn.execute(
        """INSERT INTO scoring_published (unitcode, period_kind, period_start, indicator_key, value, numerator,
                                          denominator, na_reason)
           SELECT * FROM unnest($1::text[], $2::text[], $3::date[], $4::text[], $5::float8[], $6::float8[],
                                $7::float8[], $8::text[])
           ON CONFLICT (unitcode, period_kind, period_start, indicator_key) DO UPDATE SET
               value = EXCLUDED.value, numerator = EXCLUDED.numerator, denominator = EXCLUDED.denominator,
               na_reason = EXCLUDED.na_reason, published_at = now()""",
        [k[0] for k, _ in changed],
        [k[1] for k, _ in changed],
        [k[2] for k, _ in changed],
        [v.key for _, v in changed],
        [v.value for _, v in changed],
        [v.numerator for _, v in changed],
        [v.denominator for _, v in changed],
        [v.na_reason.value if v.na_reason else None for _, v in changed],
    )
