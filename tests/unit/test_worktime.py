"""The shared working-time calendar (eventkit.worktime): DOMAIN §3.2 vectors, hand-computed vectors, the
yearly calendar of DOMAIN §4.3, override files, and properties checked against a naive segment walk."""

from __future__ import annotations

import functools
import importlib.metadata
import subprocess
import sys
import threading
from datetime import UTC, date, datetime, time, timedelta, timezone
from pathlib import Path
from zoneinfo import ZoneInfo

import holidays
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from contracts.dossiers import TimeUnit
from eventkit.worktime import (
    MAX_YEAR,
    MIN_YEAR,
    VN_TZ,
    CalendarConfigError,
    PeriodRules,
    WorkingCalendar,
    WorkingHours,
    clear_calendar_cache,
    read_override,
)

CAL = WorkingCalendar.load()


def vn(y: int, mo: int, d: int, h: int = 0, mi: int = 0) -> datetime:
    return datetime(y, mo, d, h, mi, tzinfo=VN_TZ)


# --- DOMAIN §3.2 reference vectors (07:00-11:30 / 13:30-17:00, holidays 0.108) -------------------------------


@pytest.mark.parametrize(
    ("received", "value", "unit", "normalized", "due"),
    [
        # skips Tết 16-20/02/2026 and two weekends
        (vn(2026, 2, 13, 10), 3, "working_days", vn(2026, 2, 13, 10), vn(2026, 2, 25, 10)),
        # online on a holiday (30/04, 01/05 off): starts Mon 04/05 07:00, ends on Fri's close (canonical form)
        (vn(2026, 4, 30, 9), 5, "working_days", vn(2026, 5, 4, 7), vn(2026, 5, 8, 17)),
        # 0.5 h today + 3.5 h next morning
        (vn(2026, 3, 10, 16, 30), 4, "working_hours", vn(2026, 3, 10, 16, 30), vn(2026, 3, 11, 10, 30)),
        # holidays 0.108 has Mon 31/08/2026 off (swapped with Sat 22/08) and 01-02/09 off
        (vn(2026, 8, 28, 8), 3, "working_days", vn(2026, 8, 28, 8), vn(2026, 9, 7, 8)),
    ],
)
def test_domain_reference_vectors(
    received: datetime, value: int, unit: str, normalized: datetime, due: datetime
) -> None:
    assert CAL.normalize(received) == normalized
    result = CAL.due_at(received, value, unit)
    assert result == due
    assert (result.isoformat(), result.utcoffset()) == (due.isoformat(), timedelta(hours=7))


def test_canonical_form_and_td_form_are_the_same_working_instant() -> None:
    due = CAL.add_working_days(vn(2026, 4, 30, 9), 5)
    assert due.isoformat() == "2026-05-08T17:00:00+07:00"  # not TD's Mon 11/05 07:00 ...
    # ... but the same instant in working time, and so is the Saturday in between
    assert (
        CAL.working_ordinal(due) == CAL.working_ordinal(vn(2026, 5, 11, 7)) == CAL.working_ordinal(vn(2026, 5, 9, 10))
    )


def test_an_older_calendar_without_the_2026_swap_gives_the_domain_alternative() -> None:
    # DOMAIN §3.2 row 4: "Fri 04/09/2026 08:00 with an older calendar that lacks the swap" -- undo both halves
    older = WorkingCalendar(not_days_off=[date(2026, 8, 31)], days_off=[date(2026, 8, 22)])
    assert older.add_working_days(vn(2026, 8, 28, 8), 3) == vn(2026, 9, 4, 8)
    assert older.version != CAL.version


# --- hand-computed vectors (held back from DOMAIN) ------------------------------------------------------------


@pytest.mark.parametrize(
    ("received", "value", "unit", "due"),
    [
        # lunch receipt Tue 12:00 -> starts 13:30; 2 h -> 15:30 the same day
        (vn(2026, 3, 10, 12), 2, "working_hours", vn(2026, 3, 10, 15, 30)),
        # before opening Wed 06:15 -> starts 07:00; one full day (8 h) ends at Wed's close, not Thu 07:00
        (vn(2026, 3, 11, 6, 15), 1, "working_days", vn(2026, 3, 11, 17)),
        # after close Tue 17:30 -> starts Wed 07:00; 4 h of the 4.5 h morning -> 11:00
        (vn(2026, 3, 10, 17, 30), 4, "working_hours", vn(2026, 3, 11, 11)),
        # at the close exactly (17:00 is "after close", DOMAIN normalize uses >=) -> Wed 07:00 + 1 h
        (vn(2026, 3, 10, 17), 1, "working_hours", vn(2026, 3, 11, 8)),
        # Saturday receipt Sat 14/03 09:00 -> starts Mon 16/03 07:00; 1 h -> 08:00
        (vn(2026, 3, 14, 9), 1, "working_hours", vn(2026, 3, 16, 8)),
        # Tết 2025: Fri 24/01 15:00, 2 days = 16 h: Fri 2 h; 27-31/01 Tết, weekend; Mon 03/02 8 h (10 h);
        # Tue 04/02 07:00-11:30 4.5 h (14.5 h) + 1.5 h from 13:30 -> 15:00
        (vn(2025, 1, 24, 15), 2, "working_days", vn(2025, 2, 4, 15)),
        # 2025 swap: Fri 25/04 09:00, 16 h: Fri 2.5 h + 3.5 h = 6 h; Sat 26/04 IS worked (14 h); Mon 28/04
        # 2 h -> 09:00 (without the swap it would be Tue 29/04 09:00)
        (vn(2025, 4, 25, 9), 2, "working_days", vn(2025, 4, 28, 9)),
        # Giỗ Tổ 2026 falls on Sun 26/04, observed Mon 27/04: Fri 24/04 16:00 + 8 h: Fri 1 h; Tue 28/04
        # 4.5 h + 2.5 h from 13:30 -> 16:00
        (vn(2026, 4, 24, 16), 1, "working_days", vn(2026, 4, 28, 16)),
        # half a day = 4 h: Thu 12/03 14:00-17:00 is 3 h, then Fri 07:00 + 1 h
        (vn(2026, 3, 12, 14), 0.5, "working_days", vn(2026, 3, 13, 8)),
        # the morning ends exactly at its close: 07:00 + 4.5 h is 11:30 (canonical), not 13:30
        (vn(2026, 3, 10, 7), 4.5, "working_hours", vn(2026, 3, 10, 11, 30)),
        # calendar days over a weekend: Thu 12/03 + 2 days, the start day not counted: 13/03 (1), Sat 14/03 (2)
        # -> not a working day -> next working day Mon 16/03 at close
        (vn(2026, 3, 12, 10), 2, "calendar_days", vn(2026, 3, 16, 17)),
        # calendar days from an after-close receipt: deemed received Mon 16/03, + 1 -> Tue 17/03 close
        (vn(2026, 3, 13, 17, 30), 1, "calendar_days", vn(2026, 3, 17, 17)),
        # 0 calendar days = within the day of receipt, at close
        (vn(2026, 3, 12, 10), 0, "calendar_days", vn(2026, 3, 12, 17)),
        # months clamp: Wed 31/01/2024 + 1 month -> 29/02/2024 (leap year, a Thursday) at close
        (vn(2024, 1, 31, 10), 1, "months", vn(2024, 2, 29, 17)),
        # clamp to 30/04/2026 (a holiday), 01/05 holiday, weekend -> Mon 04/05/2026 close
        (vn(2026, 3, 31, 10), 1, "months", vn(2026, 5, 4, 17)),
        # 12 months across a year end: Mon 15/12/2025 -> Tue 15/12/2026
        (vn(2025, 12, 15, 10), 12, "months", vn(2026, 12, 15, 17)),
    ],
)
def test_hand_computed_vectors(received: datetime, value: float, unit: str, due: datetime) -> None:
    assert CAL.due_at(received, value, unit) == due


def test_saturday_receipt_with_zero_hours_is_fridays_close_in_canonical_form() -> None:
    assert CAL.normalize(vn(2026, 3, 14, 9)) == vn(2026, 3, 16, 7)
    assert CAL.add_working_hours(vn(2026, 3, 14, 9), 0) == vn(2026, 3, 13, 17)
    assert CAL.add_working_hours(vn(2026, 3, 10, 12), 0) == vn(2026, 3, 10, 11, 30)  # lunch -> morning close


@pytest.mark.parametrize(
    ("t", "normalized"),
    [
        (vn(2026, 3, 10, 17), vn(2026, 3, 11, 7)),  # at the close exactly: next working morning (t >= close_pm)
        (vn(2026, 3, 10, 11, 30), vn(2026, 3, 10, 13, 30)),  # close_am <= t < open_pm
        (vn(2026, 3, 10, 13, 30), vn(2026, 3, 10, 13, 30)),  # the afternoon's opening is working time
        (vn(2026, 3, 10, 7), vn(2026, 3, 10, 7)),
        (vn(2026, 3, 10, 6, 59), vn(2026, 3, 10, 7)),
        (vn(2026, 2, 13, 17, 1), vn(2026, 2, 23, 7)),  # Fri after close, then a weekend and Tết
        (vn(2026, 8, 22, 9), vn(2026, 8, 22, 9)),  # Sat 22/08/2026 is a swapped working Saturday
    ],
)
def test_normalize_boundaries(t: datetime, normalized: datetime) -> None:
    assert CAL.normalize(t) == normalized


def test_2025_swap_is_in_the_calendar() -> None:
    assert CAL.is_working_day(date(2025, 4, 26))  # Saturday worked
    assert not CAL.is_working_day(date(2025, 5, 2))  # Friday off
    # shipped in VN.yaml whatever the library release says
    national = read_override("VN.yaml", (Path(__file__).parents[2] / "eventkit/calendars/VN.yaml").read_text())
    assert date(2025, 5, 2) in national.days_off
    assert date(2025, 4, 26) in national.workdays


def test_period_rules_are_switchable() -> None:
    raw = WorkingCalendar(period_rules=PeriodRules(count_from_deemed_receipt=False))
    # Fri 13/03 17:30 + 1 day from the raw date -> Sat 14/03 -> rolled to Mon 16/03
    assert raw.due_at(vn(2026, 3, 13, 17, 30), 1, "calendar_days") == vn(2026, 3, 16, 17)
    no_roll = WorkingCalendar(period_rules=PeriodRules(roll_forward=False))
    assert no_roll.due_at(vn(2026, 3, 12, 10), 2, "calendar_days") == vn(2026, 3, 14, 17)
    assert len({raw.version, no_roll.version, CAL.version}) == 3


def test_due_at_accepts_the_contract_enum_and_refuses_nonsense() -> None:
    assert CAL.due_at(vn(2026, 2, 13, 10), 3, TimeUnit.WORKING_DAYS) == vn(2026, 2, 25, 10)
    assert CAL.due_at(vn(2026, 3, 12, 10), 2, TimeUnit.CALENDAR_DAYS) == vn(2026, 3, 16, 17)
    with pytest.raises(ValueError, match="unknown time unit"):
        CAL.due_at(vn(2026, 3, 12, 10), 2, "weeks")
    with pytest.raises(ValueError, match="whole number"):
        CAL.due_at(vn(2026, 3, 12, 10), 1.5, "calendar_days")
    with pytest.raises(ValueError, match=">= 0"):
        CAL.due_at(vn(2026, 3, 12, 10), -1, "working_days")
    with pytest.raises(ValueError, match="finite"):
        CAL.add_working_hours(vn(2026, 3, 12, 10), float("nan"))


def test_24_november_is_a_default_holiday_but_switchable() -> None:
    assert not CAL.is_working_day(date(2026, 11, 24))
    # Mon 23/11 10:00 + 2 days: Tue 24/11 off -> Thu 26/11 10:00; as a working day -> Wed 25/11 10:00
    assert CAL.add_working_days(vn(2026, 11, 23, 10), 2) == vn(2026, 11, 26, 10)
    without = WorkingCalendar(not_days_off=[date(2026, 11, 24)])
    assert without.is_working_day(date(2026, 11, 24))
    assert without.add_working_days(vn(2026, 11, 23, 10), 2) == vn(2026, 11, 25, 10)


# DOMAIN §4.3: non-working weekdays (and the swapped working Saturdays)
_NON_WORKING_WEEKDAYS = {
    2024: ["01-01", "02-08", "02-09", "02-12", "02-13", "02-14", "04-18", "04-29", "04-30", "05-01", "09-02", "09-03"],
    2025: ["01-01", "01-27", "01-28", "01-29", "01-30", "01-31", "04-07", "04-30", "05-01", "05-02", "09-01", "09-02"],
    2026: [
        *["01-01", "02-16", "02-17", "02-18", "02-19", "02-20", "04-27", "04-30", "05-01"],
        *["08-31", "09-01", "09-02", "11-24"],
    ],
}
_WORKING_WEEKEND_DAYS = {2024: ["05-04"], 2025: ["04-26"], 2026: ["08-22"]}


@pytest.mark.parametrize("year", sorted(_NON_WORKING_WEEKDAYS))
def test_yearly_calendar_matches_domain_table(year: int) -> None:
    days = [date(year, 1, 1) + timedelta(days=i) for i in range((date(year + 1, 1, 1) - date(year, 1, 1)).days)]
    off = sorted(d.strftime("%m-%d") for d in days if d.weekday() < 5 and not CAL.is_working_day(d))
    worked = sorted(d.strftime("%m-%d") for d in days if d.weekday() >= 5 and CAL.is_working_day(d))
    assert off == _NON_WORKING_WEEKDAYS[year]
    assert worked == _WORKING_WEEKEND_DAYS[year]


def test_next_working_day_is_strictly_after() -> None:
    assert CAL.next_working_day(date(2026, 2, 13)) == date(2026, 2, 23)  # Fri before Tết
    assert CAL.next_working_day(date(2026, 2, 14)) == date(2026, 2, 23)  # a Saturday
    assert CAL.next_working_day(date(2026, 3, 10)) == date(2026, 3, 11)  # a Tuesday


def test_working_hours_between() -> None:
    assert CAL.working_hours_between(vn(2026, 2, 13, 10), vn(2026, 2, 25, 10)) == 24.0
    assert CAL.working_hours_between(vn(2026, 3, 10, 11), vn(2026, 3, 10, 14)) == 1.0  # 0.5 h + 0.5 h
    assert CAL.working_hours_between(vn(2026, 3, 13, 17), vn(2026, 3, 16, 7)) == 0.0  # the weekend
    assert CAL.working_hours_between(vn(2026, 3, 16, 7), vn(2026, 3, 13, 17)) == 0.0  # end before start


def test_naive_input_is_refused_and_other_zones_are_converted() -> None:
    for call in (
        lambda: CAL.normalize(datetime(2026, 3, 10, 9)),
        lambda: CAL.add_working_hours(datetime(2026, 3, 10, 9), 1),
        lambda: CAL.working_ordinal(datetime(2026, 3, 10, 9)),
    ):
        with pytest.raises(ValueError, match="naive"):
            call()
    utc = datetime(2026, 2, 13, 3, tzinfo=UTC)  # = 10:00 +07:00
    due = CAL.add_working_days(utc, 3)
    assert due.isoformat() == "2026-02-25T10:00:00+07:00"
    assert due.tzinfo is VN_TZ
    assert CAL.normalize(utc).tzinfo is VN_TZ


def test_years_outside_the_range_are_refused() -> None:
    with pytest.raises(ValueError, match="outside"):
        CAL.is_working_day(date(MIN_YEAR - 1, 12, 31))
    with pytest.raises(ValueError, match="outside"):
        CAL.is_working_day(date(MAX_YEAR + 1, 1, 2))
    with pytest.raises(ValueError, match="outside"):
        CAL.add_working_hours(vn(MAX_YEAR, 12, 1, 9), 8 * 40)


def test_the_epoch_edge_is_written_in_opening_form() -> None:
    # the first working moment (Tue 04/01/2000 07:00: Sat 01/01 is observed on Mon 03/01) has no previous
    # segment end inside the calendar's years
    assert CAL.add_working_hours(vn(2000, 1, 1, 10), 0) == vn(2000, 1, 4, 7)
    assert CAL.working_ordinal(vn(2000, 1, 3, 10)) == 0.0
    with pytest.raises(ValueError, match="before the first working day"):
        CAL.add_working_hours(vn(2000, 1, 4, 8), -2)


def test_custom_hours() -> None:
    hours = WorkingHours(((time(7, 30), time(11, 30)), (time(13), time(17))))
    cal = WorkingCalendar(hours=hours)
    assert hours.hours_per_day == 8.0
    assert WorkingHours(((time(8), time(12)),)).hours_per_day == 4.0
    # Tue 16:00 + 2 h: 1 h today, then 07:30 + 1 h
    assert cal.add_working_hours(vn(2026, 3, 10, 16), 2) == vn(2026, 3, 11, 8, 30)
    assert cal.normalize(vn(2026, 3, 10, 12)) == vn(2026, 3, 10, 13)
    assert cal.version != CAL.version
    with pytest.raises(ValueError, match="before its end"):
        WorkingHours(((time(12), time(8)),))
    with pytest.raises(ValueError, match="overlap"):
        WorkingHours(((time(8), time(12)), (time(11), time(17))))
    with pytest.raises(ValueError, match="at least one"):
        WorkingHours(())


def test_constructor_refuses_a_date_in_two_lists() -> None:
    with pytest.raises(CalendarConfigError, match="one list"):
        WorkingCalendar(days_off=[date(2026, 3, 10)], workdays=[date(2026, 3, 10)])


def test_version_is_stable_and_identifies_the_data() -> None:
    again = WorkingCalendar(days_off=[date(2025, 5, 2)], workdays=[date(2025, 4, 26)])
    assert again.version == CAL.version  # the same data as load(): VN.yaml adds exactly these two dates
    assert CAL.version.startswith(f"holidays-{importlib.metadata.version('holidays')}+")
    assert WorkingCalendar().version != CAL.version


def test_tables_grow_safely_from_several_threads() -> None:
    cal = WorkingCalendar()
    results: list[datetime] = []

    def work() -> None:
        results.append(cal.add_working_days(vn(2090, 6, 1, 9), 30))

    threads = [threading.Thread(target=work) for _ in range(8)]
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    assert len(set(results)) == 1
    assert results[0] == CAL.add_working_days(vn(2090, 6, 1, 9), 30)


def test_import_builds_nothing() -> None:
    code = "import eventkit.worktime, sys; print('holidays' in sys.modules, 'yaml' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["False", "False"]


# --- override files ------------------------------------------------------------------------------------------

_PROVINCE = """
version: "2026.2"
source: "UBND tỉnh X, Công văn 1/UBND-KGVX (test)"
days_off: [2026-03-11]
workdays: ["2026-03-14"]
not_days_off: [2026-11-24]
hours: {segments: [["07:30", "11:30"], ["13:00", "17:00"]]}
"""


def test_load_applies_a_province_file_on_top_of_the_national_one(tmp_path: Path) -> None:
    (tmp_path / "79.yaml").write_text(_PROVINCE, encoding="utf-8")
    cal = WorkingCalendar.load("79", overrides_dir=tmp_path)
    assert cal.name == "79"
    assert not cal.is_working_day(date(2026, 3, 11))
    assert cal.is_working_day(date(2026, 3, 14))
    assert cal.is_working_day(date(2026, 11, 24))
    assert cal.is_working_day(date(2025, 4, 26))  # the national layer still applies
    assert cal.hours.segments[0] == (time(7, 30), time(11, 30))
    # Tue 10/03 16:00 + 2 h: 1 h; Wed 11/03 off; Thu 12/03 07:30 + 1 h
    assert cal.add_working_hours(vn(2026, 3, 10, 16), 2) == vn(2026, 3, 12, 8, 30)
    assert WorkingCalendar.load("79", overrides_dir=tmp_path) is cal  # cached
    explicit = WorkingCalendar.load("79", overrides_dir=tmp_path, hours=WorkingHours())
    assert explicit.hours == WorkingHours()
    assert len({cal.version, explicit.version, CAL.version}) == 3


def test_a_province_without_a_file_gets_the_national_calendar(tmp_path: Path) -> None:
    assert WorkingCalendar.load("01", overrides_dir=tmp_path).version == CAL.version
    with pytest.raises(ValueError, match="overrides_dir"):
        WorkingCalendar.load("01")
    with pytest.raises(ValueError, match="names a file"):
        WorkingCalendar.load("../etc", overrides_dir=tmp_path)


def test_clear_calendar_cache_rereads_files(tmp_path: Path) -> None:
    path = tmp_path / "48.yaml"
    path.write_text('version: "1"\nsource: "test"\ndays_off: [2026-03-10]\n', encoding="utf-8")
    assert not WorkingCalendar.load("48", overrides_dir=tmp_path).is_working_day(date(2026, 3, 10))
    path.write_text('version: "2"\nsource: "test"\n', encoding="utf-8")
    clear_calendar_cache()
    assert WorkingCalendar.load("48", overrides_dir=tmp_path).is_working_day(date(2026, 3, 10))


@pytest.mark.parametrize(
    ("text", "field", "value"),
    [
        ('source: "s"\n', "version", "None"),
        ('version: 2026.1\nsource: "s"\n', "version", "2026.1"),  # a YAML float, not a string
        ('version: "1"\nsource: "s"\nholidays: []\n', "holidays", "[]"),
        ('version: "1"\nsource: "s"\ndays_off: [2026-13-01]\n', "days_off", "'2026-13-01'"),
        ('version: "1"\nsource: "s"\ndays_off: 2026-03-10\n', "days_off", "'2026-03-10'"),
        ('version: "1"\nsource: "s"\nworkdays: [2026-03-14 08:00:00]\n', "workdays", "'2026-03-14 08:00:00'"),
        ('version: "1"\nsource: "s"\ndays_off: [1999-12-31]\n', "days_off", "'1999-12-31'"),
        ('version: "1"\nsource: "s"\ndays_off: [2026-03-10, 2026-03-10]\n', "days_off", "'2026-03-10'"),
        ('version: "1"\nsource: "s"\ndays_off: [2026-03-10]\nworkdays: [2026-03-10]\n', "days_off/workdays", "2026"),
        ('version: "1"\nsource: "s"\nnot_days_off: [2026-03-14]\n', "not_days_off", "'2026-03-14'"),
        # unquoted 13:30 is YAML 1.1 sexagesimal, the integer 810
        (
            'version: "1"\nsource: "s"\nhours: {segments: [["07:00", "11:30"], [13:30, "17:00"]]}\n',
            "hours.segments[1]",
            "810",
        ),
        ('version: "1"\nsource: "s"\nhours: {segments: [["12:00", "08:00"]]}\n', "hours.segments", "12:00"),
        ('version: "1"\nsource: "s"\nhours: {segments: [["7h", "11:30"]]}\n', "hours.segments[0]", "'7h'"),
        ('version: "1"\nsource: "s"\nhours: ["07:00", "11:30"]\n', "hours", "07:00"),
        ("- 1\n- 2\n", "<root>", "[1, 2]"),
        ("version: [\n", "<yaml>", "None"),
    ],
)
def test_override_errors_name_file_field_and_value(text: str, field: str, value: str) -> None:
    with pytest.raises(CalendarConfigError) as info:
        read_override("calendars/XX.yaml", text)
    message = str(info.value)
    assert message.startswith("calendars/XX.yaml: ")
    assert info.value.field == field
    assert f"field {field!r}" in message
    assert value in message


def test_shipped_national_file_is_valid() -> None:
    override = read_override(Path(__file__).parents[2] / "eventkit" / "calendars" / "VN.yaml")
    assert override.source
    assert override.hours is None


# --- properties ----------------------------------------------------------------------------------------------

_SEGMENTS = [(7 * 60, 11 * 60 + 30), (13 * 60 + 30, 17 * 60)]  # minutes, the default hours


def _instants() -> st.SearchStrategy[datetime]:
    naive = st.datetimes(min_value=datetime(2000, 1, 5), max_value=datetime(2098, 12, 31))
    offsets = st.sampled_from([7 * 60, 7 * 60, 0, -5 * 60, 9 * 60 + 30, 14 * 60])
    return st.builds(lambda d, m: d.replace(tzinfo=timezone(timedelta(minutes=m))), naive, offsets)


_HOURS = st.floats(min_value=0, max_value=2_500, allow_nan=False, allow_infinity=False)


def _minutes_of_day(t: datetime) -> float:
    return t.hour * 60 + t.minute + (t.second + t.microsecond / 1e6) / 60


def _reference_add(t: datetime, minutes: int) -> datetime:
    """DOMAIN §3.2 due_at written naively: walk the segments of successive working days (minutes > 0)."""
    t = CAL.normalize(t)
    day, remaining = t.date(), float(minutes)
    position = _minutes_of_day(t)
    while True:
        if CAL.is_working_day(day):
            for start, end in _SEGMENTS:
                if position >= end:
                    continue
                begin = max(position, start)
                if remaining <= end - begin:
                    midnight = datetime.combine(day, time(), VN_TZ)
                    return midnight + timedelta(minutes=begin + remaining)
                remaining -= end - begin
        day += timedelta(days=1)
        position = 0


@settings(max_examples=300, deadline=None)
@given(_instants(), st.integers(min_value=1, max_value=60 * 8 * 300))
def test_add_working_hours_equals_a_naive_segment_walk(t: datetime, minutes: int) -> None:
    assert CAL.add_working_hours(t, minutes / 60) == _reference_add(t, minutes)


@settings(max_examples=300, deadline=None)
@given(_instants(), _HOURS, _HOURS)
def test_add_working_hours_is_monotone(t: datetime, h1: float, h2: float) -> None:
    lo, hi = sorted((h1, h2))
    assert CAL.add_working_hours(t, lo) <= CAL.add_working_hours(t, hi)


@settings(max_examples=300, deadline=None)
@given(_instants(), _HOURS)
def test_hours_between_inverts_adding(t: datetime, h: float) -> None:
    start = CAL.normalize(t)
    assert abs(CAL.working_hours_between(start, CAL.add_working_hours(start, h)) - h) < 1e-6
    assert abs(CAL.working_hours_between(t, CAL.add_working_hours(t, h)) - h) < 1e-6  # any t, too
    assert CAL.working_ordinal(CAL.add_working_hours(CAL.add_working_hours(t, h), -h)) == CAL.working_ordinal(t)


@settings(max_examples=300, deadline=None)
@given(_instants(), _instants())
def test_ordinals_order_instants_in_working_time(a: datetime, b: datetime) -> None:
    oa, ob = CAL.working_ordinal(a), CAL.working_ordinal(b)
    if a <= b:
        assert oa <= ob
        assert CAL.working_hours_between(a, b) == pytest.approx(ob - oa, abs=1e-6)
    assert CAL.working_ordinal(CAL.normalize(a)) == oa
    assert CAL.working_ordinal(CAL.add_working_hours(a, 0)) == oa
    assert CAL.working_hours_between(a, CAL.normalize(a)) == 0
    assert CAL.normalize(a) >= a


@settings(max_examples=300, deadline=None)
@given(_instants(), _HOURS)
def test_results_lie_in_working_time(t: datetime, h: float) -> None:
    normalized = CAL.normalize(t)
    assert CAL.is_working_day(normalized.date())
    assert any(s <= _minutes_of_day(normalized) < e for s, e in _SEGMENTS)  # opening form: [start, end)
    due = CAL.add_working_hours(t, h)
    assert due.tzinfo is VN_TZ
    assert CAL.is_working_day(due.date())
    assert any(s < _minutes_of_day(due) <= e for s, e in _SEGMENTS)  # canonical form: (start, end]


@settings(max_examples=300, deadline=None)
@given(st.dates(min_value=date(2000, 1, 1), max_value=date(2100, 12, 31)))
def test_working_days_follow_the_library_outside_the_overrides(d: date) -> None:
    if d in {date(2025, 5, 2), date(2025, 4, 26)}:
        return
    assert CAL.is_working_day(d) == _library(d.year).is_working_day(d)


@functools.cache
def _library(year: int) -> holidays.HolidayBase:
    return holidays.country_holidays("VN", years=year)


# --- the remembered working ordinals equal the computed ones -------------------------------------------


@settings(max_examples=1500)
@given(
    seconds=st.integers(0, 20 * 365 * 86400),
    offset_minutes=st.sampled_from([0, 420, -300, 345, 600]),
    zone=st.sampled_from([None, "Europe/Paris", "America/New_York"]),
    fold=st.integers(0, 1),
)
def test_remembered_ordinals_equal_the_computed_ones(
    seconds: int, offset_minutes: int, zone: str | None, fold: int
) -> None:
    cal = WorkingCalendar.load()
    utc = datetime(2015, 1, 1, tzinfo=UTC) + timedelta(seconds=seconds)
    tz = ZoneInfo(zone) if zone else timezone(timedelta(minutes=offset_minutes))
    t = utc.astimezone(tz).replace(fold=fold)
    for _ in range(2):  # computed, then remembered
        assert cal._ordinal_us(t) == cal._compute_ordinal_us(t)
        assert cal.working_ordinal(t) == cal._compute_ordinal_us(t) / 3_600_000_000
