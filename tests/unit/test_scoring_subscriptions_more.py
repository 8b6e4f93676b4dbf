"""Subscriptions for the survey and plans indicators: which (unit, period) keys their changes mark dirty."""

from __future__ import annotations

from datetime import date

from services.scoring.domain.periods import PeriodKind
from services.scoring.subscriptions import DirtyKey, unit_day_keys


def test_a_commune_day_marks_the_commune_and_its_province_in_every_stored_period() -> None:
    keys = unit_day_keys([("79001", "79", date(2026, 5, 17), None)])
    assert keys == {
        DirtyKey(unit, "79", kind, start)
        for unit in ("79001", "79")
        for kind, start in (
            (PeriodKind.MONTH, date(2026, 5, 1)),
            (PeriodKind.QUARTER, date(2026, 4, 1)),
            (PeriodKind.YEAR, date(2026, 1, 1)),
        )
    }


def test_a_yearly_change_marks_only_the_year() -> None:
    keys = unit_day_keys([("79001", "79", date(2026, 1, 1), PeriodKind.YEAR)])
    assert keys == {
        DirtyKey("79001", "79", PeriodKind.YEAR, date(2026, 1, 1)),
        DirtyKey("79", "79", PeriodKind.YEAR, date(2026, 1, 1)),
    }


def test_a_province_level_row_marks_the_province_only_and_duplicates_collapse() -> None:
    keys = unit_day_keys(
        [("79", "79", date(2026, 2, 3), PeriodKind.MONTH), ("79", "79", date(2026, 2, 27), PeriodKind.MONTH)]
    )
    assert keys == {DirtyKey("79", "79", PeriodKind.MONTH, date(2026, 2, 1))}
