"""The plans domain, given/when/then: decide on folded state with an injected clock, the shared working
calendar (eventkit.worktime), a fake unit directory and the shipped indicator and criteria configuration."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from functools import cache

import pytest

from contracts.plans import (
    CriterionZeroed,
    EvidenceRef,
    InspectionMethod,
    ReportKind,
    ReportSubmitted,
    TaskBecameOverdue,
    TaskCompleted,
    ZeroingReason,
)
from eventkit.worktime import WorkingCalendar
from services.plans.config import load_criteria_sets, load_indicators
from services.plans.domain import (
    VN_TZ,
    AppraiseCriterion,
    AssignTask,
    CancelTask,
    Command,
    CompleteTask,
    Decision,
    Fact,
    IssuePlan,
    LinkRemediation,
    MarkTaskOverdue,
    PlanInspection,
    PlansState,
    RecordFinding,
    Refusal,
    RefusalKind,
    Rules,
    ScheduleReport,
    SelfAssessCriterion,
    SetTarget,
    SubmitReport,
    UnitRef,
    ZeroCriterion,
    decide,
    evolve,
    timeliness,
)

NOW = datetime(2025, 1, 15, 9, 0, tzinfo=VN_TZ)
BA_NAM = UnitRef("21523", "51", "21535")


class FakeUnits:
    """21535 (xã Ba Nam, pre-2025) resolves to 21523; 51 is Quảng Ngãi; anything else is refused."""

    def resolve(self, code: str, at: date, /) -> UnitRef | str:
        if code == "21535":
            return BA_NAM
        if code == "51":
            return UnitRef("51", "51")
        return f"unit code {code!r} is not in the registry"


@cache
def rules() -> Rules:
    return Rules(
        calendar=WorkingCalendar.load(),
        units=FakeUnits(),
        indicators=load_indicators(),
        criteria_sets=load_criteria_sets(),
    )


def evidence(number: str = "12/BC-UBND") -> EvidenceRef:
    return EvidenceRef(document_number=number, document_date=date(2024, 3, 1), description="Báo cáo kết quả")


PLAN = IssuePlan(
    plan_id="KH-2024",
    unit_code="21535",
    kind="annual",
    title="Kế hoạch CCHC năm 2024 của xã Ba Nam",
    year=2024,
    document_number="193/QĐ-UBND",
    document_date=date(2023, 12, 25),
    issuer="Chủ tịch UBND xã Ba Nam",
)
TASK = AssignTask(
    plan_id="KH-2024", task_id="KH-2024.T1", title="Ban hành kế hoạch", assignee_role="VP-TK", due_date=date(2024, 3, 8)
)  # a Friday


def changed(command, changes: dict):
    """A validated copy of ``command`` with ``changes`` (model_copy would skip validation)."""
    return type(command).model_validate({**command.model_dump(), **changes})


def run(state: PlansState, command: Command, now: datetime = NOW) -> tuple[PlansState, Decision | Refusal]:
    """Decide, and fold what was decided into the state (as the handler does through the store)."""
    decision = decide(state, command, now, rules())
    if isinstance(decision, Decision):
        for emit in decision.events:
            state = evolve(state, Fact(emit.payload, decision.unit, emit.time))
    return state, decision


def given(*commands: Command) -> PlansState:
    state = PlansState()
    for command in commands:
        state, decision = run(state, command)
        assert isinstance(decision, Decision), decision
    return state


def events_of(decision: Decision | Refusal) -> list:
    assert isinstance(decision, Decision), decision
    return [e.payload for e in decision.events]


def refused(decision: Decision | Refusal, kind: RefusalKind, field: str | None) -> str:
    assert isinstance(decision, Refusal), decision
    assert decision.kind is kind, decision
    assert decision.field == field, decision
    return decision.reason


# --- plans and targets ----------------------------------------------------------------------------------


def test_issuing_a_plan_records_it_under_the_resolved_unit_and_a_repeat_records_nothing():
    state, decision = run(PlansState(), PLAN)
    assert isinstance(decision, Decision)
    assert decision.unit == BA_NAM
    assert decision.stream_id == "plan:KH-2024"
    assert [type(e).__name__ for e in events_of(decision)] == ["PlanIssued"]
    assert decision.events[0].time == datetime(2023, 12, 25, tzinfo=VN_TZ)
    _, again = run(state, PLAN)
    assert events_of(again) == []
    _, different = run(state, changed(PLAN, {"title": "Another title"}))
    refused(different, RefusalKind.CONFLICT, None)


def test_a_plan_of_an_unknown_unit_is_refused_with_the_registry_reason():
    _, decision = run(PlansState(), changed(PLAN, {"unit_code": "99999"}))
    assert "not in the registry" in refused(decision, RefusalKind.INVALID, "unit_code")


def test_a_plan_signed_in_the_future_or_for_a_distant_year_is_refused():
    _, future = run(PlansState(), changed(PLAN, {"document_date": date(2025, 2, 1)}))
    refused(future, RefusalKind.INVALID, "document_date")
    _, distant = run(PlansState(), changed(PLAN, {"year": 2027}))
    refused(distant, RefusalKind.INVALID, "year")


def target(**changes: object) -> SetTarget:
    base = SetTarget(
        plan_id="KH-2024",
        target_id="MT-14",
        indicator_key="sipas.satisfaction_pct",
        comparison=">=",
        target_value=90,
        unit_of_measure="percent",
        description="Hài lòng tối thiểu 90%",
    )
    return changed(base, changes)


def test_a_target_defaults_to_the_plans_year_and_names_a_configured_indicator():
    (payload,) = events_of(run(given(PLAN), target())[1])
    assert (payload.period_start, payload.period_end) == (date(2024, 1, 1), date(2024, 12, 31))
    assert payload.indicator_key == "sipas.satisfaction_pct"


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"indicator_key": "sipas.happiness"}, "indicator_key"),
        ({"unit_of_measure": "count"}, "unit_of_measure"),
        ({"target_value": 120}, "target_value"),
        ({"indicator_key": "par.rank_in_province", "unit_of_measure": "rank", "target_value": 2.5}, "target_value"),
        ({"period_start": date(2024, 6, 1), "period_end": date(2024, 1, 1)}, "period_end"),
    ],
)
def test_bad_targets_are_refused_with_the_field_at_fault(changes, field):
    _, decision = run(given(PLAN), target(**changes))
    refused(decision, RefusalKind.INVALID, field)


def test_a_target_of_a_plan_never_issued_is_not_found():
    refused(run(PlansState(), target())[1], RefusalKind.NOT_FOUND, "plan_id")


# --- tasks ----------------------------------------------------------------------------------------------


def test_a_deadline_before_the_plan_was_issued_is_refused():
    _, decision = run(given(PLAN), changed(TASK, {"due_date": date(2023, 12, 1)}))
    assert "before the plan was issued" in refused(decision, RefusalKind.INVALID, "due_date")


@pytest.mark.parametrize(
    ("due", "done", "on_time", "late"),
    [
        (date(2024, 3, 8), datetime(2024, 3, 8, 16, 0, tzinfo=VN_TZ), True, 0),  # Friday, during the day
        (date(2024, 3, 8), datetime(2024, 3, 9, 10, 0, tzinfo=VN_TZ), True, 0),  # Saturday: no working time passed
        (date(2024, 3, 8), datetime(2024, 3, 11, 9, 0, tzinfo=VN_TZ), False, 1),  # Monday
        (date(2024, 3, 10), datetime(2024, 3, 11, 16, 0, tzinfo=VN_TZ), True, 0),  # due Sunday -> Monday
        (date(2024, 3, 8), datetime(2024, 3, 13, 8, 0, tzinfo=VN_TZ), False, 3),  # Wednesday
        # Tết 2024: civil servants off Thu 8/2 - Wed 14/2; due Wed 7/2, done Thu 15/2 = 1 working day late
        (date(2024, 2, 7), datetime(2024, 2, 15, 9, 0, tzinfo=VN_TZ), False, 1),
        (date(2024, 2, 7), datetime(2024, 2, 7, 9, 0, tzinfo=UTC), True, 0),  # 16:00 in Vietnam
    ],
)
def test_completion_timeliness_is_counted_in_working_days(due, done, on_time, late):
    state = given(PLAN, changed(TASK, {"due_date": due}))
    (payload,) = events_of(run(state, CompleteTask(task_id="KH-2024.T1", done_at=done))[1])
    assert isinstance(payload, TaskCompleted)
    assert (payload.due_date, payload.on_time, payload.working_days_late) == (due, on_time, late)


def test_a_standing_task_completes_without_a_timeliness_verdict():
    state = given(PLAN, changed(TASK, {"due_date": None}))
    (payload,) = events_of(run(state, CompleteTask(task_id="KH-2024.T1", done_at=NOW))[1])
    assert (payload.due_date, payload.on_time, payload.working_days_late) == (None, None, None)


def test_task_lifecycle_refusals():
    state = given(PLAN, TASK)
    future = CompleteTask(task_id="KH-2024.T1", done_at=NOW + timedelta(days=1))
    refused(run(state, future)[1], RefusalKind.INVALID, "done_at")
    early = CompleteTask(task_id="KH-2024.T1", done_at=datetime(2023, 12, 1, tzinfo=VN_TZ))
    refused(run(state, early)[1], RefusalKind.INVALID, "done_at")
    cancelled, _ = run(state, CancelTask(task_id="KH-2024.T1", cancelled_at=NOW, reason="Không còn phù hợp"))
    refused(run(cancelled, CompleteTask(task_id="KH-2024.T1", done_at=NOW))[1], RefusalKind.CONFLICT, "task_id")
    refused(run(PlansState(), CompleteTask(task_id="nope", done_at=NOW))[1], RefusalKind.NOT_FOUND, "task_id")
    done, _ = run(state, CompleteTask(task_id="KH-2024.T1", done_at=datetime(2024, 3, 1, tzinfo=VN_TZ)))
    other_time = CompleteTask(task_id="KH-2024.T1", done_at=datetime(2024, 3, 2, tzinfo=VN_TZ))
    refused(run(done, other_time)[1], RefusalKind.CONFLICT, None)
    cancel = CancelTask(task_id="KH-2024.T1", cancelled_at=NOW, reason="x")
    refused(run(done, cancel)[1], RefusalKind.CONFLICT, "task_id")


def test_a_task_becomes_overdue_once_when_its_deadline_working_time_has_ended():
    state = given(PLAN, TASK)  # due Friday 8/3/2024
    friday_evening = datetime(2024, 3, 8, 18, 0, tzinfo=VN_TZ)
    refused(run(state, MarkTaskOverdue(task_id="KH-2024.T1"), now=friday_evening)[1], RefusalKind.CONFLICT, "task_id")
    monday = datetime(2024, 3, 11, 7, 30, tzinfo=VN_TZ)
    flagged, decision = run(state, MarkTaskOverdue(task_id="KH-2024.T1"), now=monday)
    (payload,) = events_of(decision)
    assert isinstance(payload, TaskBecameOverdue)
    assert payload.detected_at == monday
    assert events_of(run(flagged, MarkTaskOverdue(task_id="KH-2024.T1"), now=monday)[1]) == []
    _late, decision = run(flagged, CompleteTask(task_id="KH-2024.T1", done_at=monday))
    assert events_of(decision)[0].on_time is False  # an overdue task can still be completed, late


def test_a_remediation_task_is_closed_with_evidence():
    link = LinkRemediation(
        task_id="KH-2024.T1", criteria_set_id="QĐ 673/QĐ-UBND", par_criterion_id="1.2", par_year=2024
    )
    state = given(PLAN, TASK, link)
    done = CompleteTask(task_id="KH-2024.T1", done_at=datetime(2024, 3, 1, 10, tzinfo=VN_TZ))
    assert "evidence is required" in refused(run(state, done)[1], RefusalKind.INVALID, "evidence")
    assert events_of(run(state, changed(done, {"evidence": (evidence(),)}))[1])
    assert events_of(run(state, link)[1]) == []  # the same link again records nothing


def test_remediation_links_name_configured_criteria_and_recorded_findings():
    state = given(PLAN, TASK)
    unknown_set = LinkRemediation(task_id="KH-2024.T1", criteria_set_id="QĐ 1/X", par_criterion_id="1", par_year=2024)
    refused(run(state, unknown_set)[1], RefusalKind.INVALID, "criteria_set_id")
    unknown_criterion = changed(unknown_set, {"criteria_set_id": "QĐ 673/QĐ-UBND", "par_criterion_id": "9.9"})
    refused(run(state, unknown_criterion)[1], RefusalKind.INVALID, "par_criterion_id")
    wrong_year = changed(unknown_set, {"criteria_set_id": "QĐ 673/QĐ-UBND", "par_year": 2023})
    refused(run(state, wrong_year)[1], RefusalKind.INVALID, "par_year")
    no_finding = LinkRemediation(task_id="KH-2024.T1", inspection_id="KT-1", finding_id="F-1")
    refused(run(state, no_finding)[1], RefusalKind.NOT_FOUND, "inspection_id")


# --- reports --------------------------------------------------------------------------------------------


REPORT = ScheduleReport(
    report_id="BC-Q1",
    plan_id="KH-2024",
    kind=ReportKind.QUARTERLY,
    title="Báo cáo Quý I/2024",
    year=2024,
    data_from=date(2023, 12, 15),
    data_to=date(2024, 3, 10),
    due_date=date(2024, 3, 10),
)


def test_a_report_due_before_its_cut_off_ends_is_refused():
    _, decision = run(given(PLAN), changed(REPORT, {"due_date": date(2024, 3, 5)}))
    assert "before its data cut-off range ends" in refused(decision, RefusalKind.INVALID, "due_date")


def test_a_report_filed_late_carries_its_lateness_in_working_days():
    state = given(PLAN, REPORT)  # due Sunday 10/3/2024 -> Monday 11/3
    on_time = SubmitReport(report_id="BC-Q1", submitted_at=datetime(2024, 3, 11, 16, tzinfo=VN_TZ), document=evidence())
    (payload,) = events_of(run(state, on_time)[1])
    assert isinstance(payload, ReportSubmitted)
    assert payload.on_time is True
    assert payload.due_date == date(2024, 3, 10)
    late = changed(on_time, {"submitted_at": datetime(2024, 3, 13, 10, tzinfo=VN_TZ)})
    (payload,) = events_of(run(state, late)[1])
    assert (payload.on_time, payload.working_days_late) == (False, 2)
    refused(run(PlansState(), late)[1], RefusalKind.NOT_FOUND, "report_id")


# --- inspections and findings ---------------------------------------------------------------------------


INSPECTION = PlanInspection(
    inspection_id="KT-1",
    plan_id="KH-2024",
    method=InspectionMethod.ON_SITE,
    year=2024,
    quarter=3,
    units=({"name": "UBND xã Ba Nam", "unit_code": "21535"},),
    checklist=({"item_id": "16", "text": "Niêm yết công khai TTHC", "par_area": "3"},),
)
FINDING = RecordFinding(
    inspection_id="KT-1",
    finding_id="F-1",
    inspected={"name": "UBND xã Ba Nam"},
    checklist_item_id="16",
    par_criterion_id="3.1",
    description="Chưa niêm yết đầy đủ TTHC",
    recorded_at=datetime(2024, 8, 20, 10, tzinfo=VN_TZ),
)


def test_findings_fall_under_the_checklist_and_units_of_their_inspection():
    state = given(PLAN, INSPECTION)
    refused(run(state, changed(FINDING, {"checklist_item_id": "99"}))[1], RefusalKind.INVALID, "checklist_item_id")
    stranger = changed(FINDING, {"inspected": {"name": "UBND xã Khác"}})
    refused(run(state, stranger)[1], RefusalKind.INVALID, "inspected")
    state = given(PLAN, INSPECTION, FINDING, TASK)
    link = LinkRemediation(task_id="KH-2024.T1", inspection_id="KT-1", finding_id="F-1")
    (payload,) = events_of(run(state, link)[1])
    assert payload.finding_id == "F-1"
    assert payload.plan_id == "KH-2024"


def test_an_inspection_period_must_match_its_quarter():
    bad = changed(INSPECTION, {"period_start": date(2024, 1, 5), "period_end": date(2024, 1, 9)})
    refused(run(given(PLAN), bad)[1], RefusalKind.INVALID, "quarter")


# --- PAR criterion assessments --------------------------------------------------------------------------


def self_assessed(**changes: object) -> SelfAssessCriterion:
    base = SelfAssessCriterion(
        unit_code="21535",
        criteria_set_id="QĐ 673/QĐ-UBND",
        criterion_id="1.1",
        year=2024,
        score=3,
        evidence=(evidence(),),
        assessed_at=datetime(2024, 12, 20, tzinfo=VN_TZ),
    )
    return changed(base, changes)


def test_a_manual_criterion_needs_evidence_for_a_positive_score():
    reason = refused(run(PlansState(), self_assessed(evidence=()))[1], RefusalKind.INVALID, "evidence")
    assert "tài liệu kiểm chứng" in reason
    (payload,) = events_of(run(PlansState(), self_assessed())[1])
    assert (payload.score, payload.max_score) == (3, 3)  # the maximum comes from the criteria tree


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"criteria_set_id": "QĐ 9/QĐ-UBND"}, "criteria_set_id"),
        ({"criterion_id": "1.9"}, "criterion_id"),
        ({"score": 3.5}, "score"),
        ({"year": 2023}, "year"),
        ({"unit_code": "99999"}, "unit_code"),
    ],
)
def test_assessments_are_checked_against_the_configured_tree(changes, field):
    refused(run(PlansState(), self_assessed(**changes))[1], RefusalKind.INVALID, field)


def test_zeroing_for_missing_evidence_records_the_points_lost_and_closes_the_self_assessment():
    zero = ZeroCriterion(
        unit_code="21535",
        criteria_set_id="QĐ 673/QĐ-UBND",
        criterion_id="1.4",
        year=2024,
        reason=ZeroingReason.MISSING_EVIDENCE,
        appraiser="Phòng Nội vụ huyện",
        zeroed_at=datetime(2025, 1, 10, tzinfo=VN_TZ),
    )
    state, decision = run(PlansState(), zero)
    (payload,) = events_of(decision)
    assert isinstance(payload, CriterionZeroed)
    assert payload.max_score == 2
    refused(run(state, self_assessed(criterion_id="1.4", score=1))[1], RefusalKind.CONFLICT, "criterion_id")
    appraisal = AppraiseCriterion(
        unit_code="21535",
        criteria_set_id="QĐ 673/QĐ-UBND",
        criterion_id="1.4",
        year=2024,
        score=1,
        appraiser="Phòng Nội vụ huyện",
        evidence=(evidence(),),
        appraised_at=datetime(2025, 1, 12, tzinfo=VN_TZ),
    )
    revised, decision = run(state, appraisal)
    assert events_of(decision)[0].score == 1
    assert revised.criterion is not None
    assert revised.criterion.zeroed is None


def test_event_criteria_take_a_score_without_documents():
    event_criterion = self_assessed(criterion_id="3.2.1", score=5, evidence=())
    assert events_of(run(PlansState(), event_criterion)[1])


def test_timeliness_never_reports_lateness_for_an_on_time_completion():
    calendar = rules().calendar
    verdict = timeliness(calendar, date(2024, 4, 30), datetime(2024, 5, 2, 8, tzinfo=VN_TZ))  # 30/4, 1/5 off
    assert (verdict.on_time, verdict.working_days_late) == (True, 0)
