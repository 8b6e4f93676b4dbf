"""What officials (HTTP), plan files (import) and the scheduler ask the plans service to record.

Commands are requests, not facts: they are validated for shape here (the same bounds as the contracts, so
a command that passes never fails later when its events are built) and judged by ``decide``. Each names
the stream it writes (``stream_id``) and the streams whose state ``decide`` reads (``reads``).
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Annotated, Any, Self

from pydantic import AfterValidator, AwareDatetime, BaseModel, ConfigDict, Field, model_validator

from contracts.plans import (
    ChecklistItem,
    Comparison,
    DocumentRef,
    EvidenceRef,
    InspectedUnit,
    InspectionMethod,
    MeasureUnit,
    PlanKind,
    ReportKind,
    ZeroingReason,
)

__all__ = [
    "AppraiseCriterion",
    "AssignTask",
    "CancelTask",
    "Command",
    "CompleteTask",
    "IssuePlan",
    "LinkRemediation",
    "MarkTaskOverdue",
    "PlanInspection",
    "RecordFinding",
    "ScheduleReport",
    "SelfAssessCriterion",
    "SetTarget",
    "SubmitReport",
    "ZeroCriterion",
    "criterion_stream",
    "inspection_stream",
    "plan_stream",
    "report_stream",
    "task_stream",
]

_FIRST_DAY, _LAST_DAY = date(2000, 1, 1), date(2100, 12, 31)


def _in_range_date(value: date) -> date:
    if not _FIRST_DAY <= value <= _LAST_DAY:
        msg = f"must be between {_FIRST_DAY} and {_LAST_DAY}"
        raise ValueError(msg)
    return value


def _in_range_instant(value: datetime) -> datetime:
    _in_range_date(value.date())
    return value


#: ids become stream ids (``task:<id>``), Kafka keys and URL segments: printable, no spaces, bounded
Id = Annotated[
    str,
    Field(
        min_length=1,
        max_length=120,
        pattern=r"^[A-Za-z0-9][A-Za-z0-9._\-]*$",
        examples=["KH-CCHC-2024-BANAM"],
    ),
]
Text = Annotated[str, Field(min_length=1, max_length=4000)]
ShortText = Annotated[str, Field(min_length=1, max_length=500)]
Day = Annotated[date, AfterValidator(_in_range_date)]
Instant = Annotated[AwareDatetime, AfterValidator(_in_range_instant)]
Year = Annotated[int, Field(ge=2000, le=2100)]
UnitCode = Annotated[
    str,
    Field(
        pattern=r"^(\d{2}|\d{3}|\d{5})$",
        description="Administrative unit code (mã ĐVHC): 5-digit commune, 2-digit province, or a pre-2025 "
        "3-digit district; resolved with the document's date",
        examples=["21535"],
    ),
]
CriterionId = Annotated[str, Field(pattern=r"^\d+(\.\d+)*[a-z]?$", max_length=40, examples=["3.4.1"])]
SetId = Annotated[str, Field(min_length=1, max_length=80, examples=["QĐ 673/QĐ-UBND"])]
Score = Annotated[float, Field(ge=0, le=1000, allow_inf_nan=False)]


def _has_nul(value: Any) -> bool:
    if isinstance(value, str):
        return "\x00" in value
    if isinstance(value, dict):
        return any(_has_nul(k) or _has_nul(v) for k, v in value.items())
    if isinstance(value, list | tuple):
        return any(_has_nul(v) for v in value)
    return False


class _Command(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    @model_validator(mode="before")
    @classmethod
    def _no_nul(cls, data: Any) -> Any:
        # PostgreSQL text and jsonb cannot hold U+0000: refuse it at the door with the rule, not at the store
        if _has_nul(data):
            msg = "text must not contain the NUL character (U+0000)"
            raise ValueError(msg)
        return data


def plan_stream(plan_id: str) -> str:
    """Stream of a plan: its issue and its targets."""
    return f"plan:{plan_id}"


def task_stream(task_id: str) -> str:
    """Stream of a task: assignment, remediation links, completion, cancellation, overdue."""
    return f"task:{task_id}"


def report_stream(report_id: str) -> str:
    """Stream of a report: scheduled, submitted."""
    return f"report:{report_id}"


def inspection_stream(inspection_id: str) -> str:
    """Stream of an inspection: planned, findings."""
    return f"inspection:{inspection_id}"


def criterion_stream(unit_code: str, year: int, criteria_set_id: str, criterion_id: str) -> str:
    """Stream of one criterion of one unit's PAR assessment for one year."""
    return f"criterion:{unit_code}:{year}:{criteria_set_id}:{criterion_id}"


# --- plans and targets ----------------------------------------------------------------------------------


class IssuePlan(_Command):
    """Record a plan signed and issued by a unit."""

    plan_id: Id = Field(description="Id of the plan (stable: re-sending the same plan stores nothing twice)")
    unit_code: UnitCode
    kind: PlanKind = Field(description="Kind of plan")
    title: Text = Field(description="Title, e.g. 'Kế hoạch cải cách hành chính năm 2024 của xã Ba Nam'")
    year: Year = Field(description="Year the plan covers")
    document_number: ShortText = Field(description="Number and symbol of the issuing decision or plan")
    document_date: Day = Field(description="Date the decision or plan was signed")
    issuer: ShortText = Field(description="Issuing body, e.g. 'Chủ tịch UBND xã Ba Nam'")
    implements: tuple[DocumentRef, ...] = Field(
        default=(), max_length=100, description="Higher-level plans and decisions this plan implements"
    )

    @property
    def stream_id(self) -> str:
        """The stream this command writes."""
        return plan_stream(self.plan_id)

    @property
    def reads(self) -> tuple[str, ...]:
        """Streams whose state decide needs, besides ``stream_id``."""
        return ()


class SetTarget(_Command):
    """Record a measurable target of a plan, on an indicator the scoring service computes."""

    plan_id: Id = Field(description="The plan that sets the target")
    target_id: Id = Field(description="Id of the target, unique in the plan")
    indicator_key: str = Field(
        max_length=120,
        description="Indicator id from the plans service's indicator configuration",
        examples=["dossiers.online_share_pct"],
    )
    comparison: Comparison = Field(description="How the indicator value must compare with target_value")
    target_value: float = Field(allow_inf_nan=False, ge=-1e9, le=1e9, description="Target value in unit_of_measure")
    unit_of_measure: MeasureUnit = Field(description="Unit of target_value; must be the indicator's unit")
    period_start: Day | None = Field(default=None, description="First day of the target's period (default 1/1)")
    period_end: Day | None = Field(default=None, description="Last day of the target's period (default 31/12)")
    description: Text = Field(description="The target as worded in the plan")

    @property
    def stream_id(self) -> str:
        """The stream this command writes."""
        return plan_stream(self.plan_id)

    @property
    def reads(self) -> tuple[str, ...]:
        """Streams whose state decide needs, besides ``stream_id``."""
        return ()


# --- tasks ----------------------------------------------------------------------------------------------


class AssignTask(_Command):
    """Record a task a plan assigns to a role, official or department."""

    plan_id: Id = Field(description="The plan the task belongs to")
    task_id: Id = Field(description="Id of the task (unique across plans; prefix it with the plan id)")
    title: Text = Field(description="The task as worded in the plan")
    par_area: Annotated[str, Field(pattern=r"^\d{1,2}$")] | None = Field(
        default=None, description="PAR area (lĩnh vực, '1'..'8') the task serves"
    )
    assignee_role: ShortText = Field(description="Role responsible (chủ trì)")
    assignee_official_id: ShortText | None = Field(default=None, description="Opaque account id of the official")
    assignee_department: ShortText | None = Field(default=None, description="Department responsible")
    due_date: Day | None = Field(default=None, description="Deadline (last day); null for standing tasks")

    @property
    def stream_id(self) -> str:
        """The stream this command writes."""
        return task_stream(self.task_id)

    @property
    def reads(self) -> tuple[str, ...]:
        """Streams whose state decide needs, besides ``stream_id``."""
        return (plan_stream(self.plan_id),)


class LinkRemediation(_Command):
    """Link a task to what it remedies: an inspection finding and/or a PAR criterion that lost points."""

    task_id: Id = Field(description="The remediation task")
    inspection_id: Id | None = Field(default=None, description="The inspection of the finding (with finding_id)")
    finding_id: Id | None = Field(default=None, description="The finding the task remedies")
    criteria_set_id: SetId | None = Field(default=None, description="The configured criteria set of the criterion")
    par_criterion_id: CriterionId | None = Field(default=None, description="The PAR criterion that lost points")
    par_year: Year | None = Field(default=None, description="The PAR Index year in which it lost points")

    @model_validator(mode="after")
    def _complete(self) -> Self:
        if self.finding_id is None and self.par_criterion_id is None:
            msg = "name a finding (inspection_id + finding_id) or a criterion (criteria_set_id + par_criterion_id)"
            raise ValueError(msg)
        if (self.finding_id is None) != (self.inspection_id is None):
            msg = "finding_id and inspection_id go together"
            raise ValueError(msg)
        if self.par_criterion_id is not None and (self.criteria_set_id is None or self.par_year is None):
            msg = "par_criterion_id needs criteria_set_id and par_year"
            raise ValueError(msg)
        return self

    @property
    def stream_id(self) -> str:
        """The stream this command writes."""
        return task_stream(self.task_id)

    @property
    def reads(self) -> tuple[str, ...]:
        """Streams whose state decide needs, besides ``stream_id``."""
        return () if self.inspection_id is None else (inspection_stream(self.inspection_id),)


class CompleteTask(_Command):
    """Record that a task was done (timeliness is derived, in working days)."""

    task_id: Id = Field(description="The task")
    done_at: Instant = Field(description="When the task was done (ISO 8601 with offset)")
    evidence: tuple[EvidenceRef, ...] = Field(
        default=(), max_length=50, description="Evidence (tài liệu kiểm chứng); required for remediation tasks"
    )

    @property
    def stream_id(self) -> str:
        """The stream this command writes."""
        return task_stream(self.task_id)

    @property
    def reads(self) -> tuple[str, ...]:
        """Streams whose state decide needs, besides ``stream_id``."""
        return ()


class CancelTask(_Command):
    """Withdraw a task from its plan."""

    task_id: Id = Field(description="The task")
    cancelled_at: Instant = Field(description="When the task was cancelled")
    reason: Text = Field(description="Why")

    @property
    def stream_id(self) -> str:
        """The stream this command writes."""
        return task_stream(self.task_id)

    @property
    def reads(self) -> tuple[str, ...]:
        """Streams whose state decide needs, besides ``stream_id``."""
        return ()


class MarkTaskOverdue(_Command):
    """The scheduler's check: flag an open task whose deadline has passed (once)."""

    task_id: Id = Field(description="The task")

    @property
    def stream_id(self) -> str:
        """The stream this command writes."""
        return task_stream(self.task_id)

    @property
    def reads(self) -> tuple[str, ...]:
        """Streams whose state decide needs, besides ``stream_id``."""
        return ()


# --- reports --------------------------------------------------------------------------------------------


class ScheduleReport(_Command):
    """Record a periodic report with its data cut-off range and due date."""

    report_id: Id = Field(description="Id of the report")
    plan_id: Id | None = Field(default=None, description="The plan that schedules it (its unit reports)")
    unit_code: UnitCode | None = Field(default=None, description="The reporting unit when no plan is named")
    kind: ReportKind = Field(description="Kind of report")
    title: Text = Field(description="Title, e.g. 'Báo cáo CCHC Quý I/2024'")
    year: Year = Field(description="Year the report is about")
    data_from: Day = Field(description="First day of the data cut-off range (thời gian chốt số liệu)")
    data_to: Day = Field(description="Last day of the data cut-off range")
    due_date: Day = Field(description="Last day the report may be submitted (chậm nhất)")
    recipient: ShortText | None = Field(default=None, description="Body the report goes to")

    @model_validator(mode="after")
    def _owner(self) -> Self:
        if self.plan_id is None and self.unit_code is None:
            msg = "name the plan (plan_id) or the reporting unit (unit_code)"
            raise ValueError(msg)
        return self

    @property
    def stream_id(self) -> str:
        """The stream this command writes."""
        return report_stream(self.report_id)

    @property
    def reads(self) -> tuple[str, ...]:
        """Streams whose state decide needs, besides ``stream_id``."""
        return () if self.plan_id is None else (plan_stream(self.plan_id),)


class SubmitReport(_Command):
    """Record that a report was sent (timeliness is derived, in working days)."""

    report_id: Id = Field(description="The report")
    submitted_at: Instant = Field(description="When the report was sent")
    document: EvidenceRef = Field(description="The report document")
    data_from: Day | None = Field(default=None, description="First day of the data it actually covers")
    data_to: Day | None = Field(default=None, description="Last day of the data it actually covers")

    @property
    def stream_id(self) -> str:
        """The stream this command writes."""
        return report_stream(self.report_id)

    @property
    def reads(self) -> tuple[str, ...]:
        """Streams whose state decide needs, besides ``stream_id``."""
        return ()


# --- inspections ----------------------------------------------------------------------------------------


class PlanInspection(_Command):
    """Record an inspection a plan schedules: method, period, units, checklist."""

    inspection_id: Id = Field(description="Id of the inspection")
    plan_id: Id = Field(description="The plan it belongs to")
    method: InspectionMethod = Field(description="On-site by a team, or self-inspection")
    year: Year = Field(description="Year of the inspection")
    quarter: int | None = Field(default=None, ge=1, le=4, description="Planned quarter")
    period_start: Day | None = Field(default=None, description="First planned day, when fixed")
    period_end: Day | None = Field(default=None, description="Last planned day, when fixed")
    units: tuple[InspectedUnit, ...] = Field(default=(), max_length=500, description="Units to inspect, if named")
    planned_unit_count: int | None = Field(default=None, ge=1, le=10000, description="How many units, if only counted")
    checklist: tuple[ChecklistItem, ...] = Field(min_length=1, max_length=500, description="What is checked")

    @property
    def stream_id(self) -> str:
        """The stream this command writes."""
        return inspection_stream(self.inspection_id)

    @property
    def reads(self) -> tuple[str, ...]:
        """Streams whose state decide needs, besides ``stream_id``."""
        return (plan_stream(self.plan_id),)


class RecordFinding(_Command):
    """Record a finding (tồn tại, hạn chế) of an inspection about an inspected unit."""

    inspection_id: Id = Field(description="The inspection")
    finding_id: Id = Field(description="Id of the finding, unique in the inspection")
    inspected: InspectedUnit = Field(description="The unit the finding is about")
    checklist_item_id: Id | None = Field(default=None, description="The checklist item it falls under")
    par_criterion_id: CriterionId | None = Field(default=None, description="The PAR criterion it bears on")
    description: Text = Field(description="The finding as recorded in the minutes (biên bản)")
    recorded_at: Instant = Field(description="When it was recorded")
    evidence: tuple[EvidenceRef, ...] = Field(default=(), max_length=50, description="Minutes and documents")

    @property
    def stream_id(self) -> str:
        """The stream this command writes."""
        return inspection_stream(self.inspection_id)

    @property
    def reads(self) -> tuple[str, ...]:
        """Streams whose state decide needs, besides ``stream_id``."""
        return ()


# --- PAR criterion assessments --------------------------------------------------------------------------


class _CriterionCommand(_Command):
    unit_code: UnitCode
    criteria_set_id: SetId = Field(description="A configured criteria set (tree), e.g. 'QĐ 673/QĐ-UBND'")
    criterion_id: CriterionId = Field(description="The criterion or sub-criterion")
    year: Year = Field(description="The PAR Index year assessed")

    @property
    def stream_id(self) -> str:
        """The stream this command writes: keyed by the unit code as written (the unit of that year)."""
        return criterion_stream(self.unit_code, self.year, self.criteria_set_id, self.criterion_id)

    @property
    def reads(self) -> tuple[str, ...]:
        """Streams whose state decide needs, besides ``stream_id``."""
        return ()


class SelfAssessCriterion(_CriterionCommand):
    """Record a unit's own score of a criterion (tự đánh giá)."""

    score: Score = Field(description="Points claimed (at most the criterion's maximum)")
    evidence: tuple[EvidenceRef, ...] = Field(default=(), max_length=50, description="Evidence submitted")
    explanation: Text | None = Field(default=None, description="The unit's explanation (giải trình)")
    assessed_at: Instant = Field(description="When the self-assessment was submitted")


class AppraiseCriterion(_CriterionCommand):
    """Record the appraised (thẩm định) score of a criterion."""

    score: Score = Field(description="Points given (at most the criterion's maximum)")
    appraiser: ShortText = Field(description="Appraising body")
    evidence: tuple[EvidenceRef, ...] = Field(default=(), max_length=50, description="Evidence accepted")
    note: Text | None = Field(default=None, description="Why points were deducted")
    appraised_at: Instant = Field(description="When the appraisal was made")


class ZeroCriterion(_CriterionCommand):
    """Record that an appraisal scored a criterion zero (missing evidence or not implemented)."""

    reason: ZeroingReason = Field(description="Why the criterion got no points")
    appraiser: ShortText = Field(description="Appraising body")
    note: Text | None = Field(default=None, description="The appraiser's remark")
    zeroed_at: Instant = Field(description="When the appraisal was made")


Command = (
    IssuePlan
    | SetTarget
    | AssignTask
    | LinkRemediation
    | CompleteTask
    | CancelTask
    | MarkTaskOverdue
    | ScheduleReport
    | SubmitReport
    | PlanInspection
    | RecordFinding
    | SelfAssessCriterion
    | AppraiseCriterion
    | ZeroCriterion
)
