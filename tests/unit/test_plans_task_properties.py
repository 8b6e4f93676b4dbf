"""Property tests of the task lifecycle: any sequence of commands at any times never crashes decide and
keeps the invariants (one terminal fact, overdue only while open and after the deadline's working time,
timeliness consistent with the shared working calendar)."""

from __future__ import annotations

from datetime import date, datetime, timedelta
from functools import cache

from hypothesis import given, settings
from hypothesis import strategies as st

from contracts.plans import EvidenceRef, RemediationTaskLinked, TaskBecameOverdue, TaskCancelled, TaskCompleted
from eventkit.worktime import WorkingCalendar
from services.plans.config import load_criteria_sets, load_indicators
from services.plans.domain import (
    VN_TZ,
    AssignTask,
    CancelTask,
    CompleteTask,
    Decision,
    Fact,
    IssuePlan,
    LinkRemediation,
    MarkTaskOverdue,
    PlansState,
    Refusal,
    Rules,
    TaskStatus,
    UnitRef,
    deadline_passed,
    decide,
    evolve,
    timeliness,
)


class OneUnit:
    def resolve(self, code: str, at: date, /) -> UnitRef | str:
        return UnitRef("21523", "51", code) if code == "21535" else f"unknown unit {code}"


@cache
def rules() -> Rules:
    return Rules(WorkingCalendar.load(), OneUnit(), load_indicators(), load_criteria_sets())


PLAN = IssuePlan(
    plan_id="P",
    unit_code="21535",
    kind="annual",
    title="Kế hoạch",
    year=2024,
    document_number="1/QĐ",
    document_date=date(2024, 1, 2),
    issuer="UBND xã",
)
START = datetime(2024, 1, 2, tzinfo=VN_TZ)
EVIDENCE = EvidenceRef(document_number="1/BC", document_date=date(2024, 2, 1), description="Báo cáo")

instants = st.integers(min_value=0, max_value=200 * 24 * 60).map(lambda minutes: START + timedelta(minutes=minutes))
commands = st.one_of(
    st.builds(
        lambda at, ev: ("complete", at, CompleteTask(task_id="T", done_at=at, evidence=(EVIDENCE,) if ev else ())),
        instants,
        st.booleans(),
    ),
    st.builds(
        lambda at: ("cancel", at, CancelTask(task_id="T", cancelled_at=at, reason="Không còn phù hợp")), instants
    ),
    st.builds(lambda at: ("overdue", at, MarkTaskOverdue(task_id="T")), instants),
    st.builds(
        lambda at: (
            "link",
            at,
            LinkRemediation(task_id="T", criteria_set_id="QĐ 673/QĐ-UBND", par_criterion_id="1.2", par_year=2024),
        ),
        instants,
    ),
)
due_dates = st.one_of(
    st.none(), st.integers(min_value=0, max_value=120).map(lambda d: date(2024, 1, 2) + timedelta(days=d))
)


def apply(state: PlansState, decision: Decision) -> PlansState:
    for emit in decision.events:
        state = evolve(state, Fact(emit.payload, decision.unit, emit.time))
    return state


@settings(max_examples=300, deadline=None)
@given(due=due_dates, steps=st.lists(commands, max_size=12))
def test_any_command_sequence_keeps_the_task_lifecycle_invariants(due, steps):
    calendar = rules().calendar
    state = PlansState()
    for command in (PLAN, AssignTask(plan_id="P", task_id="T", title="Nhiệm vụ", assignee_role="VP", due_date=due)):
        decision = decide(state, command, START, rules())
        assert isinstance(decision, Decision)
        state = apply(state, decision)
    emitted = []
    for _, now, command in steps:
        decision = decide(state, command, now, rules())
        if isinstance(decision, Refusal):
            assert decision.reason  # every refusal says why
            continue
        before = state.task
        state = apply(state, decision)
        for emit in decision.events:
            event = emit.payload
            emitted.append(event)
            assert before is not None
            if isinstance(event, TaskBecameOverdue):
                assert before.status is TaskStatus.OPEN
                assert due is not None
                assert deadline_passed(calendar, due, now)
            if isinstance(event, TaskCompleted):
                assert before.status is not TaskStatus.CANCELLED
                assert event.done_at <= now + rules().clock_skew
                if before.links:
                    assert event.evidence, "remediation tasks close with evidence"
                if due is None:
                    assert event.on_time is None
                    assert event.working_days_late is None
                else:
                    assert event.on_time == (event.working_days_late == 0)
                    verdict = timeliness(calendar, due, event.done_at)
                    assert (event.on_time, event.working_days_late) == (verdict.on_time, verdict.working_days_late)
                    assert event.on_time == (not deadline_passed(calendar, due, event.done_at))
    terminal = [e for e in emitted if isinstance(e, TaskCompleted | TaskCancelled)]
    assert len(terminal) <= 1, terminal
    assert sum(isinstance(e, TaskBecameOverdue) for e in emitted) <= 1
    assert sum(isinstance(e, RemediationTaskLinked) for e in emitted) <= 1  # the same link is recorded once
    task = state.task
    assert task is not None
    assert (task.completed is not None) + (task.cancelled is not None) <= 1
    if task.overdue is not None and task.completed is not None and task.completed.on_time:
        # flagged overdue, then reported done on time: only a completion dated before the flag (reported late)
        assert task.completed.done_at < task.overdue.detected_at


@settings(max_examples=200, deadline=None)
@given(
    due=st.integers(min_value=0, max_value=365).map(lambda d: date(2024, 1, 1) + timedelta(days=d)),
    first=instants,
    extra=st.integers(min_value=0, max_value=60 * 24 * 30),
)
def test_lateness_never_decreases_when_a_task_is_done_later(due, first, extra):
    calendar = rules().calendar
    earlier = timeliness(calendar, due, first)
    later = timeliness(calendar, due, first + timedelta(minutes=extra))
    assert later.working_days_late >= earlier.working_days_late
    assert earlier.on_time or not later.on_time
