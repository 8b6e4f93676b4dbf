"""The dossier lifecycle (decide/evolve) with the real rules file and the real working calendar."""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime, timedelta

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from contracts.dossiers import (
    ApologyAssessed,
    ApologyIssued,
    DossierBecameOverdue,
    DossierReceived,
    DossierRefused,
    DossierResolved,
    DossierStatus,
    DossierSubmitted,
    DossierWithdrawn,
    FeePaid,
    ProcessingStepCompleted,
    ProcessingStopped,
    ResultDelivered,
    ResultIssued,
    SupplementReceived,
    SupplementRequested,
    TimelinessClass,
)
from eventkit.worktime import VN_TZ, WorkingCalendar
from services.dossiers.domain import CheckOverdue, DossierState, Judge, SupplementPolicy, decide, evolve
from services.dossiers.rulesets import DEFAULT_RULESETS, load_rules

NOW = datetime(2026, 11, 23, 9, 0, tzinfo=VN_TZ)
DOSSIER = {"dossier_id": "000.31.20.H56-260302-0001", "agency_code": "000.31.20.H56"}


def at(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=VN_TZ)


@pytest.fixture(scope="module")
def judge() -> Judge:
    calendar = WorkingCalendar.load()
    return Judge(load_rules(DEFAULT_RULESETS), calendar, calendar.hours.hours_per_day, "01")


def received(when: str = "2026-03-02 08:00", due: str = "2026-03-05 08:00", days: float = 3) -> DossierReceived:
    return DossierReceived(
        **DOSSIER,
        channel="direct",
        ma_tthc="1.001776",
        procedure_version="QĐ 1/2026",
        applicant_type="individual",
        applicant_ref="a" * 64,
        received_at=at(when),
        due_at=at(due),
        statutory_time={"value": days, "unit": "working_days"},
        components=[],
    )


def finished(when: str) -> ResultIssued:
    return ResultIssued(**DOSSIER, finished_at=at(when), result_docs=[])


def run(judge: Judge, *facts, now: datetime = NOW) -> tuple[DossierState, list]:
    """Decide each fact in turn; every fact must be accepted. Returns the final state and all events."""
    state, events = DossierState(), []
    for fact in facts:
        decision = decide(state, fact, now, judge)
        assert not isinstance(decision, str), decision
        assert decision[0] is fact  # the fact itself comes first
        for event in decision:
            state = evolve(state, event)
        events.extend(decision)
    return state, events


def of(events: list, kind: type) -> list:
    return [e for e in events if isinstance(e, kind)]


def test_a_dossier_finished_a_day_early_is_early_and_on_time_for_766(judge) -> None:
    _, events = run(judge, received(), finished("2026-03-04 10:00"))
    [verdict] = of(events, DossierResolved)
    assert verdict.report06_class is TimelinessClass.EARLY
    assert verdict.on_time_766
    assert verdict.final_status is DossierStatus.PROCESSED
    assert verdict.ruleset_version.startswith("nd118-2025@1")
    assert verdict.processing_working_hours == pytest.approx(7 + 8 + 3)  # Mon 08:00-17:00, Tue, Wed 07:00-10:00
    assert not of(events, ApologyAssessed)  # not late: not in the apology denominator


def test_finished_on_the_due_date_before_the_due_hour_is_on_time(judge) -> None:
    _, events = run(judge, received(), finished("2026-03-05 07:30"))
    assert of(events, DossierResolved)[0].report06_class is TimelinessClass.ON_TIME


def test_finished_after_the_due_instant_is_late_even_with_an_apology(judge) -> None:
    apology = ApologyIssued(
        **DOSSIER,
        issued_at=at("2026-03-03 09:00"),
        reason="chờ xác minh",
        new_due_at=at("2026-03-10 17:00"),
        sequence_no=1,
    )
    _, events = run(judge, received(), apology, finished("2026-03-06 09:00"))
    [verdict] = of(events, DossierResolved)
    assert verdict.report06_class is TimelinessClass.LATE
    assert not verdict.on_time_766
    [assessed] = of(events, ApologyAssessed)
    assert assessed.issued
    assert assessed.before_original_due
    assert assessed.at_least_one_working_day_before  # Tue 09:00 -> Thu 08:00 is 15 working hours
    assert assessed.single_reschedule
    assert assessed.result_by_rescheduled_due


def test_an_apology_issued_hours_before_the_due_date_is_not_a_working_day_early(judge) -> None:
    apology = ApologyIssued(
        **DOSSIER, issued_at=at("2026-03-04 15:00"), reason="x", new_due_at=at("2026-03-06 08:00"), sequence_no=1
    )
    _, events = run(judge, received(), apology, finished("2026-03-06 09:00"))
    [assessed] = of(events, ApologyAssessed)
    assert assessed.before_original_due
    assert not assessed.at_least_one_working_day_before  # 2 + 1 = 3 working hours < 8
    assert not assessed.result_by_rescheduled_due  # finished 09:00 after the new date 08:00


def test_the_canonical_due_instant_and_a_saturday_finish_are_the_same_working_instant(judge) -> None:
    # due Fri 17:00 (canonical); a result recorded on Saturday is at the same working instant: not late
    dossier = received("2026-03-02 08:00", "2026-03-06 17:00", 5)
    _, events = run(judge, dossier, finished("2026-03-07 10:00"))
    assert of(events, DossierResolved)[0].report06_class is not TimelinessClass.LATE


def test_supplement_time_is_subtracted_and_moves_the_legal_due_date(judge) -> None:
    request = SupplementRequested(
        **DOSSIER,
        supplement_id="bs-1",
        requested_at=at("2026-03-03 08:00"),
        stage="processing",
        content="bổ sung bản sao",
    )
    back = SupplementReceived(**DOSSIER, supplement_id="bs-1", received_at=at("2026-03-05 08:00"))
    state, events = run(judge, received(), request, back, finished("2026-03-06 10:00"))
    [verdict] = of(events, DossierResolved)
    assert verdict.supplement_working_hours == pytest.approx(16)
    assert verdict.supplement_requests == 1
    assert verdict.on_time_766  # finished 10 working hours after the due date, waited 16
    assert verdict.report06_class is not TimelinessClass.LATE  # PAUSE_RESUME: due moved to Tue 10/03 08:00
    assert state.due_at == at("2026-03-05 08:00")  # the original due date never changes


def test_more_than_one_supplement_during_processing_is_late_for_766(judge) -> None:
    facts = [received("2026-03-02 08:00", "2026-03-13 08:00", 9)]
    for n, (ask, back) in enumerate([("03-03 08:00", "03-03 09:00"), ("03-04 08:00", "03-04 09:00")]):
        facts.append(
            SupplementRequested(
                **DOSSIER, supplement_id=f"bs-{n}", requested_at=at(f"2026-{ask}"), stage="processing", content="x"
            )
        )
        facts.append(SupplementReceived(**DOSSIER, supplement_id=f"bs-{n}", received_at=at(f"2026-{back}")))
    _, events = run(judge, *facts, finished("2026-03-05 08:00"))
    [verdict] = of(events, DossierResolved)
    assert verdict.report06_class is TimelinessClass.EARLY
    assert not verdict.on_time_766


def test_restart_policy_counts_the_statutory_time_again_from_the_supplement(judge) -> None:
    restart = replace(judge, rules=load_rules(DEFAULT_RULESETS))
    book = restart.rules
    ruleset = book.for_receipt(at("2026-03-02 08:00").date())
    assert ruleset is not None
    overridden = type(book)(
        [replace(r, supplement_policy=SupplementPolicy.RESTART) if r.id == ruleset.id else r for r in book.rulesets]
    )
    restart = replace(judge, rules=overridden)
    request = SupplementRequested(
        **DOSSIER, supplement_id="bs-1", requested_at=at("2026-03-03 08:00"), stage="processing", content="x"
    )
    back = SupplementReceived(**DOSSIER, supplement_id="bs-1", received_at=at("2026-03-04 08:00"))
    # restart: due = Wed 04/03 08:00 + 3 working days = Mon 09/03 08:00; finished Mon 09/03 07:30 is on time
    _, events = run(restart, received(), request, back, finished("2026-03-09 07:30"))
    assert of(events, DossierResolved)[0].report06_class is TimelinessClass.ON_TIME
    # pause/resume would move the due date by only 8 h (to Fri 06/03 08:00): the same finish is late
    _, events = run(judge, received(), request, back, finished("2026-03-09 07:30"))
    assert of(events, DossierResolved)[0].report06_class is TimelinessClass.LATE


def test_rules_are_chosen_by_the_day_of_receipt(judge) -> None:
    before = received("2025-06-30 08:00", "2025-07-03 08:00")
    after = received("2025-07-01 08:00", "2025-07-04 08:00")
    _, old = run(judge, before, ResultIssued(**DOSSIER, finished_at=at("2025-07-01 09:00"), result_docs=[]))
    _, new = run(judge, after, ResultIssued(**DOSSIER, finished_at=at("2025-07-02 09:00"), result_docs=[]))
    assert of(old, DossierResolved)[0].ruleset_version.startswith("nd61-2018@1")
    assert of(new, DossierResolved)[0].ruleset_version.startswith("nd118-2025@1")


def test_became_overdue_is_reported_once_by_the_scheduler(judge) -> None:
    state, _ = run(judge, received())
    first = decide(state, CheckOverdue(), at("2026-03-05 09:00"), judge)
    assert isinstance(first, list)
    [overdue] = of(first, DossierBecameOverdue)
    assert overdue.due_at == at("2026-03-05 08:00")
    assert overdue.status is DossierStatus.RECEIVED
    assert of(first, ApologyAssessed)[0].issued is False  # late and no apology yet: counted against it
    for event in first:
        state = evolve(state, event)
    assert decide(state, CheckOverdue(), at("2026-03-06 09:00"), judge) == []


def test_not_overdue_before_the_due_instant_nor_while_waiting_for_the_applicant(judge) -> None:
    state, _ = run(judge, received())
    assert decide(state, CheckOverdue(), at("2026-03-05 07:59"), judge) == []
    request = SupplementRequested(
        **DOSSIER, supplement_id="bs-1", requested_at=at("2026-03-03 08:00"), stage="processing", content="x"
    )
    waiting, _ = run(judge, received(), request)
    assert decide(waiting, CheckOverdue(), at("2026-04-30 09:00"), judge) == []


def test_a_fact_after_the_due_date_reports_the_overdue_before_its_verdict(judge) -> None:
    # the scheduler never ran: the late result itself reveals the dossier was open and overdue
    _, events = run(judge, received(), finished("2026-03-09 10:00"))
    types = [type(e) for e in events]
    assert types == [DossierReceived, ResultIssued, DossierBecameOverdue, DossierResolved, ApologyAssessed]


@pytest.mark.parametrize(
    ("facts", "refused", "reason"),
    [
        ([], finished("2026-03-04 10:00"), "needs a dossier in processing"),
        (
            [received()],
            ResultIssued(**DOSSIER, finished_at=at("2026-03-01 10:00"), result_docs=[]),
            "before the dossier was received",
        ),
        (
            [received()],
            DossierRefused(**DOSSIER, refused_at=at("2026-03-02 09:00"), reason="thiếu"),
            "only be refused before receipt",
        ),
        ([received()], received(), "already received"),
        ([received(), finished("2026-03-04 10:00")], finished("2026-03-04 11:00"), "is processed"),
        (
            [
                received(),
                SupplementRequested(
                    **DOSSIER, supplement_id="b", requested_at=at("2026-03-03 08:00"), stage="processing", content="x"
                ),
            ],
            finished("2026-03-04 10:00"),
            "supplement_requested",
        ),
        (
            [received()],
            SupplementReceived(**DOSSIER, supplement_id="zz", received_at=at("2026-03-03 08:00")),
            "no pending supplement",
        ),
        (
            [received()],
            ApologyIssued(
                **DOSSIER,
                issued_at=at("2026-03-03 09:00"),
                reason="x",
                new_due_at=at("2026-03-09 08:00"),
                sequence_no=2,
            ),
            "sequence_no 2",
        ),
        (
            [received(), DossierWithdrawn(**DOSSIER, withdrawn_at=at("2026-03-03 08:00"))],
            ProcessingStepCompleted(**DOSSIER, step="thẩm định", completed_at=at("2026-03-03 09:00")),
            "is withdrawn",
        ),
        (
            [received()],
            DossierResolved(
                **DOSSIER,
                ma_tthc="1.001776",
                channel="direct",
                received_at=at("2026-03-02 08:00"),
                due_at=at("2026-03-05 08:00"),
                resolved_at=at("2026-03-04 08:00"),
                final_status="processed",
                on_time_766=True,
                supplement_working_hours=0,
                supplement_requests=0,
                processing_working_hours=1,
                ruleset_version="x",
            ),
            "derived by chiso",
        ),
        (
            [received()],
            ResultDelivered(**DOSSIER, delivered_at=NOW + timedelta(days=1), delivery_channel="in_person"),
            "in the future",
        ),
    ],
)
def test_impossible_facts_are_refused_with_the_reason(judge, facts, refused, reason) -> None:
    state, _ = run(judge, *facts)
    decision = decide(state, refused, NOW, judge)
    assert isinstance(decision, str)
    assert reason in decision


def test_withdrawn_and_stopped_dossiers_are_resolved_without_a_report06_class(judge) -> None:
    for end in (
        DossierWithdrawn(**DOSSIER, withdrawn_at=at("2026-03-03 08:00")),
        ProcessingStopped(**DOSSIER, stopped_at=at("2026-03-03 08:00"), reason="x"),
    ):
        _, events = run(judge, received(), end)
        [verdict] = of(events, DossierResolved)
        assert verdict.report06_class is None
        assert verdict.on_time_766


def test_an_online_dossier_withdrawn_before_receipt_has_no_verdict(judge) -> None:
    submitted = DossierSubmitted(
        **DOSSIER,
        channel="online",
        ma_tthc="1.001776",
        procedure_version="v",
        applicant_type="individual",
        applicant_ref="b" * 64,
        submitted_at=at("2026-03-01 20:00"),
        submitted_via_dvcqg=True,
        vneid_authenticated=True,
    )
    state, events = run(judge, submitted, DossierWithdrawn(**DOSSIER, withdrawn_at=at("2026-03-02 08:00")))
    assert state.status is DossierStatus.WITHDRAWN
    assert not of(events, DossierResolved)


def test_the_snapshot_round_trips(judge) -> None:
    request = SupplementRequested(
        **DOSSIER, supplement_id="bs-1", requested_at=at("2026-03-03 08:00"), stage="processing", content="x"
    )
    back = SupplementReceived(**DOSSIER, supplement_id="bs-1", received_at=at("2026-03-05 08:00"))
    paid = FeePaid(**DOSSIER, paid_at=at("2026-03-05 09:00"), amount_vnd=50000, fee_lines=[], paid_online="dvcqg")
    state, _ = run(judge, received(), request, back, paid, finished("2026-03-09 10:00"))
    assert DossierState.from_json(state.to_json()) == state
    # and judging continues identically from the restored snapshot
    delivered = ResultDelivered(**DOSSIER, delivered_at=at("2026-03-09 11:00"), delivery_channel="in_person")
    assert decide(state, delivered, NOW, judge) == decide(
        DossierState.from_json(state.to_json()), delivered, NOW, judge
    )


# --- properties ------------------------------------------------------------------------------------------

_BASE = at("2026-03-02 08:00")


def _fact(kind: int, t: datetime, sid: str, n: int, stage: str, sequence_no: int):
    """Fact number ``kind`` at ``t`` (a plain function: hypothesis draws the arguments)."""
    if kind == 0:
        return received(t.strftime("%Y-%m-%d %H:%M"), (t + timedelta(days=3)).strftime("%Y-%m-%d %H:%M"))
    if kind == 1:
        return finished(t.strftime("%Y-%m-%d %H:%M"))
    if kind == 2:
        return SupplementRequested(**DOSSIER, supplement_id=sid, requested_at=t, stage=stage, content="x")
    if kind == 3:
        return SupplementReceived(**DOSSIER, supplement_id=sid, received_at=t)
    if kind == 4:
        return ApologyIssued(
            **DOSSIER, issued_at=t, reason="x", new_due_at=t + timedelta(days=2), sequence_no=sequence_no
        )
    if kind == 5:
        return ResultDelivered(**DOSSIER, delivered_at=t, delivery_channel="postal")
    if kind == 6:
        return DossierWithdrawn(**DOSSIER, withdrawn_at=t)
    if kind == 7:
        return ProcessingStopped(**DOSSIER, stopped_at=t, reason="x")
    if kind == 8:
        return DossierRefused(**DOSSIER, refused_at=t, reason="x")
    if kind == 9:
        return ProcessingStepCompleted(**DOSSIER, step=f"b{n}", completed_at=t)
    return CheckOverdue()


@st.composite
def fact_sequences(draw):
    """Any sequence of lifecycle facts with plausible, non-decreasing times (many of them impossible)."""
    t = _BASE
    facts = []
    for n in range(draw(st.integers(1, 12))):
        t += timedelta(minutes=draw(st.integers(0, 60 * 24 * 3)))
        facts.append(
            _fact(
                draw(st.integers(0, 10)),
                t,
                f"bs-{draw(st.integers(0, 2))}",
                n,
                draw(st.sampled_from(["processing", "reception"])),
                draw(st.integers(1, 3)),
            )
        )
    return facts, t


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(fact_sequences())
def test_any_sequence_never_crashes_and_keeps_the_invariants(judge, sequence) -> None:
    facts, last = sequence
    now = last + timedelta(hours=1)
    state = DossierState()
    for fact in facts:
        decision = decide(state, fact, now, judge)
        if isinstance(decision, str):
            assert decision  # a refusal always says why
            continue
        before_due = state.due_at
        for event in decision:
            state = evolve(state, event)
            if isinstance(event, DossierResolved):
                assert state.received_at is not None
                assert event.resolved_at >= event.received_at  # no resolution before receipt
                assert event.due_at == state.due_at
        if before_due is not None:
            assert state.due_at == before_due  # the original due date never changes
        assert DossierState.from_json(state.to_json()) == state
    if state.finished_at is not None:
        assert state.received_at is not None
        assert state.finished_at >= state.received_at


def test_the_verdict_carries_the_service_facts_known_at_resolution(judge) -> None:
    paid = FeePaid(**DOSSIER, paid_at=at("2026-03-03 09:00"), amount_vnd=50000, fee_lines=[], paid_online="dvcqg")
    _, events = run(judge, received(), paid, finished("2026-03-04 10:00"))
    [verdict] = of(events, DossierResolved)
    assert verdict.fee_vnd == 50000
    assert verdict.paid_online is not None
    assert verdict.paid_online.value == "dvcqg"
    assert verdict.components == 0
    assert verdict.electronic_result is False
    assert verdict.submitted_via_dvcqg is None  # a direct dossier: no online submission was recorded
    _, unpaid = run(judge, received(), finished("2026-03-04 10:00"))
    assert of(unpaid, DossierResolved)[0].paid_online is None
