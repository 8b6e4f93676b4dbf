"""Period boundaries of the subscriptions: which periods run on a day (so which begins the publisher handles),
and which never-published values of a key go out (a quiet key, marked by a boundary, sends only values)."""

from __future__ import annotations

from datetime import UTC, date, datetime

from services.scoring.domain.indicators import IndicatorValue, Kind, NaReason
from services.scoring.ranges import load_schemes
from services.scoring.subscriptions import _first
from services.scoring.subscriptions_boundaries import Boundary, BoundaryWatch, running_boundaries

SCHEMES = load_schemes()


def test_the_calendar_periods_of_a_day_run_without_schemes() -> None:
    assert running_boundaries(date(2026, 5, 20), None) == (
        Boundary("month", date(2026, 5, 1), date(2026, 5, 31)),
        Boundary("quarter", date(2026, 4, 1), date(2026, 6, 30)),
        Boundary("year", date(2026, 1, 1), date(2026, 12, 31)),
    )


def test_on_the_15th_of_december_next_years_reports_begin() -> None:
    running = {(b.kind, b.first, b.last) for b in running_boundaries(date(2026, 12, 15), SCHEMES)}
    assert ("ytd", date(2026, 1, 1), date(2026, 12, 31)) in running
    assert ("reporting:default-15th:q1", date(2026, 12, 15), date(2027, 3, 14)) in running
    assert ("reporting:default-15th:year", date(2026, 12, 15), date(2027, 12, 14)) in running
    assert ("reporting:default-15th:year", date(2025, 12, 15), date(2026, 12, 14)) not in running  # ended 14/12
    assert ("reporting:qng-ba-nam-2024:h1", date(2026, 12, 15), date(2027, 6, 10)) in running
    # the day before, the 2026 year report still runs and the 2027 ones have not begun
    before = {(b.kind, b.first) for b in running_boundaries(date(2026, 12, 14), SCHEMES)}
    assert ("reporting:default-15th:year", date(2025, 12, 15)) in before
    assert not any(first > date(2026, 12, 14) for _, first in before)


def test_a_boundary_begins_at_midnight_in_vietnam() -> None:
    b = Boundary("month", date(2026, 4, 1), date(2026, 4, 30))
    assert b.begins == datetime(2026, 3, 31, 17, tzinfo=UTC)
    assert b.calendar is not None
    assert Boundary("ytd", date(2026, 1, 1), date(2026, 12, 31)).calendar is None


def test_nothing_is_pending_once_the_running_periods_are_known_and_a_new_day_can_begin_one() -> None:
    watch = BoundaryWatch(SCHEMES)
    march = datetime(2026, 3, 31, 16, 59, tzinfo=UTC)  # 23:59 in Vietnam
    assert watch.pending(march)
    watch.committed([(b.kind, b.first) for b in running_boundaries(date(2026, 3, 31), SCHEMES)])
    assert not watch.pending(march)
    assert watch.pending(datetime(2026, 3, 31, 17, tzinfo=UTC))  # 1/4 00:00 in Vietnam: April, Quý II
    assert not watch.pending(datetime(2026, 3, 20, 5, tzinfo=UTC))  # earlier in March: the same periods run


def test_a_quiet_key_sends_only_values_a_marked_key_every_value_the_contract_carries() -> None:
    value = IndicatorValue("r06.carried_over", "x", Kind.COUNT, 2, None, 2, None, "", "t")
    na = IndicatorValue("d766.1_4", "x", Kind.RATIO, 0, 0, None, NaReason.EMPTY_DENOMINATOR, "", "t")
    hidden = IndicatorValue("d766.1_1", "x", Kind.RATIO, None, None, None, NaReason.NOT_COMPUTED, "", "t")
    assert [_first(v, quiet=True) for v in (value, na, hidden)] == [True, False, False]
    assert [_first(v, quiet=False) for v in (value, na, hidden)] == [True, True, False]
