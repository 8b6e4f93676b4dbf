"""Period arithmetic beyond month/quarter/year: year-to-date and reporting periods with data cut-offs."""

from __future__ import annotations

from datetime import date, datetime, time, timedelta, timezone

import pytest
from pydantic import ValidationError

from services.scoring.domain.report_periods import (
    ReportPeriodSpec,
    parse_scheme,
    range_cutoff,
    report_ranges,
    ytd,
)
from services.scoring.ranges import load_schemes, resolve_range

VN = timezone(timedelta(hours=7))
SCHEMES = load_schemes()
SEED = SCHEMES["qng-ba-nam-2024"]
DEFAULT = SCHEMES["default-15th"]


def test_ytd_runs_from_new_year_to_the_day_inclusive() -> None:
    r = ytd(date(2026, 3, 20))
    assert (r.first, r.last, r.label) == (date(2026, 1, 1), date(2026, 3, 20), "ytd:2026-03-20")
    assert ytd(date(2026, 1, 1)).first == ytd(date(2026, 1, 1)).last == date(2026, 1, 1)


def test_cutoff_is_midnight_vietnam_time_after_the_last_day() -> None:
    assert range_cutoff(date(2024, 3, 10)) == datetime(2024, 3, 11, 0, 0, tzinfo=VN)
    assert range_cutoff(date(2024, 12, 31)) == datetime.combine(date(2025, 1, 1), time(0), tzinfo=VN)


@pytest.mark.parametrize(
    ("key", "first", "last"),
    [
        ("q1", date(2023, 12, 15), date(2024, 3, 10)),  # seed 003: "Quý I/2024 ... từ 15/12/2023 đến 10/3/2024"
        ("h1", date(2023, 12, 15), date(2024, 6, 10)),
        ("q3", date(2024, 6, 15), date(2024, 9, 10)),
        ("year", date(2023, 12, 15), date(2024, 12, 14)),
    ],
)
def test_seed_003_data_ranges(key: str, first: date, last: date) -> None:
    spec = SEED.period(key)
    assert spec is not None
    r = spec.range(2024)
    assert (r.first, r.last) == (first, last)


@pytest.mark.parametrize(
    ("day", "key", "first", "last"),
    [
        (date(2023, 12, 14), "q4", date(2023, 9, 15), date(2023, 12, 14)),
        (date(2023, 12, 15), "q1", date(2023, 12, 15), date(2024, 3, 14)),  # belongs to the NEXT year's Q1
        (date(2024, 3, 14), "q1", date(2023, 12, 15), date(2024, 3, 14)),
        (date(2024, 3, 15), "q2", date(2024, 3, 15), date(2024, 6, 14)),
        (date(2024, 9, 14), "q3", date(2024, 6, 15), date(2024, 9, 14)),
        (date(2024, 12, 31), "q1", date(2024, 12, 15), date(2025, 3, 14)),
    ],
)
def test_default_quarters_cut_at_the_14th(day: date, key: str, first: date, last: date) -> None:
    quarters = [r for r in report_ranges(DEFAULT, day) if not r.label.startswith("year")]
    assert len(quarters) == 1
    assert quarters[0].label.startswith(f"{key}:")
    assert (quarters[0].first, quarters[0].last) == (first, last)


def test_default_quarters_tile_the_reporting_year_without_gap_or_overlap() -> None:
    day, end = date(2023, 12, 15), date(2024, 12, 14)
    while day <= end:
        quarters = [r for r in report_ranges(DEFAULT, day) if not r.label.startswith("year")]
        assert len(quarters) == 1, day
        years = [r for r in report_ranges(DEFAULT, day) if r.label.startswith("year")]
        assert [y.label for y in years] == ["year:2024"], day
        day += timedelta(days=1)


def test_a_day_in_overlapping_reports_needs_a_key() -> None:
    day = date(2024, 1, 5)
    assert sorted(r.label for r in report_ranges(SEED, day)) == ["h1:2024", "q1:2024", "year:2024"]
    with pytest.raises(ValueError, match="name one with report="):
        resolve_range("report", day, SCHEMES, "qng-ba-nam-2024")
    r = resolve_range("report", day, SCHEMES, "qng-ba-nam-2024", "q1")
    assert (r.label, r.first, r.last) == ("report:qng-ba-nam-2024:q1:2024", date(2023, 12, 15), date(2024, 3, 10))


def test_a_day_outside_every_seed_range_is_refused() -> None:
    # 2024-03-12 is after the seed Q1 cut-off (10/3) and before Q3 starts (15/6): only h1 and year contain it
    assert report_ranges(SEED, date(2024, 3, 12), "q3") == []
    with pytest.raises(ValueError, match="0 reports"):
        resolve_range("report", date(2024, 3, 12), SCHEMES, "qng-ba-nam-2024", "q3")


def test_calendar_periods_and_errors() -> None:
    r = resolve_range("quarter", date(2026, 5, 17), SCHEMES)
    assert (r.label, r.first, r.last) == ("quarter:2026-04-01", date(2026, 4, 1), date(2026, 6, 30))
    assert resolve_range("ytd", date(2026, 5, 17), SCHEMES).first == date(2026, 1, 1)
    with pytest.raises(ValueError, match="unknown period"):
        resolve_range("week", date(2026, 5, 17), SCHEMES)
    with pytest.raises(ValueError, match="needs scheme"):
        resolve_range("report", date(2026, 5, 17), SCHEMES, "nope")


def test_a_scheme_whose_range_ends_before_it_starts_is_refused() -> None:
    with pytest.raises(ValidationError, match="starts after it ends"):
        ReportPeriodSpec(key="bad", name="x", from_month=3, from_day=5, to_month=3, to_day=1)
    with pytest.raises(ValidationError, match="unique"):
        parse_scheme(
            {
                "scheme": "s",
                "name": "n",
                "source": "t",
                "periods": [
                    {"key": "a", "name": "a", "from_month": 1, "from_day": 1, "to_month": 2, "to_day": 1},
                    {"key": "a", "name": "a", "from_month": 1, "from_day": 1, "to_month": 2, "to_day": 1},
                ],
            }
        )


def test_shipped_schemes_name_their_source() -> None:
    assert set(SCHEMES) == {"qng-ba-nam-2024", "default-15th"}
    assert "seed 003" in SEED.source
    assert "[I]" in DEFAULT.source
