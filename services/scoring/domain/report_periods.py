"""Day ranges beyond the stored month/quarter/year: year-to-date and the provinces' reporting periods.

A province (or a commune's annual PAR plan) reports on data ranges that do not follow the calendar: the
seed-003 plan of xã Ba Nam (Quảng Ngãi, 2024) cuts the Q1 report's data at 15/12/2023-10/3/2024 and the year
report's at 15/12/2023-14/12/2024 [V seed 003 §IV]. A scheme is versioned configuration
(``services/scoring/config/periods/*.yaml``); this module validates it and does the date arithmetic (pure).
Every range is a closed interval of Vietnamese calendar days; its cut-off is 00:00 (UTC+7) of the day after.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from typing import Any, Self

from pydantic import BaseModel, ConfigDict, Field, model_validator

from services.scoring.domain.activity import VN_TZ

__all__ = ["DayRange", "ReportPeriodSpec", "ReportScheme", "parse_scheme", "range_cutoff", "report_ranges", "ytd"]


@dataclass(frozen=True, slots=True)
class DayRange:
    """A closed range of days with a label: ``first`` .. ``last`` inclusive."""

    label: str
    first: date
    last: date

    def contains(self, day: date) -> bool:
        """Whether ``day`` lies in the range."""
        return self.first <= day <= self.last


def range_cutoff(last: date) -> datetime:
    """The instant a range ending on ``last`` is cut at: 00:00 UTC+7 of the next day."""
    return datetime.combine(last + timedelta(days=1), time(0), tzinfo=VN_TZ)


def ytd(day: date) -> DayRange:
    """Year to date: 1 January of ``day``'s year to ``day`` inclusive."""
    return DayRange(f"ytd:{day.isoformat()}", date(day.year, 1, 1), day)


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class ReportPeriodSpec(_Frozen):
    """One report of the scheme: its data range as month/day bounds relative to the report year."""

    key: str = Field(pattern=r"^[a-z0-9][a-z0-9_-]*$", description="e.g. q1, h1, year")
    name: str
    from_month: int = Field(ge=1, le=12)
    from_day: int = Field(ge=1, le=31)
    from_year_offset: int = Field(default=0, ge=-1, le=0, description="-1: the data range starts the year before")
    to_month: int = Field(ge=1, le=12)
    to_day: int = Field(ge=1, le=31)
    submit_by: str = Field(default="", description="When the report is due, as the source states it")

    def range(self, year: int) -> DayRange:
        """The data range of the report of ``year``."""
        first = date(year + self.from_year_offset, self.from_month, self.from_day)
        return DayRange(f"{self.key}:{year}", first, date(year, self.to_month, self.to_day))

    @model_validator(mode="after")
    def _ordered(self) -> Self:
        for y in (2023, 2024):  # one leap and one common year: 29/02 bounds would fail on the common one
            r = self.range(y)
            if r.first > r.last:
                msg = f"{self.key}: data range starts after it ends ({r.first} > {r.last})"
                raise ValueError(msg)
        return self


class ReportScheme(_Frozen):
    """A province's (or unit's) reporting periods with their data cut-offs."""

    scheme: str = Field(pattern=r"^[a-z0-9][a-z0-9._-]*$")
    name: str
    source: str = Field(min_length=1, description="Where the ranges come from, with the DOMAIN tag")
    applies_to: str = Field(default="", description="Province or unit code(s) the scheme is for; '' = default")
    periods: tuple[ReportPeriodSpec, ...] = Field(min_length=1)

    @model_validator(mode="after")
    def _unique(self) -> Self:
        keys = [p.key for p in self.periods]
        if len(keys) != len(set(keys)):
            msg = "report keys must be unique"
            raise ValueError(msg)
        return self

    def period(self, key: str) -> ReportPeriodSpec | None:
        """The report with this key."""
        return next((p for p in self.periods if p.key == key), None)


def parse_scheme(data: Any) -> ReportScheme:
    """Validate a parsed YAML mapping."""
    return ReportScheme.model_validate(data)


def report_ranges(scheme: ReportScheme, day: date, key: str | None = None) -> list[DayRange]:
    """The data ranges of the scheme's reports (only ``key`` if given) that contain ``day``.

    A data range may start the year before its report year (15/12 of the previous year), so the reports of
    ``day``'s year and of the next year are both candidates. Several reports can contain a day (a Q1 and a
    half-year report overlap); the caller asks for one by key.
    """
    out: list[DayRange] = []
    for spec in scheme.periods:
        if key is not None and spec.key != key:
            continue
        for year in (day.year, day.year + 1):
            r = spec.range(year)
            if r.contains(day):
                out.append(r)
    return out
