"""``chiso due-date`` (services/dossiers/cli.py, registered in services/cli.py)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from eventkit.worktime import WorkingCalendar, clear_calendar_cache
from services.cli import app

# wide terminal: typer's rich error box would otherwise wrap the messages the tests look for
# (and no CHISO_CALENDAR_DIR from the developer's shell)
_ENV: dict[str, str | None] = {"COLUMNS": "300", "CHISO_CALENDAR_DIR": None}


def run(*args: str, env: dict[str, str | None] | None = None) -> tuple[int, str, str]:
    result = CliRunner().invoke(app, ["due-date", *args], env={**_ENV, **(env or {})})
    return result.exit_code, result.stdout, result.stderr


@pytest.fixture(autouse=True)
def _fresh_calendars() -> None:
    clear_calendar_cache()  # province files are written per test under the same names


def test_working_days() -> None:
    assert run("--received", "2026-02-13T10:00:00+07:00", "--working-days", "3") == (
        0,
        "2026-02-25T10:00:00+07:00\n",
        "",
    )


def test_working_hours() -> None:
    code, out, _ = run("--received", "2026-03-10T16:30:00+07:00", "--working-hours", "4")
    assert (code, out) == (0, "2026-03-11T10:30:00+07:00\n")


def test_canonical_form_is_printed() -> None:
    code, out, _ = run("--received", "2026-04-30T09:00:00+07:00", "--working-days", "5")
    assert (code, out) == (0, "2026-05-08T17:00:00+07:00\n")


def test_naive_received_is_vietnam_time_and_other_offsets_are_converted() -> None:
    assert run("--received", "2026-02-13T10:00:00", "--working-days", "3")[1] == "2026-02-25T10:00:00+07:00\n"
    assert run("--received", "2026-02-13T03:00:00Z", "--working-days", "3")[1] == "2026-02-25T10:00:00+07:00\n"


@pytest.mark.parametrize("limits", [[], ["--working-days", "3", "--working-hours", "4"]], ids=["neither", "both"])
def test_exactly_one_limit_is_required(limits: list[str]) -> None:
    code, out, err = run("--received", "2026-02-13T10:00:00+07:00", *limits)
    assert code == 2
    assert out == ""
    assert "exactly one of --working-days and --working-hours" in err


def test_bad_received_is_a_usage_error() -> None:
    code, _, err = run("--received", "13/02/2026 10:00", "--working-days", "3")
    assert code == 2
    assert "not an ISO 8601 date-time" in err


def test_json_output() -> None:
    code, out, _ = run("--received", "2026-04-30T09:00:00", "--working-days", "5", "--json")
    assert code == 0
    assert json.loads(out) == {
        "received": "2026-04-30T09:00:00+07:00",
        "normalized_start": "2026-05-04T07:00:00+07:00",
        "due_at": "2026-05-08T17:00:00+07:00",
        "calendar_version": WorkingCalendar.load().version,
    }


_PROVINCE = 'version: "1"\nsource: "test"\ndays_off: [2026-02-24]\n'


def test_province_file_from_the_option_and_from_the_environment(tmp_path: Path) -> None:
    (tmp_path / "79.yaml").write_text(_PROVINCE, encoding="utf-8")
    args = ("--received", "2026-02-13T10:00:00+07:00", "--working-days", "3", "--province", "79")
    # Tue 24/02 off in this province: the third working day ends on Thu 26/02 instead of Wed 25/02
    assert run(*args, "--calendar-dir", str(tmp_path))[:2] == (0, "2026-02-26T10:00:00+07:00\n")
    assert run(*args, env={"CHISO_CALENDAR_DIR": str(tmp_path)})[:2] == (0, "2026-02-26T10:00:00+07:00\n")
    out = run(*args, "--calendar-dir", str(tmp_path), "--json")[1]
    assert json.loads(out)["calendar_version"] == WorkingCalendar.load("79", overrides_dir=tmp_path).version
    assert json.loads(out)["calendar_version"] != WorkingCalendar.load().version


def test_province_without_a_file_uses_the_national_calendar_and_says_so(tmp_path: Path) -> None:
    code, out, err = run(
        "--received", "2026-02-13T10:00:00+07:00", "--working-days", "3", "--province", "01", "--calendar-dir",
        str(tmp_path),
    )  # fmt: skip
    assert (code, out) == (0, "2026-02-25T10:00:00+07:00\n")
    assert "national calendar applies" in err


def test_province_needs_a_directory() -> None:
    code, _, err = run("--received", "2026-02-13T10:00:00+07:00", "--working-days", "3", "--province", "79")
    assert code == 2
    assert "CHISO_CALENDAR_DIR" in err


def test_invalid_override_file_names_file_and_field(tmp_path: Path) -> None:
    (tmp_path / "79.yaml").write_text('version: "1"\nsource: "x"\ndays_off: [2026-02-30]\n', encoding="utf-8")
    code, out, err = run(
        "--received", "2026-02-13T10:00:00+07:00", "--working-days", "3", "--province", "79", "--calendar-dir",
        str(tmp_path),
    )  # fmt: skip
    assert (code, out) == (1, "")
    assert "79.yaml" in err
    assert "'days_off'" in err
    assert "2026-02-30" in err


def test_help_does_not_load_the_calendar() -> None:
    code = "import services.cli, sys; print(sorted(m for m in ('holidays', 'yaml') if m in sys.modules))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
