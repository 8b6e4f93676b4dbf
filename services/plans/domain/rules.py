"""What the plans domain decides with besides state and time: the working calendar, the unit registry, the
indicators targets may name and the PAR criteria trees. All are injected (configuration and shared
plumbing), so the domain stays pure and tests can hand in small fakes.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta, timezone
from enum import StrEnum
from typing import Protocol

from contracts.plans import MeasureUnit

__all__ = [
    "VN_TZ",
    "CriteriaTree",
    "Criterion",
    "CriterionMethod",
    "Indicator",
    "IndicatorCatalog",
    "Rules",
    "Timeliness",
    "UnitDirectory",
    "UnitRef",
    "WorkingTime",
    "deadline_passed",
    "timeliness",
]

#: Vietnam's civil time (+07:00, no daylight saving); deadlines are Vietnamese calendar days
VN_TZ = timezone(timedelta(hours=7))


class WorkingTime(Protocol):
    """The part of :class:`eventkit.worktime.WorkingCalendar` the plans domain uses (shared, not copied)."""

    def is_working_day(self, d: date, /) -> bool:
        """Whether ``d`` is a working day (ngày làm việc)."""
        ...

    def next_working_day(self, d: date, /) -> date:
        """The first working day strictly after ``d``."""
        ...

    def working_ordinal(self, t: datetime, /) -> float:
        """Working hours since a fixed epoch: comparing ordinals compares instants in working time."""
        ...


@dataclass(frozen=True)
class UnitRef:
    """An administrative unit as events carry it: current code, province, and the pre-2025 code if mapped."""

    unit_code: str
    province_code: str
    legacy_code: str | None = None


class UnitDirectory(Protocol):
    """Resolves a unit code as written in a document of a given date (pre-2025 codes map to current ones)."""

    def resolve(self, code: str, at: date, /) -> UnitRef | str:
        """The unit, or the reason the code is refused."""
        ...


@dataclass(frozen=True)
class Indicator:
    """An indicator the scoring service computes, that a plan target may name."""

    indicator_id: str
    name: str
    unit: MeasureUnit
    #: which events feed it (dossiers, surveys, plans) or ``manual`` for statistics entered by officials
    source: str
    #: a percentage that can exceed 100 (growth rates); other percentages must lie in [0, 100]
    may_exceed_100: bool = False


@dataclass(frozen=True)
class IndicatorCatalog:
    """The known indicator ids (configuration: ``services/plans/config/indicators.yaml``)."""

    indicators: Mapping[str, Indicator]

    def get(self, indicator_id: str) -> Indicator | None:
        """The indicator, or None when the id is unknown."""
        return self.indicators.get(indicator_id)


class CriterionMethod(StrEnum):
    """How a PAR criterion is scored (DOMAIN §6.2)."""

    EVENT = "event"  # computed by the scoring service from events
    SURVEY = "survey"  # from survey results
    MANUAL = "manual"  # appraised from documents: needs evidence (tài liệu kiểm chứng)
    HYBRID = "hybrid"


@dataclass(frozen=True)
class Criterion:
    """One node of a criteria tree: an area (lĩnh vực), criterion (tiêu chí) or sub-criterion (TCTP)."""

    criterion_id: str
    name: str
    max_score: float
    method: CriterionMethod
    #: a positive score must come with evidence (manual criteria by default)
    evidence_required: bool


@dataclass(frozen=True)
class CriteriaTree:
    """A province's PAR criteria set for one year and level, loaded as configuration (DOMAIN §6.2)."""

    criteria_set_id: str
    province_code: str
    year: int
    level: str
    source_decision: str
    criteria: Mapping[str, Criterion] = field(default_factory=dict)

    def get(self, criterion_id: str) -> Criterion | None:
        """The criterion, or None when the tree has no such id."""
        return self.criteria.get(criterion_id)


@dataclass(frozen=True)
class Rules:
    """Everything ``decide`` needs besides state, command and time."""

    calendar: WorkingTime
    units: UnitDirectory
    indicators: IndicatorCatalog
    criteria_sets: Mapping[str, CriteriaTree]
    #: how far in the future a reported instant (done_at, submitted_at...) may be: clocks differ a little
    clock_skew: timedelta = timedelta(minutes=5)

    @staticmethod
    def criteria_by_id(trees: Iterable[CriteriaTree]) -> dict[str, CriteriaTree]:
        """Index trees by their id, refusing two trees with the same id (a configuration error)."""
        result: dict[str, CriteriaTree] = {}
        for tree in trees:
            if tree.criteria_set_id in result:
                msg = f"criteria set {tree.criteria_set_id!r} is configured twice"
                raise ValueError(msg)
            result[tree.criteria_set_id] = tree
        return result


@dataclass(frozen=True)
class Timeliness:
    """Whether something due on a date was done in time, measured in working days."""

    on_time: bool
    working_days_late: int


def _effective_due(calendar: WorkingTime, due: date) -> date:
    # Civil Code rule (DOMAIN §3.1): a period whose last day is a non-working day ends on the next working day
    return due if calendar.is_working_day(due) else calendar.next_working_day(due)


def _end_of(due: date) -> datetime:
    # midnight after the due day: its working ordinal is the end of that day's working time
    return datetime.combine(due + timedelta(days=1), time(0), VN_TZ)


def deadline_passed(calendar: WorkingTime, due: date, now: datetime) -> bool:
    """Whether the working time of the (effective) due day has ended at ``now``."""
    effective = _effective_due(calendar, due)
    return calendar.working_ordinal(now) > calendar.working_ordinal(_end_of(effective))


def timeliness(calendar: WorkingTime, due: date, done_at: datetime) -> Timeliness:
    """On time when done within the working time of the due day (moved to the next working day when it is
    not one). Compared in working time, as the dossiers service does: a Saturday completion after a Friday
    deadline is on time (no working time passed). Lateness is the number of working days after the due day
    up to the one whose working time the completion falls in (after close counts as that day's close)."""
    end = calendar.working_ordinal(done_at)
    day = _effective_due(calendar, due)
    late = 0
    while end > calendar.working_ordinal(_end_of(day)):
        day = calendar.next_working_day(day)
        late += 1
    return Timeliness(on_time=late == 0, working_days_late=late)
