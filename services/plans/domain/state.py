"""The state ``decide`` judges commands against, folded from stored events by ``evolve``.

Each stream holds the events of one aggregate (a plan, a task, a report, an inspection, one criterion of
one unit's assessment). A command reads its own stream and sometimes another one (a task's plan, a
finding's inspection); folding all of them through one ``evolve`` fills the matching slot of one
:class:`PlansState`, because every event type belongs to exactly one kind of aggregate.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from datetime import datetime
from enum import StrEnum

from contracts.base import EventPayload
from contracts.plans import (
    CriterionAppraised,
    CriterionSelfAssessed,
    CriterionZeroed,
    InspectionFindingRecorded,
    InspectionPlanned,
    PlanIssued,
    RemediationTaskLinked,
    ReportScheduled,
    ReportSubmitted,
    TargetSet,
    TaskAssigned,
    TaskBecameOverdue,
    TaskCancelled,
    TaskCompleted,
)
from services.plans.domain.rules import UnitRef

__all__ = [
    "CriterionState",
    "Fact",
    "InspectionState",
    "PlanState",
    "PlansState",
    "ReportState",
    "TaskState",
    "TaskStatus",
    "evolve",
]


@dataclass(frozen=True)
class Fact:
    """A stored event as the domain sees it: the payload, the unit it belongs to and when it happened."""

    payload: EventPayload
    unit: UnitRef
    time: datetime


@dataclass(frozen=True)
class PlanState:
    """A plan that was issued, and its targets."""

    issued: PlanIssued
    unit: UnitRef
    targets: dict[str, TargetSet] = field(default_factory=dict)


class TaskStatus(StrEnum):
    """Where a task is in its lifecycle (overdue is a flag: an overdue task is still open)."""

    OPEN = "open"
    COMPLETED = "completed"
    CANCELLED = "cancelled"


@dataclass(frozen=True)
class TaskState:
    """A task of a plan."""

    assigned: TaskAssigned
    unit: UnitRef
    #: when the task was assigned (the plan's date): nothing can be done on it before
    assigned_at: datetime
    status: TaskStatus = TaskStatus.OPEN
    completed: TaskCompleted | None = None
    cancelled: TaskCancelled | None = None
    overdue: TaskBecameOverdue | None = None
    links: tuple[RemediationTaskLinked, ...] = ()


@dataclass(frozen=True)
class ReportState:
    """A scheduled report."""

    scheduled: ReportScheduled
    unit: UnitRef
    submitted: ReportSubmitted | None = None


@dataclass(frozen=True)
class InspectionState:
    """A planned inspection and its findings."""

    planned: InspectionPlanned
    unit: UnitRef
    findings: dict[str, InspectionFindingRecorded] = field(default_factory=dict)


@dataclass(frozen=True)
class CriterionState:
    """One criterion of one unit's assessment for one year: the latest score of each kind."""

    unit: UnitRef
    self_assessed: CriterionSelfAssessed | None = None
    appraised: CriterionAppraised | None = None
    zeroed: CriterionZeroed | None = None


@dataclass(frozen=True)
class PlansState:
    """The aggregates a command reads (None: that stream has no events)."""

    plan: PlanState | None = None
    task: TaskState | None = None
    report: ReportState | None = None
    inspection: InspectionState | None = None
    criterion: CriterionState | None = None


def evolve(state: PlansState, fact: Fact) -> PlansState:  # noqa: PLR0911 - one branch per event type
    """The state after ``fact``. Events that do not fit the state (never written by ``decide``) are ignored."""
    event = fact.payload
    match event:
        case PlanIssued():
            return replace(state, plan=PlanState(issued=event, unit=fact.unit))
        case TargetSet() if state.plan is not None:
            return replace(state, plan=replace(state.plan, targets={**state.plan.targets, event.target_id: event}))
        case TaskAssigned():
            return replace(state, task=TaskState(assigned=event, unit=fact.unit, assigned_at=fact.time))
        case TaskCompleted() if state.task is not None:
            return replace(state, task=replace(state.task, status=TaskStatus.COMPLETED, completed=event))
        case TaskCancelled() if state.task is not None:
            return replace(state, task=replace(state.task, status=TaskStatus.CANCELLED, cancelled=event))
        case TaskBecameOverdue() if state.task is not None:
            return replace(state, task=replace(state.task, overdue=event))
        case RemediationTaskLinked() if state.task is not None:
            return replace(state, task=replace(state.task, links=(*state.task.links, event)))
        case ReportScheduled():
            return replace(state, report=ReportState(scheduled=event, unit=fact.unit))
        case ReportSubmitted() if state.report is not None:
            return replace(state, report=replace(state.report, submitted=event))
        case InspectionPlanned():
            return replace(state, inspection=InspectionState(planned=event, unit=fact.unit))
        case InspectionFindingRecorded() if state.inspection is not None:
            findings = {**state.inspection.findings, event.finding_id: event}
            return replace(state, inspection=replace(state.inspection, findings=findings))
        case CriterionSelfAssessed() | CriterionAppraised() | CriterionZeroed():
            return replace(state, criterion=_criterion(state.criterion or CriterionState(unit=fact.unit), event))
    return state


def _criterion(
    state: CriterionState, event: CriterionSelfAssessed | CriterionAppraised | CriterionZeroed
) -> CriterionState:
    if isinstance(event, CriterionSelfAssessed):
        return replace(state, self_assessed=event)
    if isinstance(event, CriterionAppraised):
        # an appraisal supersedes an earlier zeroing (and the other way round): the latest verdict counts
        return replace(state, appraised=event, zeroed=None)
    return replace(state, zeroed=event, appraised=None)
