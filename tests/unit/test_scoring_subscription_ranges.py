"""Subscriptions over year-to-date and the reporting periods: which ranges a changed month marks, for which
scheme, and what goes on the wire."""

from __future__ import annotations

from datetime import UTC, date, datetime

from services.scoring.domain.indicators import IndicatorValue, Kind, NaReason
from services.scoring.ranges import load_schemes
from services.scoring.subscriptions import range_payload
from services.scoring.subscriptions_ranges import YTD, RangeKey, range_keys, schemes_for

SCHEMES = load_schemes()
AT = datetime(2026, 11, 23, tzinfo=UTC)


def test_a_province_reports_by_its_own_scheme_else_the_default() -> None:
    assert [s.scheme for s in schemes_for("51", SCHEMES)] == ["qng-ba-nam-2024"]
    assert [s.scheme for s in schemes_for("01", SCHEMES)] == ["default-15th"]


def test_a_month_marks_this_years_ytd_and_the_reports_overlapping_it() -> None:
    keys = range_keys("00004", "01", date(2026, 3, 1), date(2026, 11, 23), SCHEMES)
    assert keys == {
        RangeKey("00004", "01", YTD, date(2026, 1, 1), date(2026, 11, 23)),
        # default-15th: Quý I 15/12/2025-14/3/2026 and Quý II 15/3-14/6 cut through March; the year contains it
        RangeKey("00004", "01", "reporting:default-15th:q1", date(2025, 12, 15), date(2026, 3, 14)),
        RangeKey("00004", "01", "reporting:default-15th:q2", date(2026, 3, 15), date(2026, 6, 14)),
        RangeKey("00004", "01", "reporting:default-15th:year", date(2025, 12, 15), date(2026, 12, 14)),
    }


def test_december_after_the_15th_belongs_to_next_years_reports_and_the_future_is_not_marked() -> None:
    keys = range_keys("21001", "51", date(2023, 12, 1), date(2024, 1, 5), SCHEMES)
    kinds = {(k.kind, k.first, k.last) for k in keys}
    # 2023 is over: no ytd for it; the 2023 year report (15/12/2022-14/12/2023) and the 2024 reports that start
    # on 15/12/2023 (Quý I, 6 tháng, năm) contain days of December 2023
    assert kinds == {
        ("reporting:qng-ba-nam-2024:year", date(2022, 12, 15), date(2023, 12, 14)),
        ("reporting:qng-ba-nam-2024:q1", date(2023, 12, 15), date(2024, 3, 10)),
        ("reporting:qng-ba-nam-2024:h1", date(2023, 12, 15), date(2024, 6, 10)),
        ("reporting:qng-ba-nam-2024:year", date(2023, 12, 15), date(2024, 12, 14)),
    }
    # a report that has not begun yet is not marked (Quý III 2024 on 5/1/2024)
    assert not any(k.first > date(2024, 1, 5) for k in keys)


def test_range_values_go_on_the_wire_with_their_kind_and_range() -> None:
    v = IndicatorValue("d766.2_1", "2.1", Kind.RATIO, 3, 4, 0.75, None, "", "test")
    report = range_payload(
        RangeKey("00004", "01", "reporting:default-15th:q1", date(2025, 12, 15), date(2026, 3, 14)), v, "cfg", AT
    )
    assert report is not None
    assert (report.period_kind.value, report.period_start, report.period_end) == (
        "reporting",
        date(2025, 12, 15),
        date(2026, 3, 14),
    )
    ytd = range_payload(RangeKey("00004", "01", YTD, date(2026, 1, 1), date(2026, 11, 23)), v, "cfg", AT)
    assert ytd is not None
    assert ytd.period_kind.value == "ytd"
    na = IndicatorValue("x", "x", Kind.RATIO, None, None, None, NaReason.NOT_COMPUTED, "", "")
    assert range_payload(RangeKey("00004", "01", YTD, date(2026, 1, 1), date(2026, 11, 23)), na, "cfg", AT) is None
