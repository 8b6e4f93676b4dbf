# ruff: noqa: PLR0911, PLR0912 - deciders are lists of rules, each an early refusal with its own reason
"""``decide(state, command, now, rules)``: the events a command produces, or why it is refused.

Pure: no I/O, no clock (``now`` is passed in), rules injected. Repeating a command that is already
recorded with the same content decides *no* events (so a plan file imported twice stores nothing twice);
the same id with different content is a conflict. Event ids are derived from the stream and the payload
(:func:`event_id`), so two writers racing with the same command produce the same ids and the store keeps
one.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import date, datetime, time
from enum import StrEnum
from typing import TypeVar

from pydantic import ValidationError

from contracts.base import EventPayload
from contracts.plans import (
    CriterionAppraised,
    CriterionSelfAssessed,
    CriterionZeroed,
    InspectionFindingRecorded,
    InspectionPlanned,
    MeasureUnit,
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
from services.plans.domain.commands import (
    AppraiseCriterion,
    AssignTask,
    CancelTask,
    Command,
    CompleteTask,
    IssuePlan,
    LinkRemediation,
    MarkTaskOverdue,
    PlanInspection,
    RecordFinding,
    ScheduleReport,
    SelfAssessCriterion,
    SetTarget,
    SubmitReport,
    ZeroCriterion,
)
from services.plans.domain.rules import VN_TZ, CriteriaTree, Criterion, Rules, UnitRef, deadline_passed, timeliness
from services.plans.domain.state import PlansState, TaskState, TaskStatus

__all__ = ["EVENT_NAMESPACE", "Decision", "Emit", "Refusal", "RefusalKind", "decide", "event_id"]

#: namespace of the plans service's event ids: uuid5(namespace, "<stream>|<type>|<payload json>")
EVENT_NAMESPACE = uuid.UUID("5d0c3f1e-8f7a-4b52-a1d6-3c9e2b7f4a18")

_P = TypeVar("_P", bound=EventPayload)


@dataclass(frozen=True)
class Emit:
    """One event to append: the payload and when the fact happened (the envelope's ``time``)."""

    payload: EventPayload
    time: datetime


@dataclass(frozen=True)
class Decision:
    """Events to append to one stream, for one unit; none when the command was already recorded."""

    stream_id: str
    unit: UnitRef
    events: tuple[Emit, ...]


class RefusalKind(StrEnum):
    """Why a command is refused, as HTTP and the importer report it."""

    INVALID = "invalid"  # breaks a rule (unknown unit or indicator, deadline before issue...) -> 422
    NOT_FOUND = "not_found"  # names a plan, task, report or inspection that does not exist -> 404
    CONFLICT = "conflict"  # contradicts what is recorded (completed twice differently...) -> 409


@dataclass(frozen=True)
class Refusal:
    """A refused command: the kind, the reason, and the field and value at fault."""

    kind: RefusalKind
    reason: str
    field: str | None = None
    value: object = None


def event_id(stream_id: str, payload: EventPayload) -> uuid.UUID:
    """Stable id of an event: the same fact in the same stream always gets the same id."""
    return uuid.uuid5(EVENT_NAMESPACE, f"{stream_id}|{payload.event_type}|{payload.model_dump_json()}")


def _start_of(day: date) -> datetime:
    return datetime.combine(day, time(0), VN_TZ)


def _invalid(reason: str, field: str | None = None, value: object = None) -> Refusal:
    return Refusal(RefusalKind.INVALID, reason, field, value)


def _conflict(reason: str, field: str | None = None, value: object = None) -> Refusal:
    return Refusal(RefusalKind.CONFLICT, reason, field, value)


def _missing(reason: str, field: str | None = None, value: object = None) -> Refusal:
    return Refusal(RefusalKind.NOT_FOUND, reason, field, value)


def _once(
    stream_id: str, unit: UnitRef, existing: EventPayload | None, new: EventPayload, at: datetime
) -> Decision | Refusal:
    """Record ``new`` unless this stream already holds that fact: identical → nothing, different → conflict."""
    if existing is None:
        return Decision(stream_id, unit, (Emit(new, at),))
    if existing == new:
        return Decision(stream_id, unit, ())
    return _conflict(f"{stream_id} already records a different {new.event_type}; it cannot be changed")


def _not_future(value: datetime, now: datetime, rules: Rules, field: str) -> Refusal | None:
    if value > now + rules.clock_skew:
        return _invalid(f"{field} is in the future (now is {now.isoformat()})", field, value.isoformat())
    return None


def _payload(build: type[_P], **fields: object) -> _P | Refusal:
    # commands carry the contracts' bounds, so this only fails on a rule the command could not express
    try:
        return build(**fields)
    except ValidationError as exc:
        error = exc.errors()[0]
        where = ".".join(str(p) for p in error["loc"]) or None
        return _invalid(f"{build.event_type}: {error['msg']}", where, error.get("input"))


def decide(state: PlansState, command: Command, now: datetime, rules: Rules) -> Decision | Refusal:
    """What ``command`` records given ``state`` (the streams it reads, folded) at ``now``."""
    match command:
        case IssuePlan():
            return _issue_plan(state, command, now, rules)
        case SetTarget():
            return _set_target(state, command, rules)
        case AssignTask():
            return _assign_task(state, command)
        case LinkRemediation():
            return _link_remediation(state, command, rules)
        case CompleteTask():
            return _complete_task(state, command, now, rules)
        case CancelTask():
            return _cancel_task(state, command, now, rules)
        case MarkTaskOverdue():
            return _mark_overdue(state, command, now, rules)
        case ScheduleReport():
            return _schedule_report(state, command, rules)
        case SubmitReport():
            return _submit_report(state, command, now, rules)
        case PlanInspection():
            return _plan_inspection(state, command, rules)
        case RecordFinding():
            return _record_finding(state, command, now, rules)
        case SelfAssessCriterion() | AppraiseCriterion() | ZeroCriterion():
            return _assess(state, command, now, rules)


# --- plans and targets ----------------------------------------------------------------------------------


def _issue_plan(state: PlansState, command: IssuePlan, now: datetime, rules: Rules) -> Decision | Refusal:
    if command.document_date > now.astimezone(VN_TZ).date():
        return _invalid("the plan cannot be signed in the future", "document_date", command.document_date.isoformat())
    if abs(command.year - command.document_date.year) > 1:
        return _invalid(
            f"a plan for {command.year} signed on {command.document_date.isoformat()}: the year must be the "
            "signing year or the one before/after",
            "year",
            command.year,
        )
    unit = rules.units.resolve(command.unit_code, command.document_date)
    if isinstance(unit, str):
        return _invalid(unit, "unit_code", command.unit_code)
    issued = _payload(
        PlanIssued,
        plan_id=command.plan_id,
        kind=command.kind,
        title=command.title,
        year=command.year,
        document_number=command.document_number,
        document_date=command.document_date,
        issuer=command.issuer,
        implements=command.implements,
    )
    if isinstance(issued, Refusal):
        return issued
    existing = state.plan.issued if state.plan is not None else None
    return _once(command.stream_id, unit, existing, issued, _start_of(command.document_date))


def _set_target(state: PlansState, command: SetTarget, rules: Rules) -> Decision | Refusal:
    plan = state.plan
    if plan is None:
        return _missing(f"plan {command.plan_id!r} is not issued", "plan_id", command.plan_id)
    indicator = rules.indicators.get(command.indicator_key)
    if indicator is None:
        return _invalid(
            f"unknown indicator {command.indicator_key!r}; known: {', '.join(sorted(rules.indicators.indicators))}",
            "indicator_key",
            command.indicator_key,
        )
    if command.unit_of_measure != indicator.unit:
        return _invalid(
            f"{indicator.indicator_id} is measured in {indicator.unit.value}, not {command.unit_of_measure.value}",
            "unit_of_measure",
            command.unit_of_measure.value,
        )
    value = command.target_value
    if indicator.unit is MeasureUnit.PERCENT and (value < 0 or (value > 100 and not indicator.may_exceed_100)):
        return _invalid("a percentage target must be between 0 and 100", "target_value", value)
    if indicator.unit in (MeasureUnit.COUNT, MeasureUnit.POINTS) and value < 0:
        return _invalid("a count or points target cannot be negative", "target_value", value)
    if indicator.unit is MeasureUnit.RANK and (value < 1 or value != int(value)):
        return _invalid("a rank target is a whole number from 1", "target_value", value)
    year = plan.issued.year
    start = command.period_start or date(year, 1, 1)
    end = command.period_end or date(year, 12, 31)
    if end < start:
        return _invalid("the period ends before it starts", "period_end", end.isoformat())
    target = _payload(
        TargetSet,
        target_id=command.target_id,
        plan_id=command.plan_id,
        indicator_key=command.indicator_key,
        comparison=command.comparison,
        target_value=value,
        unit_of_measure=command.unit_of_measure,
        period_start=start,
        period_end=end,
        description=command.description,
    )
    if isinstance(target, Refusal):
        return target
    existing = plan.targets.get(command.target_id)
    return _once(command.stream_id, plan.unit, existing, target, _start_of(plan.issued.document_date))


# --- tasks ----------------------------------------------------------------------------------------------


def _assign_task(state: PlansState, command: AssignTask) -> Decision | Refusal:
    plan = state.plan
    if plan is None:
        return _missing(f"plan {command.plan_id!r} is not issued", "plan_id", command.plan_id)
    issued_on = plan.issued.document_date
    if command.due_date is not None and command.due_date < issued_on:
        return _invalid(
            f"the deadline {command.due_date.isoformat()} is before the plan was issued ({issued_on.isoformat()})",
            "due_date",
            command.due_date.isoformat(),
        )
    if state.task is not None and state.task.assigned.plan_id != command.plan_id:
        return _conflict(
            f"task {command.task_id!r} belongs to plan {state.task.assigned.plan_id!r}", "task_id", command.task_id
        )
    assigned = _payload(
        TaskAssigned,
        task_id=command.task_id,
        plan_id=command.plan_id,
        title=command.title,
        par_area=command.par_area,
        assignee_role=command.assignee_role,
        assignee_official_id=command.assignee_official_id,
        assignee_department=command.assignee_department,
        due_date=command.due_date,
    )
    if isinstance(assigned, Refusal):
        return assigned
    existing = state.task.assigned if state.task is not None else None
    return _once(command.stream_id, plan.unit, existing, assigned, _start_of(issued_on))


def _task(state: PlansState, task_id: str) -> TaskState | Refusal:
    if state.task is None:
        return _missing(f"task {task_id!r} is not assigned", "task_id", task_id)
    return state.task


def _criterion_of(rules: Rules, set_id: str, criterion_id: str) -> tuple[CriteriaTree, Criterion] | Refusal:
    tree = rules.criteria_sets.get(set_id)
    if tree is None:
        known = ", ".join(sorted(rules.criteria_sets)) or "none"
        return _invalid(f"unknown criteria set {set_id!r} (configured: {known})", "criteria_set_id", set_id)
    criterion = tree.get(criterion_id)
    if criterion is None:
        return _invalid(f"criteria set {set_id!r} has no criterion {criterion_id!r}", "criterion_id", criterion_id)
    return tree, criterion


def _link_remediation(state: PlansState, command: LinkRemediation, rules: Rules) -> Decision | Refusal:
    task = _task(state, command.task_id)
    if isinstance(task, Refusal):
        return task
    if task.status is TaskStatus.CANCELLED:
        return _conflict(f"task {command.task_id!r} is cancelled", "task_id", command.task_id)
    if command.finding_id is not None:
        inspection = state.inspection
        if inspection is None:
            return _missing(
                f"inspection {command.inspection_id!r} is not planned", "inspection_id", command.inspection_id
            )
        if command.finding_id not in inspection.findings:
            return _missing(
                f"inspection {command.inspection_id!r} has no finding {command.finding_id!r}",
                "finding_id",
                command.finding_id,
            )
    if command.par_criterion_id is not None and command.criteria_set_id is not None:
        found = _criterion_of(rules, command.criteria_set_id, command.par_criterion_id)
        if isinstance(found, Refusal):
            return Refusal(
                found.kind,
                found.reason,
                "par_criterion_id" if found.field == "criterion_id" else found.field,
                found.value,
            )
        tree, _ = found
        if command.par_year is not None and command.par_year != tree.year:
            return _invalid(
                f"criteria set {tree.criteria_set_id!r} is the {tree.year} set, not {command.par_year}",
                "par_year",
                command.par_year,
            )
    link = _payload(
        RemediationTaskLinked,
        task_id=command.task_id,
        plan_id=task.assigned.plan_id,
        finding_id=command.finding_id,
        criteria_set_id=command.criteria_set_id,
        par_criterion_id=command.par_criterion_id,
        par_year=command.par_year,
    )
    if isinstance(link, Refusal):
        return link
    if link in task.links:
        return Decision(command.stream_id, task.unit, ())
    return Decision(command.stream_id, task.unit, (Emit(link, task.assigned_at),))


def _complete_task(state: PlansState, command: CompleteTask, now: datetime, rules: Rules) -> Decision | Refusal:
    task = _task(state, command.task_id)
    if isinstance(task, Refusal):
        return task
    if task.status is TaskStatus.CANCELLED:
        return _conflict(f"task {command.task_id!r} was cancelled; it cannot be completed", "task_id", command.task_id)
    if (refused := _not_future(command.done_at, now, rules, "done_at")) is not None:
        return refused
    if command.done_at < task.assigned_at:
        return _invalid(
            f"done before the task was assigned ({task.assigned_at.date().isoformat()})",
            "done_at",
            command.done_at.isoformat(),
        )
    if task.links and not command.evidence:
        return _invalid(
            "a remediation task is closed with evidence (tài liệu kiểm chứng): evidence is required", "evidence", []
        )
    due = task.assigned.due_date
    verdict = timeliness(rules.calendar, due, command.done_at) if due is not None else None
    completed = _payload(
        TaskCompleted,
        task_id=command.task_id,
        plan_id=task.assigned.plan_id,
        done_at=command.done_at,
        evidence=command.evidence,
        due_date=due,
        on_time=verdict.on_time if verdict else None,
        working_days_late=verdict.working_days_late if verdict else None,
    )
    if isinstance(completed, Refusal):
        return completed
    return _once(command.stream_id, task.unit, task.completed, completed, command.done_at)


def _cancel_task(state: PlansState, command: CancelTask, now: datetime, rules: Rules) -> Decision | Refusal:
    task = _task(state, command.task_id)
    if isinstance(task, Refusal):
        return task
    if task.status is TaskStatus.COMPLETED:
        return _conflict(f"task {command.task_id!r} is completed; it cannot be cancelled", "task_id", command.task_id)
    if (refused := _not_future(command.cancelled_at, now, rules, "cancelled_at")) is not None:
        return refused
    cancelled = _payload(
        TaskCancelled,
        task_id=command.task_id,
        plan_id=task.assigned.plan_id,
        cancelled_at=command.cancelled_at,
        reason=command.reason,
    )
    if isinstance(cancelled, Refusal):
        return cancelled
    return _once(command.stream_id, task.unit, task.cancelled, cancelled, command.cancelled_at)


def _mark_overdue(state: PlansState, command: MarkTaskOverdue, now: datetime, rules: Rules) -> Decision | Refusal:
    task = _task(state, command.task_id)
    if isinstance(task, Refusal):
        return task
    due = task.assigned.due_date
    if task.status is not TaskStatus.OPEN or due is None or task.overdue is not None:
        return Decision(command.stream_id, task.unit, ())  # nothing to flag: closed, standing, or flagged
    if not deadline_passed(rules.calendar, due, now):
        return _conflict(
            f"task {command.task_id!r} is due {due.isoformat()}: not overdue yet", "task_id", command.task_id
        )
    overdue = TaskBecameOverdue(task_id=command.task_id, plan_id=task.assigned.plan_id, due_date=due, detected_at=now)
    return Decision(command.stream_id, task.unit, (Emit(overdue, now),))


# --- reports --------------------------------------------------------------------------------------------


def _schedule_report(state: PlansState, command: ScheduleReport, rules: Rules) -> Decision | Refusal:
    if command.data_to < command.data_from:
        return _invalid("the data cut-off range ends before it starts", "data_to", command.data_to.isoformat())
    if command.due_date < command.data_to:
        return _invalid(
            f"the report is due ({command.due_date.isoformat()}) before its data cut-off range ends "
            f"({command.data_to.isoformat()})",
            "due_date",
            command.due_date.isoformat(),
        )
    at = _start_of(command.data_from)
    if command.plan_id is not None:
        plan = state.plan
        if plan is None:
            return _missing(f"plan {command.plan_id!r} is not issued", "plan_id", command.plan_id)
        if command.due_date < plan.issued.document_date:
            return _invalid(
                f"the report is due before the plan was issued ({plan.issued.document_date.isoformat()})",
                "due_date",
                command.due_date.isoformat(),
            )
        unit = plan.unit
        at = _start_of(plan.issued.document_date)
    else:
        assert command.unit_code is not None  # the command's validator guarantees one of the two
        resolved = rules.units.resolve(command.unit_code, command.data_from)
        if isinstance(resolved, str):
            return _invalid(resolved, "unit_code", command.unit_code)
        unit = resolved
    if state.report is not None and state.report.unit != unit:
        return _conflict(f"report {command.report_id!r} belongs to another unit", "report_id", command.report_id)
    scheduled = _payload(
        ReportScheduled,
        report_id=command.report_id,
        plan_id=command.plan_id,
        kind=command.kind,
        title=command.title,
        year=command.year,
        data_from=command.data_from,
        data_to=command.data_to,
        due_date=command.due_date,
        recipient=command.recipient,
    )
    if isinstance(scheduled, Refusal):
        return scheduled
    existing = state.report.scheduled if state.report is not None else None
    return _once(command.stream_id, unit, existing, scheduled, at)


def _submit_report(state: PlansState, command: SubmitReport, now: datetime, rules: Rules) -> Decision | Refusal:
    report = state.report
    if report is None:
        return _missing(f"report {command.report_id!r} is not scheduled", "report_id", command.report_id)
    if (refused := _not_future(command.submitted_at, now, rules, "submitted_at")) is not None:
        return refused
    if (command.data_from is None) != (command.data_to is None):
        return _invalid("give both data_from and data_to, or neither", "data_to", None)
    if command.data_from is not None and command.data_to is not None and command.data_to < command.data_from:
        return _invalid("the data range ends before it starts", "data_to", command.data_to.isoformat())
    due = report.scheduled.due_date
    verdict = timeliness(rules.calendar, due, command.submitted_at)
    submitted = _payload(
        ReportSubmitted,
        report_id=command.report_id,
        submitted_at=command.submitted_at,
        document=command.document,
        data_from=command.data_from,
        data_to=command.data_to,
        due_date=due,
        on_time=verdict.on_time,
        working_days_late=verdict.working_days_late,
    )
    if isinstance(submitted, Refusal):
        return submitted
    return _once(command.stream_id, report.unit, report.submitted, submitted, command.submitted_at)


# --- inspections ----------------------------------------------------------------------------------------


def _plan_inspection(state: PlansState, command: PlanInspection, rules: Rules) -> Decision | Refusal:
    plan = state.plan
    if plan is None:
        return _missing(f"plan {command.plan_id!r} is not issued", "plan_id", command.plan_id)
    if (command.period_start is None) != (command.period_end is None):
        return _invalid("give both period_start and period_end, or neither", "period_end", None)
    if command.period_start is not None and command.period_end is not None:
        if command.period_end < command.period_start:
            return _invalid("the period ends before it starts", "period_end", command.period_end.isoformat())
        if command.period_start.year != command.year:
            return _invalid(
                f"the period starts outside {command.year}", "period_start", command.period_start.isoformat()
            )
        if command.quarter is not None and (command.period_start.month - 1) // 3 + 1 != command.quarter:
            return _invalid(f"the period does not start in quarter {command.quarter}", "quarter", command.quarter)
    item_ids = [item.item_id for item in command.checklist]
    if len(set(item_ids)) != len(item_ids):
        duplicate = next(i for i in item_ids if item_ids.count(i) > 1)
        return _invalid("checklist item ids must be unique", "checklist", duplicate)
    for index, inspected in enumerate(command.units):
        if inspected.unit_code is not None:
            resolved = rules.units.resolve(inspected.unit_code, plan.issued.document_date)
            if isinstance(resolved, str):
                return _invalid(resolved, f"units.{index}.unit_code", inspected.unit_code)
    planned = _payload(
        InspectionPlanned,
        inspection_id=command.inspection_id,
        plan_id=command.plan_id,
        method=command.method,
        year=command.year,
        quarter=command.quarter,
        period_start=command.period_start,
        period_end=command.period_end,
        units=command.units,
        planned_unit_count=command.planned_unit_count,
        checklist=command.checklist,
    )
    if isinstance(planned, Refusal):
        return planned
    existing = state.inspection.planned if state.inspection is not None else None
    return _once(command.stream_id, plan.unit, existing, planned, _start_of(plan.issued.document_date))


def _record_finding(state: PlansState, command: RecordFinding, now: datetime, rules: Rules) -> Decision | Refusal:
    inspection = state.inspection
    if inspection is None:
        return _missing(f"inspection {command.inspection_id!r} is not planned", "inspection_id", command.inspection_id)
    if (refused := _not_future(command.recorded_at, now, rules, "recorded_at")) is not None:
        return refused
    planned = inspection.planned
    if command.checklist_item_id is not None and command.checklist_item_id not in {
        i.item_id for i in planned.checklist
    }:
        return _invalid(
            f"inspection {command.inspection_id!r} has no checklist item {command.checklist_item_id!r}",
            "checklist_item_id",
            command.checklist_item_id,
        )
    inspected = command.inspected
    if planned.units and not any(
        u.name == inspected.name or (u.unit_code is not None and u.unit_code == inspected.unit_code)
        for u in planned.units
    ):
        return _invalid(
            f"{inspected.name!r} is not among the units inspection {command.inspection_id!r} covers",
            "inspected",
            inspected.name,
        )
    if inspected.unit_code is not None:
        resolved = rules.units.resolve(inspected.unit_code, command.recorded_at.astimezone(VN_TZ).date())
        if isinstance(resolved, str):
            return _invalid(resolved, "inspected.unit_code", inspected.unit_code)
    finding = _payload(
        InspectionFindingRecorded,
        inspection_id=command.inspection_id,
        finding_id=command.finding_id,
        inspected=inspected,
        checklist_item_id=command.checklist_item_id,
        par_criterion_id=command.par_criterion_id,
        description=command.description,
        recorded_at=command.recorded_at,
        evidence=command.evidence,
    )
    if isinstance(finding, Refusal):
        return finding
    existing = inspection.findings.get(command.finding_id)
    return _once(command.stream_id, inspection.unit, existing, finding, command.recorded_at)


# --- PAR criterion assessments --------------------------------------------------------------------------


def _assess(
    state: PlansState, command: SelfAssessCriterion | AppraiseCriterion | ZeroCriterion, now: datetime, rules: Rules
) -> Decision | Refusal:
    match command:
        case SelfAssessCriterion():
            at = command.assessed_at
        case AppraiseCriterion():
            at = command.appraised_at
        case ZeroCriterion():
            at = command.zeroed_at
    if (refused := _not_future(at, now, rules, "time")) is not None:
        return refused
    found = _criterion_of(rules, command.criteria_set_id, command.criterion_id)
    if isinstance(found, Refusal):
        return found
    tree, criterion = found
    if command.year != tree.year:
        return _invalid(
            f"criteria set {tree.criteria_set_id!r} scores {tree.year}, not {command.year}", "year", command.year
        )
    unit = rules.units.resolve(command.unit_code, date(command.year, 12, 31))
    if isinstance(unit, str):
        return _invalid(unit, "unit_code", command.unit_code)
    if unit.province_code != tree.province_code:
        return _invalid(
            f"criteria set {tree.criteria_set_id!r} is province {tree.province_code}'s; unit {command.unit_code} "
            f"is in province {unit.province_code}",
            "unit_code",
            command.unit_code,
        )
    current = state.criterion
    common = {
        "criteria_set_id": command.criteria_set_id,
        "criterion_id": command.criterion_id,
        "year": command.year,
    }
    if isinstance(command, ZeroCriterion):
        zeroed = _payload(
            CriterionZeroed,
            **common,
            max_score=criterion.max_score,
            reason=command.reason,
            appraiser=command.appraiser,
            note=command.note,
            zeroed_at=command.zeroed_at,
        )
        return _latest(command.stream_id, unit, current.zeroed if current else None, zeroed, at)
    if command.score > criterion.max_score:
        return _invalid(
            f"criterion {criterion.criterion_id} scores at most {criterion.max_score:g}", "score", command.score
        )
    if criterion.evidence_required and command.score > 0 and not command.evidence:
        return _invalid(
            f"criterion {criterion.criterion_id} ({criterion.method.value}) is scored on evidence (tài liệu "
            "kiểm chứng): a positive score needs evidence, or zero the criterion for missing evidence",
            "evidence",
            [],
        )
    if isinstance(command, SelfAssessCriterion):
        if current is not None and (current.appraised is not None or current.zeroed is not None):
            return _conflict(
                "the criterion is already appraised; the self-assessment is closed",
                "criterion_id",
                command.criterion_id,
            )
        assessed = _payload(
            CriterionSelfAssessed,
            **common,
            score=command.score,
            max_score=criterion.max_score,
            evidence=command.evidence,
            explanation=command.explanation,
            assessed_at=command.assessed_at,
        )
        return _latest(command.stream_id, unit, current.self_assessed if current else None, assessed, at)
    appraised = _payload(
        CriterionAppraised,
        **common,
        score=command.score,
        max_score=criterion.max_score,
        appraiser=command.appraiser,
        evidence=command.evidence,
        note=command.note,
        appraised_at=command.appraised_at,
    )
    return _latest(command.stream_id, unit, current.appraised if current else None, appraised, at)


def _latest(
    stream_id: str, unit: UnitRef, existing: EventPayload | None, new: EventPayload | Refusal, at: datetime
) -> Decision | Refusal:
    """Scores may be revised (a later assessment supersedes); repeating the current one records nothing."""
    if isinstance(new, Refusal):
        return new
    if existing == new:
        return Decision(stream_id, unit, ())
    return Decision(stream_id, unit, (Emit(new, at),))
