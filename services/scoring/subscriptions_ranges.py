"""Subscriptions over year-to-date and the province's reporting periods (``period_kind`` ytd | reporting).

The calendar round of :class:`~services.scoring.subscriptions.IndicatorPublisher` turns every dirty *month*
it handles into the day ranges that contain days of that month — this year's year-to-date (1/1 to today) and
each report of the reporting schemes that apply to the province — and records them in
``scoring_dirty_ranges`` in its own transaction (insert-only, so a key is never lost). A range round, at most
every ``range_interval``, takes those keys and recomputes each range exactly as the period API does
(``GET /units/{code}/period-indicators``: the dossiers' stored contributions by day, open dossiers judged at
the range's cut-off, catalogue and group-5 values), then publishes the values that changed. Coalesced like
the calendar periods: at most one event per (unit, range, indicator) per round, only when the value moved.

The wire event says ``period_kind=ytd`` (``period_start`` = 1 January, ``period_end`` = the day computed) or
``period_kind=reporting`` with the report's data range (``period_start`` .. ``period_end``; two reports of a
scheme that start on the same day, e.g. Quý I and the year, differ by their end). Why a slower cadence: a
range is summed from the per-dossier rows, not from the month counters (its ends cut through months), which
costs more than a counter lookup; ``SCORING_PUBLISH_RANGE_INTERVAL_MS`` (default 5 s) bounds that work.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime, time
from typing import cast

import asyncpg

from eventkit.pg import Connection, Migration
from services.scoring.cooperative import compute_values
from services.scoring.domain.activity import VN_TZ
from services.scoring.domain.indicators import IndicatorValue, OpenCounts
from services.scoring.domain.periods import PeriodKind, period_end
from services.scoring.domain.report_periods import ReportScheme, range_cutoff
from services.scoring.outside_values import add_outside_values
from services.scoring.readmodel import PeriodWindow, Scope, open_counts

__all__ = [
    "RANGE_MIGRATION",
    "YTD",
    "RangeKey",
    "mark_ranges",
    "range_keys",
    "range_values",
    "schemes_for",
]

YTD = "ytd"
RANGE_MIGRATION = Migration(
    "0002_dirty_ranges",
    """
    CREATE TABLE scoring_dirty_ranges (
        id            bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
        unitcode      text NOT NULL,
        provincecode  text NOT NULL,
        period_kind   text NOT NULL,  -- 'ytd' or 'reporting:<scheme>:<report key>'
        period_start  date NOT NULL,
        period_end    date NOT NULL
    );
    """,
)


@dataclass(frozen=True, slots=True, order=True)
class RangeKey:
    """A unit and a day range whose values may have changed. ``kind``: ``ytd`` or ``reporting:<scheme>:<key>``
    (what ``scoring_published.period_kind`` stores); for ytd, ``last`` is fixed when the round runs."""

    unitcode: str
    provincecode: str
    kind: str
    first: date
    last: date

    @property
    def wire_kind(self) -> str:
        """``contracts.scoring.PeriodKind`` value."""
        return YTD if self.kind == YTD else "reporting"


def schemes_for(province: str, schemes: Mapping[str, ReportScheme]) -> list[ReportScheme]:
    """The schemes a province reports by: those naming it in ``applies_to``, else the default ones ('')."""
    own = [s for s in schemes.values() if province in s.applies_to.replace(",", " ").split()]
    return own or [s for s in schemes.values() if not s.applies_to.strip()]


def range_keys(
    unit: str, province: str, month: date, today: date, schemes: Mapping[str, ReportScheme]
) -> set[RangeKey]:
    """The ranges containing days of ``month`` (its first day given): this year's ytd while the month is not
    in the future, and every report (of the schemes applying to the province) overlapping the month and already
    begun by ``today``."""
    last_of_month = period_end(PeriodKind.MONTH, month)
    out: set[RangeKey] = set()
    if month.year == today.year and month <= today:
        out.add(RangeKey(unit, province, YTD, date(today.year, 1, 1), today))
    for scheme in schemes_for(province, schemes):
        for spec in scheme.periods:
            for year in (month.year, month.year + 1):
                r = spec.range(year)
                if r.first <= last_of_month and month <= r.last and r.first <= today:
                    out.add(RangeKey(unit, province, f"reporting:{scheme.scheme}:{spec.key}", r.first, r.last))
    return out


async def mark_ranges(conn: Connection, keys: Iterable[RangeKey]) -> None:
    """Record range keys (insert-only; the range round deletes what it handled)."""
    ordered = sorted(set(keys))
    if not ordered:
        return
    await conn.execute(
        """INSERT INTO scoring_dirty_ranges (unitcode, provincecode, period_kind, period_start, period_end)
           SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::date[], $5::date[])""",
        [k.unitcode for k in ordered],
        [k.provincecode for k in ordered],
        [k.kind for k in ordered],
        [k.first for k in ordered],
        [k.last for k in ordered],
    )


# A dossier contributes on its receipt day, its resolution day, and — only while it has no receipt (refused at
# reception) or no resolution (an open late dossier's apology, by its original due date) — on another day
# (services.scoring.domain.dossier.contributions). So only the dossiers received or resolved in the range, or
# not received / not resolved, can have a contribution in it: the other rows are skipped before their arrays
# are unnested, which keeps a range round proportional to the range, not to the units' whole history. The
# result equals the unbounded sum of the period API (tests/integration/test_scoring_publish_ranges.py compares
# them, refusals and open apologies included).
_RANGE_SUMS = """SELECT {unit} AS unit, c.k AS counter, sum(c.v) AS value
    FROM dossier_facts d, unnest(d.contrib_keys, d.contrib_days, d.contrib_values) AS c(k, day, v)
    WHERE {where}
      AND (d.received_at IS NULL OR d.resolved_at IS NULL
           OR (d.received_at >= $4 AND d.received_at < $5) OR (d.resolved_at >= $4 AND d.resolved_at < $5))
      AND c.day BETWEEN $2 AND $3
    GROUP BY 1, 2"""


async def range_values(
    conn: Connection, province: str, units: Sequence[str], *, first: date, last: date, now: datetime
) -> dict[str, dict[str, IndicatorValue]]:
    """Every dossier, catalogue and group-5 value of ``units`` (communes of ``province``, and the province
    itself for its rollup) over ``first`` .. ``last``, as :func:`services.scoring.ranges.compute_range`
    computes it for one unit (same sums, same cut-off)."""
    pool = cast("asyncpg.Pool", conn)  # the read-model functions only call fetch(), which a connection has
    cut = min(range_cutoff(last), now)
    w = PeriodWindow(PeriodKind.MONTH, first, last, datetime.combine(first, time(0), tzinfo=VN_TZ), cut)
    scope = Scope("provincecode", province)
    communes = sorted(u for u in units if u != province)
    out: dict[str, dict[str, IndicatorValue]] = {}
    for by_unit, chosen in ((True, communes), (False, [province] if province in units else [])):
        if not chosen:
            continue
        sql = _RANGE_SUMS.format(
            unit="d.unitcode" if by_unit else "$1::text",
            where="d.unitcode = ANY($6::text[]) AND d.provincecode = $1" if by_unit else "d.provincecode = $1",
        )
        args: list[object] = [province, first, last, w.begins, range_cutoff(last)] + ([chosen] if by_unit else [])
        sums: dict[str, dict[str, float]] = defaultdict(dict)
        for r in await conn.fetch(sql, *args):
            sums[r["unit"]][r["counter"]] = round(r["value"], 6)
        opened = await open_counts(pool, scope, [w], by_unit=by_unit)
        values = await compute_values(
            ((u, first), sums.get(u, {}), opened.get((u, first), OpenCounts())) for u in chosen
        )
        await add_outside_values(pool, scope, [w], values, by_unit=by_unit)
        out.update({u: v for (u, _), v in values.items()})
    return out
