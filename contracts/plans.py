"""v1 events of the plans service: CCHC plans, their targets and tasks, reports, inspections, and the PAR
criterion assessments they lead to.

Modelled on real commune and district plans (seeds): annual CCHC plans with numeric targets and tasks
per official; "nâng cao chỉ số CCHC" and "khắc phục tồn tại, hạn chế" plans whose tasks remedy criteria
that lost points; quarterly reports with a due date and a data cut-off range; inspection plans with units,
a quarter and a checklist; and appraisals that zero criteria lacking evidence (tài liệu kiểm chứng).
Administrative deadlines are calendar days (``date``); things that happened are instants (``*_at``).
"""

from __future__ import annotations

from datetime import date
from enum import StrEnum
from typing import Annotated, Self

from pydantic import AnyUrl, AwareDatetime, Field, model_validator

from contracts.base import EventPayload, Record
from contracts.topics import PLANS_EVENTS

__all__ = [
    "EVENTS",
    "ChecklistItem",
    "Comparison",
    "CriterionAppraised",
    "CriterionSelfAssessed",
    "CriterionZeroed",
    "DocumentRef",
    "EvidenceRef",
    "InspectedUnit",
    "InspectionFindingRecorded",
    "InspectionMethod",
    "InspectionPlanned",
    "MeasureUnit",
    "PlanIssued",
    "PlanKind",
    "RemediationTaskLinked",
    "ReportKind",
    "ReportScheduled",
    "ReportSubmitted",
    "TargetSet",
    "TaskAssigned",
    "TaskBecameOverdue",
    "TaskCancelled",
    "TaskCompleted",
    "ZeroingReason",
]

_Id = Annotated[str, Field(min_length=1, max_length=200)]
_Text = Annotated[str, Field(min_length=1)]
#: plans and assessments are yearly; the bounds catch a 2-digit year, nothing more
_Year = Annotated[int, Field(ge=2000, le=2100)]
_Score = Annotated[float, Field(ge=0)]
#: ids of the PAR criteria tree loaded as configuration (DOMAIN §6.2): "3", "3.4", "3.4.1"
_CriterionId = Annotated[str, Field(pattern=r"^\d+(\.\d+)*[a-z]?$", examples=["3.4.1", "1.2"])]


# --- code lists ----------------------------------------------------------------------------------------


class PlanKind(StrEnum):
    """Kinds of plan a unit issues for administrative reform."""

    ANNUAL = "annual"  # Kế hoạch cải cách hành chính năm
    INDEX_IMPROVEMENT = "index_improvement"  # Kế hoạch nâng cao chỉ số CCHC
    REMEDIATION = "remediation"  # Kế hoạch khắc phục tồn tại, hạn chế (criteria that lost points)
    INSPECTION = "inspection"  # Kế hoạch kiểm tra công tác CCHC
    COMMUNICATION = "communication"  # Kế hoạch tuyên truyền CCHC
    PROCEDURE_CONTROL = "procedure_control"  # Kế hoạch kiểm soát TTHC
    TRAINING = "training"  # Kế hoạch đào tạo, bồi dưỡng CBCC
    LEGAL_REVIEW = "legal_review"  # Kế hoạch rà soát, hệ thống hóa VBQPPL
    OTHER = "other"


class Comparison(StrEnum):
    """How an indicator value is compared with a target value."""

    AT_LEAST = ">="  # "tối thiểu", "đạt từ … trở lên"
    AT_MOST = "<="  # e.g. a rank "trong tốp 3", an overdue rate
    EQUAL = "="


class MeasureUnit(StrEnum):
    """Unit of a target value."""

    PERCENT = "percent"
    COUNT = "count"
    POINTS = "points"
    RANK = "rank"


class ReportKind(StrEnum):
    """Periodic CCHC reports (chế độ báo cáo) and ad-hoc ones."""

    QUARTERLY = "quarterly"  # Báo cáo quý
    HALF_YEAR = "half_year"  # Báo cáo 6 tháng
    NINE_MONTHS = "nine_months"  # Báo cáo 9 tháng
    ANNUAL = "annual"  # Báo cáo năm
    AD_HOC = "ad_hoc"  # Báo cáo đột xuất


class InspectionMethod(StrEnum):
    """How an inspection is carried out."""

    ON_SITE = "on_site"  # Kiểm tra trực tiếp by an inspection team
    SELF_INSPECTION = "self_inspection"  # Tự kiểm tra by the unit itself, reported upward


class ZeroingReason(StrEnum):
    """Why an appraisal scored a criterion zero ("không được tính điểm")."""

    MISSING_EVIDENCE = "missing_evidence"  # thực hiện nhưng không có văn bản, tài liệu kiểm chứng
    NOT_IMPLEMENTED = "not_implemented"  # nội dung chưa triển khai thực hiện


# --- nested records ------------------------------------------------------------------------------------


class DocumentRef(Record):
    """A reference to an official document, e.g. a higher-level plan this plan implements."""

    document_number: _Text = Field(description="Number and symbol (số, ký hiệu), e.g. '67/KH-UBND'")
    document_date: date = Field(description="Date of the document (ngày ban hành)")
    issuer: str | None = Field(default=None, description="Issuing body, e.g. 'UBND huyện Quảng Điền'")
    title: str | None = Field(default=None, description="Title or excerpt (trích yếu) of the document")


class EvidenceRef(Record):
    """A piece of evidence (tài liệu kiểm chứng) for a completed task, a report or a criterion score."""

    document_number: _Text = Field(description="Number and symbol (số, ký hiệu), e.g. '45/BC-UBND'")
    document_date: date = Field(description="Date of the document")
    link: AnyUrl | None = Field(default=None, description="Where the document can be retrieved, if online")
    sha256: str | None = Field(
        default=None,
        pattern=r"^[0-9a-f]{64}$",
        description="SHA-256 of the document file (lowercase hex), so appraisers can check it is unchanged",
    )
    description: _Text = Field(description="What the document is and what it proves")


class InspectedUnit(Record):
    """A unit or department an inspection covers (the object of the inspection, not the event's unit)."""

    name: _Text = Field(description="Name, e.g. 'UBND xã Tân Hợp' or 'Phòng Tư pháp huyện'")
    unit_code: str | None = Field(
        default=None,
        pattern=r"^(\d{2}|\d{3}|\d{5})$",
        description="Administrative unit code (mã ĐVHC) when the inspected body is a commune or province",
    )


class ChecklistItem(Record):
    """One content item an inspection checks (nội dung kiểm tra)."""

    item_id: _Id = Field(description="Id of the item within the inspection")
    text: _Text = Field(description="What is checked, e.g. 'Niêm yết công khai TTHC tại Bộ phận Một cửa'")
    par_area: str | None = Field(
        default=None, description="PAR area (lĩnh vực) of the criteria tree the item belongs to, e.g. '3'"
    )


# --- events --------------------------------------------------------------------------------------------


class _PlansFact(EventPayload):
    producer = "plans"
    topic = PLANS_EVENTS


class PlanIssued(_PlansFact):
    """A plan was signed and issued; the stream id is the plan id."""

    event_type = "vn.cchc.plan.issued"
    schema_version = 1

    plan_id: _Id = Field(description="Id of the plan; also the stream id")
    kind: PlanKind = Field(description="Kind of plan")
    title: _Text = Field(description="Title, e.g. 'Kế hoạch cải cách hành chính năm 2024 của xã Ba Nam'")
    year: _Year = Field(description="Year the plan covers")
    document_number: _Text = Field(
        description="Number and symbol of the issuing decision or of the plan itself, e.g. '193/QĐ-UBND'"
    )
    document_date: date = Field(description="Date the decision or plan was signed")
    issuer: _Text = Field(description="Issuing body, e.g. 'Chủ tịch UBND xã Ba Nam'")
    implements: tuple[DocumentRef, ...] = Field(
        default=(), description="Higher-level plans and decisions this plan implements (Căn cứ / Thực hiện)"
    )


class TargetSet(_PlansFact):
    """A plan set a measurable target (mục tiêu, chỉ tiêu) for an indicator."""

    event_type = "vn.cchc.target.set"
    schema_version = 1

    target_id: _Id = Field(description="Id of the target")
    plan_id: _Id = Field(description="The plan that sets the target")
    indicator_key: str = Field(
        pattern=r"^[a-z0-9][a-z0-9_]*(\.[a-z0-9_]+)*$",
        description="Key of the indicator the target applies to, as the scoring service names it",
        examples=["dossier.online_share"],
    )
    comparison: Comparison = Field(description="How the indicator value must compare with target_value")
    target_value: float = Field(description="The target value, in unit_of_measure")
    unit_of_measure: MeasureUnit = Field(description="Unit of target_value")
    period_start: date = Field(description="First day of the period the target applies to")
    period_end: date = Field(description="Last day of the period the target applies to")
    description: _Text = Field(description="The target as worded in the plan")

    @model_validator(mode="after")
    def _period_ordered(self) -> Self:
        if self.period_end < self.period_start:
            msg = "period_end is before period_start"
            raise ValueError(msg)
        return self


class TaskAssigned(_PlansFact):
    """A plan assigned a task to an official or department; the stream id is the task id."""

    event_type = "vn.cchc.task.assigned"
    schema_version = 1

    task_id: _Id = Field(description="Id of the task; also the stream id")
    plan_id: _Id = Field(description="The plan the task belongs to")
    title: _Text = Field(description="The task as worded in the plan")
    par_area: str | None = Field(
        default=None, description="PAR area (lĩnh vực) of the criteria tree the task serves, e.g. '1'"
    )
    assignee_role: _Text = Field(description="Role responsible (chủ trì), e.g. 'Công chức Văn phòng - Thống kê'")
    assignee_official_id: str | None = Field(
        default=None, description="Opaque account id of the official holding the role, if named"
    )
    assignee_department: str | None = Field(
        default=None, description="Department responsible, e.g. 'Bộ phận Tư pháp phường'"
    )
    due_date: date | None = Field(
        default=None, description="Deadline (last day); null for standing tasks ('thường xuyên')"
    )


class TaskCompleted(_PlansFact):
    """A task was done."""

    event_type = "vn.cchc.task.completed"
    schema_version = 1

    task_id: _Id = Field(description="Id of the task")
    plan_id: _Id = Field(description="The plan the task belongs to")
    done_at: AwareDatetime = Field(description="When the task was done")
    evidence: tuple[EvidenceRef, ...] = Field(
        default=(), description="Evidence of completion (tài liệu kiểm chứng); PAR appraisal needs it"
    )
    due_date: date | None = Field(
        default=None, description="The task's deadline when it was completed; null for standing tasks"
    )
    on_time: bool | None = Field(
        default=None,
        description="Derived: done by the deadline in working days (a deadline on a non-working day moves to the "
        "next working day); null for standing tasks without a deadline",
    )
    working_days_late: int | None = Field(
        default=None,
        ge=0,
        description="Derived: working days after the deadline (0 when on time; a completion on a non-working day "
        "counts from the next working day); null without a deadline",
    )


class TaskCancelled(_PlansFact):
    """A task was withdrawn from the plan."""

    event_type = "vn.cchc.task.cancelled"
    schema_version = 1

    task_id: _Id = Field(description="Id of the task")
    plan_id: _Id = Field(description="The plan the task belonged to")
    cancelled_at: AwareDatetime = Field(description="When the task was cancelled")
    reason: _Text = Field(description="Why the task was cancelled")


class TaskBecameOverdue(_PlansFact):
    """Derived: a task's deadline passed before it was completed."""

    event_type = "vn.cchc.task.became_overdue"
    schema_version = 1

    task_id: _Id = Field(description="Id of the task")
    plan_id: _Id = Field(description="The plan the task belongs to")
    due_date: date = Field(description="The deadline that passed")
    detected_at: AwareDatetime = Field(description="When the plans service noticed the overdue state")


class RemediationTaskLinked(_PlansFact):
    """A task was linked to what it remedies: an inspection finding and/or a PAR criterion that lost points."""

    event_type = "vn.cchc.task.remediation_linked"
    schema_version = 1

    task_id: _Id = Field(description="Id of the remediation task")
    plan_id: _Id = Field(description="The plan the task belongs to")
    finding_id: str | None = Field(default=None, description="The inspection finding the task remedies")
    criteria_set_id: str | None = Field(
        default=None, description="The PAR criteria set of the criterion, e.g. 'QĐ 2125/QĐ-UBND'"
    )
    par_criterion_id: _CriterionId | None = Field(
        default=None, description="The PAR criterion (tiêu chí / tiêu chí thành phần) that lost points"
    )
    par_year: _Year | None = Field(default=None, description="The PAR Index year in which it lost points")

    @model_validator(mode="after")
    def _remedies_something(self) -> Self:
        if self.finding_id is None and self.par_criterion_id is None:
            msg = "a remediation link needs a finding_id or a par_criterion_id"
            raise ValueError(msg)
        return self


class ReportScheduled(_PlansFact):
    """A report became due on a date, covering a data cut-off range; the stream id is the report id."""

    event_type = "vn.cchc.report.scheduled"
    schema_version = 1

    report_id: _Id = Field(description="Id of the report; also the stream id")
    plan_id: str | None = Field(default=None, description="The plan that schedules the report, if any")
    kind: ReportKind = Field(description="Kind of report")
    title: _Text = Field(description="Title, e.g. 'Báo cáo CCHC Quý I/2024'")
    year: _Year = Field(description="Year the report is about")
    data_from: date = Field(description="First day of the data cut-off range (thời gian chốt số liệu)")
    data_to: date = Field(description="Last day of the data cut-off range")
    due_date: date = Field(description="Last day the report may be submitted (chậm nhất)")
    recipient: str | None = Field(
        default=None, description="Body the report goes to, e.g. 'UBND huyện (qua Phòng Nội vụ)'"
    )

    @model_validator(mode="after")
    def _range_ordered(self) -> Self:
        if self.data_to < self.data_from:
            msg = "data_to is before data_from"
            raise ValueError(msg)
        return self


class ReportSubmitted(_PlansFact):
    """A report was submitted."""

    event_type = "vn.cchc.report.submitted"
    schema_version = 1

    report_id: _Id = Field(description="Id of the report")
    submitted_at: AwareDatetime = Field(description="When the report was sent")
    document: EvidenceRef = Field(description="The report document itself")
    data_from: date | None = Field(default=None, description="First day of the data the report actually covers")
    data_to: date | None = Field(default=None, description="Last day of the data the report actually covers")
    due_date: date | None = Field(default=None, description="The report's due date (chậm nhất) when it was submitted")
    on_time: bool | None = Field(
        default=None,
        description="Derived: submitted by the due date in working days (a due date on a non-working day moves "
        "to the next working day)",
    )
    working_days_late: int | None = Field(
        default=None, ge=0, description="Derived: working days after the due date (0 when on time)"
    )


class InspectionPlanned(_PlansFact):
    """An inspection of CCHC work was planned; the stream id is the inspection id."""

    event_type = "vn.cchc.inspection.planned"
    schema_version = 1

    inspection_id: _Id = Field(description="Id of the inspection; also the stream id")
    plan_id: _Id = Field(description="The inspection plan (Kế hoạch kiểm tra) it belongs to")
    method: InspectionMethod = Field(description="On-site by a team, or self-inspection")
    year: _Year = Field(description="Year the inspection is planned in")
    quarter: int | None = Field(default=None, ge=1, le=4, description="Planned quarter, e.g. 3 for 'quý III'")
    period_start: date | None = Field(default=None, description="First planned day, when dates are fixed")
    period_end: date | None = Field(default=None, description="Last planned day, when dates are fixed")
    units: tuple[InspectedUnit, ...] = Field(
        default=(), description="Units to inspect, when named (they are often announced later)"
    )
    planned_unit_count: int | None = Field(
        default=None, ge=1, description="Number of units to inspect, when the plan gives only a number"
    )
    checklist: tuple[ChecklistItem, ...] = Field(description="What the inspection checks (nội dung kiểm tra)")


class InspectionFindingRecorded(_PlansFact):
    """An inspection recorded a finding (tồn tại, hạn chế) about an inspected unit."""

    event_type = "vn.cchc.inspection.finding_recorded"
    schema_version = 1

    inspection_id: _Id = Field(description="Id of the inspection")
    finding_id: _Id = Field(description="Id of the finding")
    inspected: InspectedUnit = Field(description="The unit the finding is about")
    checklist_item_id: str | None = Field(default=None, description="The checklist item the finding is under")
    par_criterion_id: _CriterionId | None = Field(
        default=None, description="The PAR criterion the finding bears on, if identified"
    )
    description: _Text = Field(description="The finding as recorded in the inspection minutes (biên bản)")
    recorded_at: AwareDatetime = Field(description="When the finding was recorded")
    evidence: tuple[EvidenceRef, ...] = Field(default=(), description="Minutes and other supporting documents")


class _CriterionFact(_PlansFact):
    """Identifies one criterion of one unit's PAR assessment (unit in the envelope) for one year."""

    criteria_set_id: _Id = Field(description="The criteria set (tree in configuration) scored, e.g. 'QĐ 2125/QĐ-UBND'")
    criterion_id: _CriterionId = Field(description="The criterion or sub-criterion, e.g. '3.4.1'")
    year: _Year = Field(description="The PAR Index year assessed")


class _ScoredCriterion(_CriterionFact):
    score: _Score = Field(description="Points given")
    max_score: float = Field(gt=0, description="Maximum points of the criterion (điểm tối đa)")

    @model_validator(mode="after")
    def _score_within_max(self) -> Self:
        if self.score > self.max_score:
            msg = "score exceeds max_score"
            raise ValueError(msg)
        return self


class CriterionSelfAssessed(_ScoredCriterion):
    """The unit scored one of its own PAR criteria (tự đánh giá, chấm điểm)."""

    event_type = "vn.cchc.criterion.self_assessed"
    schema_version = 1

    evidence: tuple[EvidenceRef, ...] = Field(default=(), description="Evidence submitted with the score")
    explanation: str | None = Field(default=None, description="The unit's explanation (giải trình), if any")
    assessed_at: AwareDatetime = Field(description="When the self-assessment was submitted")


class CriterionAppraised(_ScoredCriterion):
    """An appraiser set the official score of a criterion (thẩm định)."""

    event_type = "vn.cchc.criterion.appraised"
    schema_version = 1

    appraiser: _Text = Field(description="Appraising body, e.g. 'Đoàn thẩm định tỉnh' or 'Phòng Nội vụ'")
    evidence: tuple[EvidenceRef, ...] = Field(default=(), description="Evidence the appraiser accepted")
    note: str | None = Field(
        default=None, description="Why points were deducted, e.g. 'tiến độ chậm', 'giải trình thiếu thuyết phục'"
    )
    appraised_at: AwareDatetime = Field(description="When the appraisal was made")


class CriterionZeroed(_CriterionFact):
    """An appraiser scored a criterion zero because it was not implemented or its evidence is missing."""

    event_type = "vn.cchc.criterion.zeroed"
    schema_version = 1

    max_score: float = Field(gt=0, description="Maximum points of the criterion, i.e. the points lost")
    reason: ZeroingReason = Field(description="Why the criterion got no points")
    appraiser: _Text = Field(description="Appraising body")
    note: str | None = Field(default=None, description="The appraiser's remark, if any")
    zeroed_at: AwareDatetime = Field(description="When the appraisal was made")


EVENTS: tuple[type[EventPayload], ...] = (
    PlanIssued,
    TargetSet,
    TaskAssigned,
    TaskCompleted,
    TaskCancelled,
    TaskBecameOverdue,
    RemediationTaskLinked,
    ReportScheduled,
    ReportSubmitted,
    InspectionPlanned,
    InspectionFindingRecorded,
    CriterionSelfAssessed,
    CriterionAppraised,
    CriterionZeroed,
)
