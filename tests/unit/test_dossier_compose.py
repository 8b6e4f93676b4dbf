"""Wiring of the dossiers intake: service points' opening hours reach the calendar the rules use."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

import pytest

from eventkit.worktime import VN_TZ
from services.dossiers.compose import judges, load_service_points
from services.dossiers.settings import DossiersSettings

MON_0800 = datetime(2026, 3, 2, 8, 0, tzinfo=VN_TZ)
MON_1600 = datetime(2026, 3, 2, 16, 0, tzinfo=VN_TZ)


def test_a_service_point_with_its_own_hours_measures_working_time_with_them(tmp_path: Path) -> None:
    points = tmp_path / "service-points.yaml"
    points.write_text('service_points:\n  "000.04.01.H26": [["07:30", "11:30"], ["13:00", "17:00"]]\n')
    judge_of = judges(DossiersSettings(pseudonym_secret="x" * 16, service_points_file=points))
    own = judge_of("01", "000.04.01.H26").calendar
    default = judge_of("01", "999.99.99.H99").calendar
    assert own.working_hours_between(MON_0800, MON_1600) == pytest.approx(3.5 + 3.0)
    assert default.working_hours_between(MON_0800, MON_1600) == pytest.approx(3.5 + 2.5)
    assert own.version != default.version  # verdicts say which hours they were made with
    assert judge_of("01", None).calendar is default


def test_a_bad_service_points_file_is_refused_with_the_file_named(tmp_path: Path) -> None:
    points = tmp_path / "bad.yaml"
    points.write_text('service_points:\n  "A": [["17:00", "07:00"]]\n')
    with pytest.raises(ValueError, match=r"bad\.yaml"):
        load_service_points(points)
    assert load_service_points(None) == {}
