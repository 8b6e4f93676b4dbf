"""The HTTP API of the plans service (OpenAPI at /docs): officials' software records plans, targets, tasks,
reports, inspections and PAR assessments, and reads plans, tasks and reports back.

Every write is a domain command through :class:`PlansHandler`: 201 with the stored events, 200 when the
same command was already recorded (idempotent), 4xx with the reason, field and value when refused.
"""

from __future__ import annotations

from typing import Annotated, Any
from uuid import UUID

from fastapi import APIRouter, Path
from fastapi.encoders import jsonable_encoder
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field

from contracts.plans import (
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
from services.plans.domain import (
    AppraiseCriterion,
    AssignTask,
    CancelTask,
    Command,
    CompleteTask,
    IssuePlan,
    LinkRemediation,
    PlanInspection,
    RecordFinding,
    RefusalKind,
    ScheduleReport,
    SelfAssessCriterion,
    SetTarget,
    SubmitReport,
    TaskStatus,
    ZeroCriterion,
)
from services.plans.domain.commands import inspection_stream, plan_stream, report_stream, task_stream
from services.plans.handler import Outcome, OutcomeStatus, PlansHandler

__all__ = ["plans_router"]

_STATUS = {RefusalKind.INVALID: 422, RefusalKind.NOT_FOUND: 404, RefusalKind.CONFLICT: 409}


class _Body(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class RecordedEvent(_Body):
    """One stored event."""

    id: UUID = Field(description="Event id (stable: the same fact always gets the same id)")
    type: str = Field(description="CloudEvents type")
    data: dict[str, Any] = Field(description="The payload, as published on vn.cchc.plans.events")


class CommandResult(_Body):
    """What a command stored."""

    status: OutcomeStatus = Field(description="recorded (new events) or unchanged (already recorded)")
    stream_id: str = Field(description="The stream written")
    events: list[RecordedEvent] = Field(description="The events stored by this request (none when unchanged)")


class Problem(_Body):
    """Why a request was refused."""

    kind: str = Field(description="invalid | not_found | conflict")
    reason: str = Field(description="The rule that was broken, in words")
    field: str | None = Field(default=None, description="The field at fault, if one")
    value: Any = Field(default=None, description="The value at fault, if one")


class PlanView(_Body):
    """A plan, its unit and its targets."""

    unit_code: str = Field(description="Current unit code (envelope unitcode)")
    province_code: str = Field(description="Province code")
    legacy_unit_code: str | None = Field(description="The pre-2025 code the plan was issued under, if mapped")
    plan: PlanIssued = Field(description="The plan as issued")
    targets: list[TargetSet] = Field(description="Its targets")


class TaskView(_Body):
    """A task and where it is in its lifecycle."""

    status: TaskStatus = Field(description="open, completed or cancelled")
    overdue: bool = Field(description="Whether the deadline passed while it was open")
    assigned: TaskAssigned = Field(description="The assignment")
    completed: TaskCompleted | None = Field(description="The completion, with its timeliness")
    cancelled: TaskCancelled | None = Field(description="The cancellation")
    became_overdue: TaskBecameOverdue | None = Field(description="When it became overdue")
    remediates: list[RemediationTaskLinked] = Field(description="Findings and criteria it remedies")


class ReportView(_Body):
    """A report and its submission."""

    scheduled: ReportScheduled = Field(description="The schedule: cut-off range and due date")
    submitted: ReportSubmitted | None = Field(description="The submission, with its timeliness")


class InspectionView(_Body):
    """An inspection and its findings."""

    planned: InspectionPlanned = Field(description="The inspection as planned")
    findings: list[InspectionFindingRecorded] = Field(description="Its findings")


_REFUSALS: dict[int | str, dict[str, Any]] = {
    404: {"model": Problem, "description": "A plan, task, report or inspection named does not exist"},
    409: {"model": Problem, "description": "Contradicts what is recorded"},
    422: {"description": "Breaks a rule (field, value, rule)"},
}


def _respond(outcome: Outcome) -> JSONResponse:
    if outcome.refusal is not None:
        refusal = outcome.refusal
        problem = Problem(
            kind=refusal.kind.value, reason=refusal.reason, field=refusal.field, value=_plain(refusal.value)
        )
        return JSONResponse(problem.model_dump(mode="json"), status_code=_STATUS[refusal.kind])
    result = CommandResult(
        status=outcome.status,
        stream_id=outcome.stream_id,
        events=[RecordedEvent(id=e.id, type=e.type, data=e.data.model_dump(mode="json")) for e in outcome.events],
    )
    return JSONResponse(
        result.model_dump(mode="json"), status_code=201 if outcome.status is OutcomeStatus.RECORDED else 200
    )


def _plain(value: object) -> Any:
    try:
        return jsonable_encoder(value)
    except (TypeError, ValueError):
        return str(value)


def _missing(what: str, value: str) -> JSONResponse:
    problem = Problem(kind="not_found", reason=f"no {what} {value!r}", field=f"{what}_id", value=value)
    return JSONResponse(problem.model_dump(mode="json"), status_code=404)


PathId = Annotated[str, Path(min_length=1, max_length=120, pattern=r"^[A-Za-z0-9][A-Za-z0-9._\-]*$")]


def plans_router(handler: PlansHandler) -> APIRouter:
    """Routes of the plans API over ``handler``: one POST per command (the body is the command), GETs to read."""
    router = APIRouter(tags=["plans"], responses=_REFUSALS)
    created: dict[str, Any] = {
        "status_code": 201,
        "response_model": CommandResult,
        "responses": {200: {"model": CommandResult, "description": "Already recorded: nothing stored"}},
    }

    async def run(command: Command) -> JSONResponse:
        return _respond(await handler.handle(command))

    @router.post("/plans", summary="Record an issued plan", **created)
    async def issue_plan(body: IssuePlan) -> JSONResponse:
        return await run(body)

    @router.post("/targets", summary="Record a target of a plan, on a configured indicator", **created)
    async def set_target(body: SetTarget) -> JSONResponse:
        return await run(body)

    @router.post("/tasks", summary="Record a task a plan assigns", **created)
    async def assign_task(body: AssignTask) -> JSONResponse:
        return await run(body)

    @router.post("/task-completions", summary="Record that a task was done (timeliness in working days)", **created)
    async def complete_task(body: CompleteTask) -> JSONResponse:
        return await run(body)

    @router.post("/task-cancellations", summary="Cancel a task", **created)
    async def cancel_task(body: CancelTask) -> JSONResponse:
        return await run(body)

    @router.post("/remediation-links", summary="Link a task to a finding and/or a PAR criterion it remedies", **created)
    async def link_remediation(body: LinkRemediation) -> JSONResponse:
        return await run(body)

    @router.post("/reports", summary="Schedule a report (data cut-off range, due date)", **created)
    async def schedule_report(body: ScheduleReport) -> JSONResponse:
        return await run(body)

    @router.post("/report-submissions", summary="Record that a report was sent (timeliness in working days)", **created)
    async def submit_report(body: SubmitReport) -> JSONResponse:
        return await run(body)

    @router.post("/inspections", summary="Record an inspection a plan schedules", **created)
    async def plan_inspection(body: PlanInspection) -> JSONResponse:
        return await run(body)

    @router.post("/findings", summary="Record a finding of an inspection", **created)
    async def record_finding(body: RecordFinding) -> JSONResponse:
        return await run(body)

    @router.post("/assessments/self", summary="Record a unit's self-assessed score of a PAR criterion", **created)
    async def self_assess(body: SelfAssessCriterion) -> JSONResponse:
        return await run(body)

    @router.post("/assessments/appraisal", summary="Record the appraised score of a PAR criterion", **created)
    async def appraise(body: AppraiseCriterion) -> JSONResponse:
        return await run(body)

    @router.post("/assessments/zeroing", summary="Record a criterion scored zero (missing evidence...)", **created)
    async def zero(body: ZeroCriterion) -> JSONResponse:
        return await run(body)

    @router.get("/plans/{plan_id}", response_model=PlanView, summary="A plan and its targets")
    async def get_plan(plan_id: PathId) -> PlanView | JSONResponse:
        state, _ = await handler.load(plan_stream(plan_id))
        if state.plan is None:
            return _missing("plan", plan_id)
        unit = state.plan.unit
        return PlanView(
            unit_code=unit.unit_code,
            province_code=unit.province_code,
            legacy_unit_code=unit.legacy_code,
            plan=state.plan.issued,
            targets=list(state.plan.targets.values()),
        )

    @router.get("/tasks/{task_id}", response_model=TaskView, summary="A task and its lifecycle")
    async def get_task(task_id: PathId) -> TaskView | JSONResponse:
        state, _ = await handler.load(task_stream(task_id))
        if state.task is None:
            return _missing("task", task_id)
        task = state.task
        return TaskView(
            status=task.status,
            overdue=task.overdue is not None,
            assigned=task.assigned,
            completed=task.completed,
            cancelled=task.cancelled,
            became_overdue=task.overdue,
            remediates=list(task.links),
        )

    @router.get("/reports/{report_id}", response_model=ReportView, summary="A report and its submission")
    async def get_report(report_id: PathId) -> ReportView | JSONResponse:
        state, _ = await handler.load(report_stream(report_id))
        if state.report is None:
            return _missing("report", report_id)
        return ReportView(scheduled=state.report.scheduled, submitted=state.report.submitted)

    @router.get("/inspections/{inspection_id}", response_model=InspectionView, summary="An inspection")
    async def get_inspection(inspection_id: PathId) -> InspectionView | JSONResponse:
        state, _ = await handler.load(inspection_stream(inspection_id))
        if state.inspection is None:
            return _missing("inspection", inspection_id)
        inspection = state.inspection
        return InspectionView(planned=inspection.planned, findings=list(inspection.findings.values()))

    return router
