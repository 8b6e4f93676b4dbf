"""Reporting periods (month, quarter, year) of Vietnamese calendar days.

Indicators are counted by event time: a dossier received on 31/03 23:30 (UTC+7) belongs to March whatever
offset the producer wrote and whenever the event arrives, so a late or out-of-order event updates the
period it belongs to. Year-to-date and the provinces' reporting periods with cut-offs (issue 5) are sums of
months and are added on top of these later.
"""

from __future__ import annotations

from datetime import date, datetime, time, timedelta
from enum import StrEnum

from services.scoring.domain.activity import VN_TZ

__all__ = ["STORED_KINDS", "PeriodKind", "cutoff", "period_end", "period_start", "periods_between"]


class PeriodKind(StrEnum):
    """Kinds of period the counters are kept for (values match ``contracts.scoring.PeriodKind``)."""

    MONTH = "month"
    QUARTER = "quarter"
    YEAR = "year"


#: every contribution is counted once per kind: a month, its quarter and its year
STORED_KINDS: tuple[PeriodKind, ...] = (PeriodKind.MONTH, PeriodKind.QUARTER, PeriodKind.YEAR)


def period_start(kind: PeriodKind, day: date) -> date:
    """First day of the period of ``kind`` containing ``day``."""
    if kind is PeriodKind.MONTH:
        return day.replace(day=1)
    if kind is PeriodKind.QUARTER:
        return date(day.year, 3 * ((day.month - 1) // 3) + 1, 1)
    return date(day.year, 1, 1)


def _add_months(day: date, months: int) -> date:
    index = day.year * 12 + day.month - 1 + months
    return date(index // 12, index % 12 + 1, 1)


def _next_start(kind: PeriodKind, start: date) -> date:
    return _add_months(start, {PeriodKind.MONTH: 1, PeriodKind.QUARTER: 3, PeriodKind.YEAR: 12}[kind])


def period_end(kind: PeriodKind, start: date) -> date:
    """Last day (inclusive) of the period of ``kind`` starting on ``start``."""
    return _next_start(kind, start) - timedelta(days=1)


def cutoff(kind: PeriodKind, start: date) -> datetime:
    """The instant the period ends (00:00 UTC+7 of the next period): open dossiers are judged at it."""
    return datetime.combine(_next_start(kind, start), time(0), tzinfo=VN_TZ)


def periods_between(kind: PeriodKind, first: date, last: date) -> list[date]:
    """Starts of the periods of ``kind`` from the one containing ``first`` to the one containing ``last``."""
    out: list[date] = []
    start = period_start(kind, first)
    while start <= last:
        out.append(start)
        start = _next_start(kind, start)
    return out
