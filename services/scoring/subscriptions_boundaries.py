"""Period boundaries: the keys a new period has values for before any event of it, marked once per boundary.

When a month, quarter or year begins (00:00, +07:00), and when a year to date or a report of a reporting
scheme begins, the new period already has values for every unit with something carried into it, with no
event in the period: dossiers received before it and still open (report 06 "carried over", "open within time"
/ "open overdue", and 766 2.1, whose base counts the dossiers open at the cut-off) and PAKN in progress (766
5.2 measures every PAKN in progress at the cut-off). No projection batch marks those keys: a dossier event
marks the periods up to the day its batch ran, a PAKN event those up to its own days. So the publisher's
calendar round does, by its injected clock, inside its transaction and under the publishers' lock
(:class:`BoundaryWatch`):

- which keys: each commune (and its province, the rollup) with a dossier received before the boundary and
  not ended by it, or a PAKN received before it and not finished by it — the rows the read side counts as
  carried over / open / in progress at the new period's cut-off; for a report, only the provinces whose
  scheme it is. A unit with nothing carried has no value but zero counts until an event, and is not marked;
- what goes out: the keys are marked *quiet* (``scoring_dirty.quiet``, ``scoring_dirty_ranges.quiet``): of a
  quiet key the round publishes a value that is not N/A, or one that differs from a value already published
  for it — the counts (zeros included: the query API shows them), 2.1, 5.2 with PAKN in progress, and
  whatever the other inputs give. The never-published N/A values of the new period (rates over an empty
  denominator, group 5 without a PAKN received, the catalogue ones…) go out with the first event of the
  period, as for any key; a key marked by an event too is not quiet;
- exactly once: the boundary is recorded in ``scoring_boundaries`` in the transaction that marks its keys
  (and appends the events of the first ``max_keys`` of them): a rolled-back round leaves it pending, a
  committed one is never handled again, by this publisher, another replica or a restarted one (they
  serialise on the lock and read the table). Marking twice would publish nothing more anyway: the round
  publishes only values that differ from the last published;
- batches in flight: a projection batch that read its clock before the boundary (so it marked its open
  dossiers' periods only up to the old day) may commit after the round read the carried rows. A boundary is
  therefore handled only once no other connection of the service (same ``application_name``) is in a
  transaction that began before this publisher first saw the boundary pending — at most ``settle`` later
  (a session left idle in a transaction does not hold the boundary back for ever; the round logs it). The
  service's connections share one role, whose sessions' ``xact_start`` PostgreSQL shows;
- missed boundaries: a publisher stopped over a whole month handles, on restart, every month, quarter and year
  begun since the last one recorded; an empty table (first start, or an upgrade) handles the running ones —
  their carried units are recomputed, and only values that differ from the published ones go out;
- cost: a round asks the database nothing while the periods running by its clock are the ones it knows to be
  recorded (a set kept in memory, filled only after a commit); at a boundary, one scan of the open dossiers
  and PAKN per distinct boundary instant.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta

from eventkit.logging import get_logger
from eventkit.pg import Connection, Migration
from services.scoring.domain.activity import VN_TZ
from services.scoring.domain.periods import STORED_KINDS, PeriodKind, period_end, period_start, periods_between
from services.scoring.domain.report_periods import ReportScheme
from services.scoring.subscriptions_ranges import YTD, RangeKey, schemes_for

__all__ = ["BOUNDARY_MIGRATION", "Boundary", "BoundaryWatch", "carried_units", "running_boundaries"]

_log = get_logger("services.scoring.subscriptions")

BOUNDARY_MIGRATION = Migration(
    "0003_boundaries",
    """
    -- every period / range whose begin the publisher handled (its carried units marked dirty), once
    CREATE TABLE scoring_boundaries (
        period_kind   text NOT NULL,  -- month | quarter | year | ytd | reporting:<scheme>:<report key>
        period_start  date NOT NULL,
        handled_at    timestamptz NOT NULL,  -- the publisher's clock
        keys          integer NOT NULL,      -- (unit, period) keys it marked
        PRIMARY KEY (period_kind, period_start)
    );
    -- marked by a boundary, not by an event: only values (or changes of published ones) go out
    ALTER TABLE scoring_dirty ADD COLUMN quiet boolean NOT NULL DEFAULT false;
    ALTER TABLE scoring_dirty_ranges ADD COLUMN quiet boolean NOT NULL DEFAULT false;
    """,
)

#: how long a boundary waits at most for the service's transactions begun before it was seen
DEFAULT_SETTLE = timedelta(seconds=60)


@dataclass(frozen=True, slots=True, order=True)
class Boundary:
    """The begin of a period: ``kind`` is a calendar kind (month, quarter, year), ``ytd`` or
    ``reporting:<scheme>:<report key>`` (as ``scoring_published.period_kind`` stores it); ``first`` .. ``last``
    its days."""

    kind: str
    first: date
    last: date

    @property
    def begins(self) -> datetime:
        """The instant the period begins: what was open then is carried into it."""
        return datetime.combine(self.first, time(0), tzinfo=VN_TZ)

    @property
    def calendar(self) -> PeriodKind | None:
        """The calendar kind, or None for a day range (ytd, a report)."""
        return PeriodKind(self.kind) if self.kind in _CALENDAR_KINDS else None


_CALENDAR_KINDS = frozenset(k.value for k in PeriodKind)


def _calendar(kind: PeriodKind, start: date) -> Boundary:
    return Boundary(kind.value, start, period_end(kind, start))


def running_boundaries(today: date, schemes: Mapping[str, ReportScheme] | None) -> tuple[Boundary, ...]:
    """The periods running on ``today``: its month, quarter and year and, with ``schemes``, its year to date and
    every report of every scheme whose data range contains it."""
    out = [_calendar(kind, period_start(kind, today)) for kind in STORED_KINDS]
    if schemes is not None:
        out.append(Boundary(YTD, date(today.year, 1, 1), date(today.year, 12, 31)))
        for scheme in schemes.values():
            for spec in scheme.periods:
                for year in (today.year, today.year + 1):  # a report's range can start the year before
                    r = spec.range(year)
                    if r.first <= today <= r.last:
                        out.append(Boundary(f"reporting:{scheme.scheme}:{spec.key}", r.first, r.last))
    return tuple(sorted(set(out)))


async def _exists(conn: Connection, table: str) -> bool:
    # asked first, not caught: inside the publisher's transaction a failed statement would abort it
    return bool(await conn.fetchval("SELECT to_regclass($1) IS NOT NULL", table))


async def carried_units(conn: Connection, instants: Sequence[datetime]) -> dict[datetime, set[tuple[str, str]]]:
    """Per instant, the (unit, province) keys with something carried into a period beginning then: a dossier
    received before it and not ended by it, or a PAKN received before it and not finished by it. A commune
    gives itself and its province (the rollup); any other code (province-level work) its province."""
    parts = []
    if await _exists(conn, "dossier_facts"):
        parts.append(
            """SELECT b.at, d.unitcode, d.provincecode FROM unnest($1::timestamptz[]) AS b(at)
               JOIN dossier_facts d ON d.received_at < b.at AND (d.resolved_at IS NULL OR d.resolved_at >= b.at)"""
        )
    if await _exists(conn, "feedback_items"):
        parts.append(
            """SELECT b.at, f.unitcode, f.provincecode FROM unnest($1::timestamptz[]) AS b(at)
               JOIN feedback_items f ON f.received_at < b.at AND (f.finished_at IS NULL OR f.finished_at >= b.at)"""
        )
    out: dict[datetime, set[tuple[str, str]]] = defaultdict(set)
    if not parts or not instants:
        return out
    for r in await conn.fetch(" UNION ".join(parts), sorted(set(instants))):
        unit, province = r["unitcode"], r["provincecode"]
        out[r["at"]].update({(unit, province), (province, province)} if len(unit) == 5 else {(province, province)})
    return out


class BoundaryWatch:
    """The publisher's side of the boundaries (see the module docstring): which are pending by its clock, and
    marking their keys inside the calendar round's transaction."""

    def __init__(self, schemes: Mapping[str, ReportScheme] | None, settle: timedelta = DEFAULT_SETTLE) -> None:
        self._schemes = schemes  # None: no ytd / reporting-period publishing, so no range boundaries
        self._settle = settle
        self._known: set[tuple[str, date]] = set()  # recorded in the table (learnt after a commit)
        self._running: tuple[date, tuple[Boundary, ...]] | None = None  # cache per day
        self._seen_at: datetime | None = None  # database time this publisher first saw a boundary pending

    def _running_on(self, today: date) -> tuple[Boundary, ...]:
        if self._running is None or self._running[0] != today:
            self._running = (today, running_boundaries(today, self._schemes))
        return self._running[1]

    def pending(self, now: datetime) -> bool:
        """Whether a period running at ``now`` is not known to be recorded (no database work)."""
        return any((b.kind, b.first) not in self._known for b in self._running_on(now.astimezone(VN_TZ).date()))

    def committed(self, settled: Iterable[tuple[str, date]]) -> None:
        """Remember the boundaries recorded by a round that committed."""
        self._known.update(settled)

    async def mark(self, conn: Connection, now: datetime) -> list[tuple[str, date]]:
        """Inside the round's transaction, under the publishers' lock: record the pending boundaries running
        at ``now`` (and the calendar ones missed since the last recorded) and mark their keys dirty, quiet.
        Returns the boundaries now recorded, for :meth:`committed` once the transaction commits."""
        today = now.astimezone(VN_TZ).date()
        running = [b for b in self._running_on(today) if (b.kind, b.first) not in self._known]
        if not running:
            return []
        recorded = await self._recorded(conn, running)
        todo = [b for b in running if (b.kind, b.first) not in recorded]
        if not todo:
            self._seen_at = None
            return sorted(recorded)
        if not await self._settled(conn):
            return sorted(recorded)  # handled by a later round, once the batches begun before have committed
        self._seen_at = None  # a round that rolls back sees the boundary anew: it waits for more, never less
        todo = sorted(set(todo) | set(await self._missed(conn, todo)))
        carried = await carried_units(conn, [b.begins for b in todo])
        calendar: list[tuple[str, str, str, date]] = []
        ranges: list[RangeKey] = []
        counts: dict[Boundary, int] = {}
        for b in todo:
            units = sorted(carried.get(b.begins, ()))
            kind = b.calendar
            if kind is not None:
                calendar.extend((unit, province, kind.value, b.first) for unit, province in units)
                counts[b] = len(units)
                continue
            if b.kind != YTD:  # a report: the provinces whose scheme it is
                scheme = b.kind.split(":")[1]
                units = [u for u in units if scheme in {s.scheme for s in schemes_for(u[1], self._schemes or {})}]
            last = max(today, b.first) if b.kind == YTD else b.last
            ranges.extend(RangeKey(unit, province, b.kind, b.first, last) for unit, province in units)
            counts[b] = len(units)
        await _mark_quiet(conn, calendar, ranges)
        await conn.execute(
            """INSERT INTO scoring_boundaries (period_kind, period_start, handled_at, keys)
               SELECT * FROM unnest($1::text[], $2::date[], $3::timestamptz[], $4::int[]) ON CONFLICT DO NOTHING""",
            [b.kind for b in todo],
            [b.first for b in todo],
            [now] * len(todo),
            [counts[b] for b in todo],
        )
        _log.info("period boundaries handled", keys={f"{b.kind} {b.first}": n for b, n in sorted(counts.items())})
        return sorted(recorded | {(b.kind, b.first) for b in todo})

    @staticmethod
    async def _recorded(conn: Connection, boundaries: Sequence[Boundary]) -> set[tuple[str, date]]:
        rows = await conn.fetch(
            """SELECT period_kind, period_start FROM scoring_boundaries
               WHERE (period_kind, period_start) IN (SELECT * FROM unnest($1::text[], $2::date[]))""",
            [b.kind for b in boundaries],
            [b.first for b in boundaries],
        )
        return {(r["period_kind"], r["period_start"]) for r in rows}

    async def _settled(self, conn: Connection) -> bool:
        """True once no other connection of the service is in a transaction begun before this publisher first
        saw the boundary pending (or ``settle`` has passed since): every batch that read its clock before the
        boundary has committed, so the carried rows read next include its dossiers."""
        if self._seen_at is None:
            self._seen_at = await conn.fetchval("SELECT clock_timestamp()")
        older = await conn.fetchval(
            """SELECT count(*) FROM pg_stat_activity
               WHERE datname = current_database() AND application_name = current_setting('application_name')
                 AND pid <> pg_backend_pid() AND xact_start < $1""",
            self._seen_at,
        )
        if not older:
            return True
        waited = await conn.fetchval("SELECT clock_timestamp() - $1::timestamptz", self._seen_at)
        if waited < self._settle:
            return False
        _log.warning("period boundary handled while older transactions still run", transactions=older)
        return True

    @staticmethod
    async def _missed(conn: Connection, todo: Sequence[Boundary]) -> list[Boundary]:
        """The calendar periods begun between the last recorded one of their kind and the pending one."""
        pending = {PeriodKind(b.kind): b.first for b in todo if b.calendar is not None}
        if not pending:
            return []
        rows = await conn.fetch(
            """SELECT period_kind, max(period_start) AS last FROM scoring_boundaries
               WHERE period_kind = ANY($1::text[]) GROUP BY 1""",
            [k.value for k in pending],
        )
        out: list[Boundary] = []
        for r in rows:
            kind = PeriodKind(r["period_kind"])
            if r["last"] < pending[kind]:
                starts = periods_between(kind, r["last"], pending[kind])
                out.extend(_calendar(kind, s) for s in starts if r["last"] < s < pending[kind])
        return out


async def _mark_quiet(
    conn: Connection, calendar: Sequence[tuple[str, str, str, date]], ranges: Sequence[RangeKey]
) -> None:
    """Insert the boundary's keys as quiet dirty keys (insert-only, like the projections' marks)."""
    if calendar:
        await conn.execute(
            """INSERT INTO scoring_dirty (unitcode, provincecode, period_kind, period_start, quiet)
               SELECT *, true FROM unnest($1::text[], $2::text[], $3::text[], $4::date[])""",
            [k[0] for k in calendar],
            [k[1] for k in calendar],
            [k[2] for k in calendar],
            [k[3] for k in calendar],
        )
    if ranges:
        await conn.execute(
            """INSERT INTO scoring_dirty_ranges (unitcode, provincecode, period_kind, period_start, period_end, quiet)
               SELECT *, true FROM unnest($1::text[], $2::text[], $3::text[], $4::date[], $5::date[])""",
            [k.unitcode for k in ranges],
            [k.provincecode for k in ranges],
            [k.kind for k in ranges],
            [k.first for k in ranges],
            [k.last for k in ranges],
        )
