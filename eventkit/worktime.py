"""The shared working-time calendar (thời gian làm việc): due dates of dossiers and deadlines of plan tasks.

Everything here answers one question fast: *where is this instant in working time?* A calendar maps every
instant to a **working ordinal** — working microseconds since a fixed epoch (the first working moment of
2000: Tue 04/01/2000 07:00 nationally). Working time stands still during nights, weekends, lunch breaks and
holidays, so Sat 10:00, Fri 17:00 and Mon 07:00 share one ordinal; adding working hours is adding to the
ordinal, and the working time between two instants is the difference of their ordinals. Because every
working day of a calendar has the same hours (:class:`WorkingHours`), the ordinal of a date is ``working
days before it x day length`` — one dict lookup — plus the position within the day (a loop over two
segments). Tables are built per year, lazily, on first use, and cached; nothing is built at import time
(``holidays`` and ``yaml`` are imported on first use).

Sources of the rules (tags as in DOMAIN §0.1):

- Working days: Monday-Friday except public holidays and compensatory days off, plus swapped working
  Saturdays (DOMAIN §3.1, §4). The default comes from ``holidays.country_holidays("VN")`` (pinned 0.108 in
  pyproject.toml) incl. its swapped days (``weekend_workdays``); the shipped ``calendars/VN.yaml`` and an
  optional province file add or remove dates by configuration (DOMAIN §0.3.5, §4.2: "must be loaded
  yearly"). Civil servants' five-day week dates from QĐ 188/1999/QĐ-TTg [U], so years before 2000 are
  refused rather than computed wrongly; ``holidays`` has no lunar data after 2100, so neither are those.
- Working hours: per service point, default 07:00-11:30 + 13:30-17:00 = 8 h [V] TD (DOMAIN §3.1).
- :meth:`WorkingCalendar.normalize` is DOMAIN §3.2 ``normalize`` (cut-offs [V] TD): after close or on a
  non-working day → next working day's opening; before opening → opening; lunch → 13:30.
- Due dates in working time are DOMAIN §3.2 ``due_at`` in its canonical form: an instant that is a
  segment start is written as the end of the previous segment (Fri 17:00, not Mon 07:00) [I].
- Limits in calendar days ("ngày") and months ("tháng"): [U] Civil-code rule, see :class:`PeriodRules` —
  the one place where those choices are made.

All outputs are aware datetimes in :data:`VN_TZ`; naive inputs are refused (an unlabelled wall-clock time
is exactly the ambiguity a deadline must not have).
"""

from __future__ import annotations

import calendar as _gregorian
import functools
import hashlib
import importlib.metadata
import json
import math
import re
import threading
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta, timezone
from importlib import resources
from pathlib import Path
from typing import Any, Final

__all__ = [
    "DEFAULT_HOURS",
    "DEFAULT_PERIOD_RULES",
    "MAX_YEAR",
    "MIN_YEAR",
    "TIME_UNITS",
    "VN_TZ",
    "CalendarConfigError",
    "CalendarOverride",
    "PeriodRules",
    "WorkingCalendar",
    "WorkingHours",
    "clear_calendar_cache",
    "read_override",
]

#: Việt Nam's time (Asia/Ho_Chi_Minh): UTC+7 all year, no daylight saving, so a fixed offset is exact and
#: far cheaper than a zoneinfo lookup on the hot path
VN_TZ: Final = timezone(timedelta(hours=7))

#: first and last year a calendar answers for: the five-day civil-service week starts in late 1999 [U], and
#: ``holidays`` 0.108 has no Vietnamese lunar dates after 2100 (it silently returns no holidays at all)
MIN_YEAR: Final = 2000
MAX_YEAR: Final = 2100

#: the statutory time units (DonViTinh), the same strings as ``contracts.dossiers.TimeUnit`` values
TIME_UNITS: Final = frozenset({"working_hours", "working_days", "calendar_days", "months"})

#: bump when a rule in this module changes what a calendar computes (it is part of every calendar version)
_RULES_REVISION: Final = "worktime-1"

_US_PER_HOUR: Final = 3_600_000_000
_US_PER_MINUTE: Final = 60_000_000
_US_PER_SECOND: Final = 1_000_000
_SATURDAY: Final = 5


class CalendarConfigError(ValueError):
    """An override file (or constructor argument) is invalid: says which file, which field, which value."""

    def __init__(self, file: str, field_name: str, value: object, reason: str) -> None:
        self.file = file
        self.field = field_name
        self.value = value
        self.reason = reason
        super().__init__(f"{file}: field {field_name!r}: value {value!r}: {reason}")


def _time_us(t: time) -> int:
    return ((t.hour * 60 + t.minute) * 60 + t.second) * _US_PER_SECOND + t.microsecond


def _hhmm(t: time) -> str:
    return t.isoformat(timespec="minutes") if not (t.second or t.microsecond) else t.isoformat()


@dataclass(frozen=True)
class WorkingHours:
    """Opening hours of a service point (giờ làm việc): the same on every working day of a calendar.

    Default 07:00-11:30 and 13:30-17:00 = 8 h, the hours TD uses (DOMAIN §3.1 [V]); one working day is
    ``hours_per_day`` working hours when a limit in days is converted (TD ``soNgay = hours/8`` [V]).
    Segments are naive wall-clock times in :data:`VN_TZ`, sorted, non-empty and non-overlapping.
    """

    segments: tuple[tuple[time, time], ...] = ((time(7), time(11, 30)), (time(13, 30), time(17)))

    def __post_init__(self) -> None:
        if not self.segments:
            msg = "WorkingHours needs at least one segment"
            raise ValueError(msg)
        previous_end: time | None = None
        for segment in self.segments:
            if len(segment) != 2:
                msg = f"a segment is (start, end), got {segment!r}"
                raise ValueError(msg)
            start, end = segment
            if not isinstance(start, time) or not isinstance(end, time):
                msg = f"segment bounds must be datetime.time, got {segment!r}"
                raise TypeError(msg)
            if start.tzinfo is not None or end.tzinfo is not None:
                msg = f"segment times are wall-clock times in VN_TZ, without tzinfo: {segment!r}"
                raise ValueError(msg)
            if not start < end:
                msg = f"segment start must be before its end: {start.isoformat()}-{end.isoformat()}"
                raise ValueError(msg)
            if previous_end is not None and start < previous_end:
                msg = f"segments must be sorted and must not overlap: {start.isoformat()} < {previous_end.isoformat()}"
                raise ValueError(msg)
            previous_end = end

    @property
    def hours_per_day(self) -> float:
        """Working hours in one working day (8.0 by default)."""
        return self.day_us / _US_PER_HOUR

    @property
    def day_us(self) -> int:
        """Working microseconds in one working day."""
        return sum(_time_us(end) - _time_us(start) for start, end in self.segments)

    def describe(self) -> str:
        """``07:00-11:30,13:30-17:00``: how the hours appear in versions and messages."""
        return ",".join(f"{_hhmm(s)}-{_hhmm(e)}" for s, e in self.segments)


DEFAULT_HOURS: Final = WorkingHours()


@dataclass(frozen=True)
class PeriodRules:
    """How limits in calendar days ("ngày") and months ("tháng") end — the [U] choices, made here only.

    The usual legal basis is the Civil Code's time computation (BLDS 2015 Art. 147-148, not retrieved:
    [U], DOMAIN §3.1): the day of the event is not counted, and a period whose last day is a non-working
    day ends on the next working day; TD likewise never sets a due date on a weekend/holiday [V]. So:

    - the count starts the day after the receipt date, and the period ends at the **close of business**
      (end of the last segment) of ``receipt date + N days`` (or ``+ N months``, the day of month clamped
      to the month's length: 31/01 + 1 month = 28/02 or 29/02); ``N = 0`` means "within the day";
    - ``count_from_deemed_receipt`` (default True): the receipt date is the date of
      :meth:`WorkingCalendar.normalize` — a dossier received after close or on a Saturday is deemed
      received at the next opening (DOMAIN §3.1 cut-off [V] TD, Saturday receipt [I]), the same moment the
      working-time clock starts; False counts from the raw calendar date of receipt;
    - ``roll_forward`` (default True): a last day that is not a working day moves to the next working day
      (Art. 148 [U], TD [V]); False keeps the calendar date (its close time-of-day).

    TD's optional "skip holidays while counting calendar days" (``…NgayBoQuaNgayLe``) is not offered: it
    is a per-system option, not law.
    """

    count_from_deemed_receipt: bool = True
    roll_forward: bool = True


DEFAULT_PERIOD_RULES: Final = PeriodRules()


@functools.cache
def _library_decade(first_year: int) -> Mapping[int, tuple[frozenset[date], frozenset[date]]]:
    """(days off, swapped working weekend days) of ``holidays`` VN per year, ten years per call (one
    ``country_holidays`` object for a decade costs about what one for a single year does); shared by all
    calendars."""
    import holidays  # noqa: PLC0415 - 80 ms import, paid by the first calendar that needs a year, not at import

    lib = holidays.country_holidays("VN", years=range(first_year, first_year + 10))
    # weekend_workdays holds the static swaps of several years whatever `years` says: split by year
    return {
        y: (
            frozenset(d for d in lib if d.year == y),
            frozenset(d for d in lib.weekend_workdays if d.year == y),
        )
        for y in range(first_year, first_year + 10)
    }


def _library_year(year: int) -> tuple[frozenset[date], frozenset[date]]:
    return _library_decade(year - year % 10)[year]


@functools.cache
def _library_version() -> str:
    return importlib.metadata.version("holidays")


class WorkingCalendar:
    """Working days and hours of one jurisdiction (national, or a province with its override file).

    A day is a working day when (first rule that applies wins):

    1. it is in ``days_off`` → not working; in ``workdays`` → working (swapped Saturdays, DOMAIN §4.2);
    2. it is in ``not_days_off`` → the ``holidays`` entry of that date is ignored and the weekday rule
       decides (e.g. 24/11 "Ngày Văn hóa Việt Nam", in ``holidays`` 0.108 for 2026+ while DOMAIN §4.1 says
       it was not yet law at the time of the sources — switchable, not hard-coded);
    3. it is one of ``holidays``' swapped working weekend days (``weekend_workdays``) → working;
    4. Saturday/Sunday → not working; a ``holidays`` VN holiday (incl. observed/compensatory days and the
       library's swapped days off) → not working; otherwise working.

    Removing one half of a swap does not remove the other half: override both dates.
    Instances are immutable from the outside and safe to share between threads (tables grow under a lock).
    """

    version: str

    def __init__(
        self,
        *,
        hours: WorkingHours = DEFAULT_HOURS,
        days_off: Iterable[date] = (),
        workdays: Iterable[date] = (),
        name: str = "VN",
        not_days_off: Iterable[date] = (),
        period_rules: PeriodRules = DEFAULT_PERIOD_RULES,
    ) -> None:
        self.name = name
        self.hours = hours
        self.period_rules = period_rules
        off, work, revert = (
            frozenset(_as_date(d, "constructor") for d in ds) for ds in (days_off, workdays, not_days_off)
        )
        for label, a, b in (("days_off/workdays", off, work), ("days_off/not_days_off", off, revert)):
            if both := a & b:
                raise CalendarConfigError("constructor", label, sorted(both), "a date can be in one list only")
        if both := work & revert:
            raise CalendarConfigError("constructor", "workdays/not_days_off", sorted(both), "in one list only")
        self._off, self._work, self._revert = off, work, revert

        # segments as integers: (start, end, working us before the segment); all arithmetic is on int
        # microseconds so that adding and measuring round-trip exactly (floats only at the API surface)
        segs: list[tuple[int, int, int]] = []
        cum = 0
        for start, end in hours.segments:
            s, e = _time_us(start), _time_us(end)
            segs.append((s, e, cum))
            cum += e - s
        self._segs: tuple[tuple[int, int, int], ...] = tuple(segs)
        self._day_us = cum
        # inverse: (working us at the segment's end, offset turning working us into time-of-day us)
        self._inv: tuple[tuple[int, int], ...] = tuple((c + e - s, s - c) for s, e, c in segs)
        self._open_time = hours.segments[0][0]
        self._close_time = hours.segments[-1][1]

        # date ordinal -> (working days from the epoch to the day before, is a working day)
        self._days: dict[int, tuple[int, bool]] = {}
        self._work_dates: list[date] = []  # index = working days before it since the epoch
        self._built_through = MIN_YEAR - 1
        self._lock = threading.Lock()
        self._min_ordinal = date(MIN_YEAR, 1, 1).toordinal()
        self._max_ordinal = date(MAX_YEAR, 12, 31).toordinal()
        # instant -> working µs (see _ordinal_us): a dossier's verdicts convert the same few instants (its
        # receipt, due date, end, supplements) several times each; bounded, cleared when full
        self._ordinals: dict[datetime, int] = {}
        self.version = self._compute_version()

    # --- construction ------------------------------------------------------------------------------------

    @classmethod
    def load(
        cls,
        province_code: str | None = None,
        *,
        overrides_dir: Path | None = None,
        hours: WorkingHours | None = None,
        period_rules: PeriodRules | None = None,
    ) -> WorkingCalendar:
        """The calendar of the nation (``province_code=None``) or of a province; cached per arguments.

        Layers, later ones winning date by date: ``holidays`` VN → the shipped ``calendars/VN.yaml`` →
        ``<overrides_dir>/<province_code>.yaml`` if that file exists (most provinces have none: the
        national calendar applies, and ``version`` says so). Hours: ``hours`` if given, else the province
        file's, else VN.yaml's, else :data:`DEFAULT_HOURS`. Files are read once per process (see
        :func:`clear_calendar_cache` after editing one).
        """
        if province_code is not None:
            if overrides_dir is None:
                msg = f"province {province_code!r}: name the directory of override files (overrides_dir)"
                raise ValueError(msg)
            if not re.fullmatch(r"[A-Za-z0-9_-]{1,32}", province_code):
                msg = f"province code {province_code!r}: letters, digits, '-' and '_' only (it names a file)"
                raise ValueError(msg)
        return _load_cached(province_code, overrides_dir, hours, period_rules or DEFAULT_PERIOD_RULES)

    def _compute_version(self) -> str:
        data = {
            "rules": _RULES_REVISION,
            "days_off": sorted(d.isoformat() for d in self._off),
            "workdays": sorted(d.isoformat() for d in self._work),
            "not_days_off": sorted(d.isoformat() for d in self._revert),
            "hours": self.hours.describe(),
            "period_rules": [self.period_rules.count_from_deemed_receipt, self.period_rules.roll_forward],
        }
        digest = hashlib.sha256(json.dumps(data, sort_keys=True).encode()).hexdigest()[:16]
        return f"holidays-{_library_version()}+{digest}"

    def __repr__(self) -> str:
        return f"WorkingCalendar(name={self.name!r}, hours={self.hours.describe()!r}, version={self.version!r})"

    # --- tables ------------------------------------------------------------------------------------------

    def _is_working(self, d: date, lib_off: frozenset[date], lib_work: frozenset[date]) -> bool:
        if d in self._off:
            return False
        if d in self._work:
            return True
        if d in self._revert:
            return d.weekday() < _SATURDAY
        if d in lib_work:
            return True
        return d.weekday() < _SATURDAY and d not in lib_off

    def _build_through(self, year: int) -> None:
        """Extend the tables up to ``year``: years are built in order because each year's ordinals start
        where the previous year's end (the epoch is fixed, so ordinals never depend on call order)."""
        with self._lock:
            while self._built_through < year:
                y = self._built_through + 1
                lib_off, lib_work = _library_year(y)
                n = len(self._work_dates)
                for o in range(date(y, 1, 1).toordinal(), date(y + 1, 1, 1).toordinal()):
                    d = date.fromordinal(o)
                    working = self._is_working(d, lib_off, lib_work)
                    self._days[o] = (n, working)
                    if working:
                        self._work_dates.append(d)
                        n += 1
                self._built_through = y

    def _entry(self, ordinal: int) -> tuple[int, bool]:
        entry = self._days.get(ordinal)
        if entry is None:
            if not self._min_ordinal <= ordinal <= self._max_ordinal:
                msg = f"{date.fromordinal(ordinal)} is outside the calendar's years {MIN_YEAR}-{MAX_YEAR}"
                raise ValueError(msg)
            self._build_through(date.fromordinal(ordinal).year)
            entry = self._days[ordinal]
        return entry

    def _work_date(self, index: int) -> date:
        """The ``index``-th working day since the epoch (0 = first working day of 2000)."""
        if index < 0:
            msg = f"the result lies before the first working day of {MIN_YEAR}, outside the calendar's years"
            raise ValueError(msg)
        dates = self._work_dates
        while index >= len(dates):
            if self._built_through >= MAX_YEAR:
                msg = f"the result lies after {MAX_YEAR}, outside the calendar's years"
                raise ValueError(msg)
            self._build_through(self._built_through + 1)
        return dates[index]

    # --- instants <-> working ordinals (the hot path) ----------------------------------------------------

    def _ordinal_us(self, t: datetime) -> int:
        """Working microseconds from the epoch to ``t`` (any instant, working or not), remembered per instant.

        Exact: only instants with a fixed-offset zone (``utcoffset(None)`` known: +07:00, UTC, pydantic's
        parsed offsets) are remembered; those hash and compare by instant, and the result depends on the
        instant only. Zones with daylight saving are not (two instants of a repeated hour compare equal
        within one zone), nor naive values (refused below).
        """
        tz = t.tzinfo
        if tz is None or tz.utcoffset(None) is None:
            return self._compute_ordinal_us(t)
        ordinals = self._ordinals
        known = ordinals.get(t)
        if known is None:
            known = self._compute_ordinal_us(t)
            if len(ordinals) >= _MAX_REMEMBERED:
                ordinals.clear()
            ordinals[t] = known
        return known

    def _compute_ordinal_us(self, t: datetime) -> int:
        if t.tzinfo is not VN_TZ:
            if t.tzinfo is None or t.utcoffset() is None:
                msg = f"naive datetime {t.isoformat()}: give an aware instant (e.g. +07:00)"
                raise ValueError(msg)
            t = t.astimezone(VN_TZ)
        before, working = self._entry(t.toordinal())
        if not working:
            return before * self._day_us
        tod = ((t.hour * 60 + t.minute) * 60 + t.second) * _US_PER_SECOND + t.microsecond
        for start, end, cum in self._segs:
            if tod < start:
                return before * self._day_us + cum
            if tod < end:
                return before * self._day_us + cum + tod - start
        return (before + 1) * self._day_us

    def _instant(self, ordinal_us: int) -> datetime:
        """The instant of a working ordinal, canonical form: a segment start is the previous segment's end."""
        q, r = divmod(ordinal_us, self._day_us)
        if r == 0:
            if q == 0:  # the epoch itself: its previous segment end lies before MIN_YEAR, give the opening
                return datetime.combine(self._work_date(0), self._open_time, VN_TZ)
            q -= 1
            r = self._day_us
        d = self._work_date(q)
        tod = r
        for cum_end, offset in self._inv:
            if r <= cum_end:
                tod = r + offset
                break
        hh, rem = divmod(tod, _US_PER_HOUR)
        mm, rem = divmod(rem, _US_PER_MINUTE)
        ss, us = divmod(rem, _US_PER_SECOND)
        return datetime(d.year, d.month, d.day, hh, mm, ss, us, VN_TZ)

    # --- public API ----------------------------------------------------------------------------------------

    def is_working_day(self, d: date) -> bool:
        """Whether ``d`` is a working day (ngày làm việc) of this calendar; see the class docstring."""
        return self._entry(d.toordinal())[1]

    def next_working_day(self, d: date) -> date:
        """The first working day strictly after ``d`` (DOMAIN §3.2 ``next_working_day``)."""
        before, working = self._entry(d.toordinal())
        return self._work_date(before + 1 if working else before)

    def normalize(self, t: datetime) -> datetime:
        """DOMAIN §3.2 ``normalize``: move ``t`` into working time, in *opening* form.

        On a non-working day or at/after close (17:00) → next working day's opening (07:00); before opening
        → opening; in a break (11:30 ≤ t < 13:30) → the next segment's start (13:30); otherwise ``t``
        itself (converted to :data:`VN_TZ`). Cut-offs [V] TD; Saturday receipt → next opening [I].
        """
        t = _aware(t)
        before, working = self._entry(t.toordinal())
        if working:
            tod = ((t.hour * 60 + t.minute) * 60 + t.second) * _US_PER_SECOND + t.microsecond
            for (start, end, _), (start_time, _end_time) in zip(self._segs, self.hours.segments, strict=True):
                if tod < start:
                    return datetime.combine(t.date(), start_time, VN_TZ)
                if tod < end:
                    return t
            before += 1
        return datetime.combine(self._work_date(before), self._open_time, VN_TZ)

    def working_ordinal(self, t: datetime) -> float:
        """Working **hours** since a fixed epoch (the first working moment of 2000).

        Comparing ordinals compares instants in working time: Sat 10:00, Fri 17:00 and Mon 07:00 of one
        weekend have equal ordinals; this is how timeliness avoids TD's "Mon 07:00 vs Fri 17:00" artefact
        (DOMAIN §3.2 [I]). Exact: equal working instants give bit-equal floats.
        """
        return self._ordinal_us(t) / _US_PER_HOUR

    def working_hours_between(self, start: datetime, end: datetime) -> float:
        """Working hours from ``start`` to ``end`` (0.0 if ``end <= start``); O(1) after the year is built."""
        return max(0, self._ordinal_us(end) - self._ordinal_us(start)) / _US_PER_HOUR

    def add_working_hours(self, t: datetime, hours: float) -> datetime:
        """``t`` plus ``hours`` of working time, counted from ``normalize(t)`` (DOMAIN §3.2 ``due_at``).

        Canonical form: a result that is a segment start is written as the end of the previous segment
        (Fri 17:00, not Mon 07:00; 11:30, not 13:30). ``hours == 0`` gives ``normalize(t)`` in that form
        (a Saturday receipt → Fri 17:00). Negative ``hours`` go back in working time (e.g. "one working day
        before the due date", DOMAIN §3.6). Resolution: 1 µs.
        """
        return self._instant(self._ordinal_us(t) + _to_us(hours, _US_PER_HOUR))

    def add_working_days(self, t: datetime, days: float) -> datetime:
        """``add_working_hours(t, days * hours_per_day)`` — one working day is a day's working hours."""
        return self._instant(self._ordinal_us(t) + _to_us(days, self._day_us))

    def due_at(self, received_at: datetime, value: float, unit: str) -> datetime:
        """The due date (ngày hẹn trả) of a limit ``value`` in ``unit`` for a receipt at ``received_at``.

        ``unit`` is one of :data:`TIME_UNITS` (``contracts.dossiers.TimeUnit`` members are accepted: they
        are strings). Working hours/days: :meth:`add_working_hours` (canonical form). Calendar days and
        months: :class:`PeriodRules` (whole, non-negative numbers only).
        """
        if not math.isfinite(value) or value < 0:
            msg = f"a time limit is a finite number >= 0, got {value!r}"
            raise ValueError(msg)
        unit = str(unit)  # a StrEnum member's str() is its value
        if unit == "working_hours":
            return self.add_working_hours(received_at, value)
        if unit == "working_days":
            return self.add_working_days(received_at, value)
        if unit not in TIME_UNITS:
            msg = f"unknown time unit {unit!r}; expected one of {sorted(TIME_UNITS)}"
            raise ValueError(msg)
        if value != int(value):
            msg = f"a limit in {unit} must be a whole number, got {value!r}"
            raise ValueError(msg)
        n = int(value)
        rules = self.period_rules
        start = self.normalize(received_at) if rules.count_from_deemed_receipt else _aware(received_at)
        first = start.date()
        last = first + timedelta(days=n) if unit == "calendar_days" else _add_months(first, n)
        if rules.roll_forward and not self.is_working_day(last):
            last = self.next_working_day(last)
        return datetime.combine(last, self._close_time, VN_TZ)


#: how many instants a calendar remembers the working ordinal of (≈ 10 MB at most)
_MAX_REMEMBERED = 100_000


def _aware(t: datetime) -> datetime:
    if t.tzinfo is None or t.utcoffset() is None:
        msg = f"naive datetime {t.isoformat()}: give an aware instant (e.g. +07:00)"
        raise ValueError(msg)
    return t if t.tzinfo is VN_TZ else t.astimezone(VN_TZ)


def _to_us(amount: float, us_per_unit: int) -> int:
    """``amount`` working hours/days in whole microseconds (rounded: the resolution of a datetime)."""
    if not math.isfinite(amount):
        msg = f"an amount of working time must be finite, got {amount!r}"
        raise ValueError(msg)
    return round(amount * us_per_unit)


def _add_months(d: date, months: int) -> date:
    """``d`` + ``months`` calendar months, the day clamped to the target month's length (31/01 + 1 → 28/02)."""
    y, m = divmod(d.month - 1 + months, 12)
    year, month = d.year + y, m + 1
    return date(year, month, min(d.day, _gregorian.monthrange(year, month)[1]))


def _as_date(value: object, file: str, field_name: str = "date") -> date:
    if isinstance(value, datetime) or not isinstance(value, date | str):
        raise CalendarConfigError(file, field_name, value, "expected a date YYYY-MM-DD")
    if isinstance(value, str):
        try:
            value = date.fromisoformat(value)
        except ValueError:
            raise CalendarConfigError(file, field_name, value, "expected a date YYYY-MM-DD") from None
    assert isinstance(value, date)  # narrowed above; for mypy
    if not MIN_YEAR <= value.year <= MAX_YEAR:
        raise CalendarConfigError(file, field_name, value.isoformat(), f"outside the years {MIN_YEAR}-{MAX_YEAR}")
    return value


# --- override files ------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class CalendarOverride:
    """One override file (national ``VN.yaml`` or ``<province>.yaml``); format in ``calendars/README.md``."""

    file: str
    version: str
    source: str
    days_off: frozenset[date] = field(default_factory=frozenset)
    workdays: frozenset[date] = field(default_factory=frozenset)
    not_days_off: frozenset[date] = field(default_factory=frozenset)
    hours: WorkingHours | None = None


_FIELDS: Final = frozenset({"version", "source", "days_off", "workdays", "not_days_off", "hours"})


@functools.cache
def _yaml_loader() -> type[Any]:
    """PyYAML's SafeLoader without implicit timestamps: dates arrive as strings, so that a bad date is
    reported against its field (PyYAML itself raises a bare ValueError for 2026-13-01) and a date-time
    is refused instead of silently becoming a date."""
    import yaml  # noqa: PLC0415 - only the (cached) load path needs it

    class Loader(yaml.SafeLoader):
        pass

    Loader.yaml_implicit_resolvers = {
        first: [(tag, rx) for tag, rx in resolvers if tag != "tag:yaml.org,2002:timestamp"]
        for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
    }
    return Loader


def read_override(path: Path | str, text: str | None = None) -> CalendarOverride:
    """Parse and validate an override file; every error names the file, the field and the value."""
    import yaml  # noqa: PLC0415 - only the (cached) load path needs it

    label = str(path)
    if text is None:
        text = Path(path).read_text(encoding="utf-8")
    try:
        doc = yaml.load(text, Loader=_yaml_loader())  # noqa: S506 - a SafeLoader subclass
    except yaml.YAMLError as e:
        raise CalendarConfigError(label, "<yaml>", None, f"not valid YAML: {e}") from None
    if not isinstance(doc, Mapping):
        raise CalendarConfigError(label, "<root>", doc, "expected a mapping with version, source, days_off, ...")
    if unknown := sorted(str(k) for k in doc if k not in _FIELDS):
        raise CalendarConfigError(label, unknown[0], doc[unknown[0]], f"unknown field; allowed: {sorted(_FIELDS)}")
    for key in ("version", "source"):
        value = doc.get(key)
        if not isinstance(value, str) or not value.strip():
            raise CalendarConfigError(label, key, value, "required, a non-empty (quoted) string")
    lists = _read_date_lists(label, doc)
    hours = _read_hours(label, doc["hours"]) if doc.get("hours") is not None else None
    return CalendarOverride(
        file=label,
        version=doc["version"],
        source=doc["source"],
        days_off=lists["days_off"],
        workdays=lists["workdays"],
        not_days_off=lists["not_days_off"],
        hours=hours,
    )


def _read_date_lists(label: str, doc: Mapping[str, Any]) -> dict[str, frozenset[date]]:
    lists: dict[str, frozenset[date]] = {}
    for key in ("days_off", "workdays", "not_days_off"):
        raw = doc.get(key) or []
        if not isinstance(raw, list):
            raise CalendarConfigError(label, key, raw, "expected a list of dates YYYY-MM-DD")
        dates = [_as_date(item, label, key) for item in raw]
        if len(set(dates)) != len(dates):
            twice = sorted({d for d in dates if dates.count(d) > 1})
            raise CalendarConfigError(label, key, twice[0].isoformat(), "listed twice")
        lists[key] = frozenset(dates)
    for a, b in (("days_off", "workdays"), ("days_off", "not_days_off"), ("workdays", "not_days_off")):
        if both := lists[a] & lists[b]:
            raise CalendarConfigError(label, f"{a}/{b}", min(both).isoformat(), "a date can be in one list only")
    for d in sorted(lists["not_days_off"]):
        if d.weekday() >= _SATURDAY:
            raise CalendarConfigError(
                label, "not_days_off", d.isoformat(), "a Saturday/Sunday is no holiday to remove; use workdays"
            )
    return lists


def _read_hours(label: str, raw: object) -> WorkingHours:
    if not isinstance(raw, Mapping) or set(raw) != {"segments"} or not isinstance(raw["segments"], list):
        raise CalendarConfigError(label, "hours", raw, 'expected {segments: [["07:00", "11:30"], ...]}')
    segments: list[tuple[time, time]] = []
    for i, seg in enumerate(raw["segments"]):
        where = f"hours.segments[{i}]"
        if not isinstance(seg, list) or len(seg) != 2:
            raise CalendarConfigError(label, where, seg, 'expected ["HH:MM", "HH:MM"]')
        bounds: list[time] = []
        for value in seg:
            if not isinstance(value, str):
                # unquoted 07:00 is YAML 1.1 sexagesimal: PyYAML reads it as the integer 420
                raise CalendarConfigError(label, where, value, 'quote times: "07:00" (unquoted 07:00 is a number)')
            try:
                bounds.append(time.fromisoformat(value))
            except ValueError:
                raise CalendarConfigError(label, where, value, "expected a time HH:MM or HH:MM:SS") from None
        segments.append((bounds[0], bounds[1]))
    try:
        return WorkingHours(tuple(segments))
    except ValueError as e:
        raise CalendarConfigError(label, "hours.segments", raw["segments"], str(e)) from None


def _national_override() -> CalendarOverride:
    resource = resources.files("eventkit") / "calendars" / "VN.yaml"
    return read_override("eventkit/calendars/VN.yaml", resource.read_text(encoding="utf-8"))


@functools.lru_cache(maxsize=256)
def _load_cached(
    province_code: str | None, overrides_dir: Path | None, hours: WorkingHours | None, period_rules: PeriodRules
) -> WorkingCalendar:
    layers = [_national_override()]
    if province_code is not None and overrides_dir is not None:
        path = Path(overrides_dir) / f"{province_code}.yaml"
        if path.is_file():
            layers.append(read_override(path))
    # flatten the layers date by date, later layers winning (a province can undo a national entry)
    kinds: dict[date, str] = {}
    chosen_hours = DEFAULT_HOURS
    for layer in layers:
        for kind, dates in (("off", layer.days_off), ("work", layer.workdays), ("revert", layer.not_days_off)):
            kinds.update(dict.fromkeys(dates, kind))
        chosen_hours = layer.hours or chosen_hours
    return WorkingCalendar(
        hours=hours or chosen_hours,
        days_off=[d for d, k in kinds.items() if k == "off"],
        workdays=[d for d, k in kinds.items() if k == "work"],
        not_days_off=[d for d, k in kinds.items() if k == "revert"],
        name=province_code or "VN",
        period_rules=period_rules,
    )


def clear_calendar_cache() -> None:
    """Forget loaded calendars (after an override file changed); the next :meth:`WorkingCalendar.load` rereads."""
    _load_cached.cache_clear()
