"""The domain's dispatch by payload class gives exactly what the ``match`` statements it replaced gave.

``reference_evolve`` and ``reference_check`` are ``evolve`` and ``_check`` as they were written with
``match`` over class patterns (copied verbatim); the fast ones look the case up per class
(services/dossiers/domain/dispatch.py). Compared on every (state, event) pair of hypothesis' fact
sequences (refused facts too) and of a generated month of DVCQG records.
"""

from __future__ import annotations

import tempfile
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bench.dvcqg_gen import write_jsonl
from contracts.base import EventPayload
from contracts.dossiers import (
    ApologyAssessed,
    ApologyIssued,
    DossierBecameOverdue,
    DossierRated,
    DossierReceived,
    DossierRefused,
    DossierResolved,
    DossierStatus,
    DossierSubmitted,
    DossierSyncedToDVCQG,
    DossierWithdrawn,
    FeePaid,
    FinancialObligationRequested,
    ProcessingStepCompleted,
    ProcessingStopped,
    ResultDelivered,
    ResultIssued,
    SupplementReceived,
    SupplementRequested,
    SupplementStage,
)
from contracts.registry import default_registry
from eventkit.worktime import WorkingCalendar
from services.dossiers.domain import DERIVED, CheckOverdue, DossierState, Judge, decide_and_evolve, evolve, lifecycle
from services.dossiers.domain.dispatch import ByClass
from services.dossiers.domain.state import OPEN, Apology, Supplement, _set, assessment_key, resolution_key
from services.dossiers.dvcqg import iter_records, map_sync_body
from services.dossiers.rulesets import DEFAULT_RULESETS, load_rules
from tests.unit.test_dossier_domain import _BASE, _fact, fact_sequences

_S = DossierStatus
_BEFORE_RECEIPT = frozenset({None, _S.SUBMITTED})
_PROCESSING_OPEN = frozenset({_S.RECEIVED, _S.PROCESSING, _S.FINANCIAL_OBLIGATION})


def _name(status: DossierStatus | None) -> str:
    return "unknown" if status is None else status.value


def reference_evolve(state: DossierState, event: EventPayload) -> DossierState:
    """The state after ``event`` (a fact already accepted into the dossier's stream)."""
    match event:
        case DossierSubmitted():
            return _set(
                state,
                status=DossierStatus.SUBMITTED,
                dossier_id=event.dossier_id,
                agency_code=event.agency_code,
                ma_tthc=event.ma_tthc,
                channel=event.channel.value,
                submitted_at=event.submitted_at,
                submitted_via_dvcqg=event.submitted_via_dvcqg,
                vneid_authenticated=event.vneid_authenticated,
            )
        case DossierReceived():
            return _set(
                state,
                status=DossierStatus.RECEIVED,
                dossier_id=event.dossier_id,
                agency_code=event.agency_code,
                ma_tthc=event.ma_tthc,
                channel=event.channel.value,
                received_at=event.received_at,
                due_at=state.due_at or event.due_at,  # the original due date is immutable
                statutory_value=event.statutory_time.value,
                statutory_unit=event.statutory_time.unit.value,
                components=len(event.components),
                components_digitized=sum(c.digitized for c in event.components),
                components_reused=sum(c.reused_digital_data or c.reused_from_store for c in event.components),
            )
        case DossierRefused():
            return _set(
                state,
                status=DossierStatus.NOT_RECEIVED,
                refused_at=event.refused_at,
                dossier_id=event.dossier_id,
                agency_code=event.agency_code,
            )
        case SupplementRequested():
            supplement = Supplement(event.supplement_id, event.stage, event.requested_at)
            return _set(state, status=DossierStatus.SUPPLEMENT_REQUESTED, supplements=(*state.supplements, supplement))
        case SupplementReceived():
            supplements = tuple(
                replace(s, received_at=event.received_at) if s.supplement_id == event.supplement_id else s
                for s in state.supplements
            )
            back = DossierStatus.PROCESSING if state.is_received else DossierStatus.SUBMITTED
            return _set(state, status=back, supplements=supplements)
        case ProcessingStepCompleted():
            return _set(state, status=DossierStatus.PROCESSING, steps=state.steps + 1)
        case FinancialObligationRequested():
            return _set(
                state,
                status=DossierStatus.FINANCIAL_OBLIGATION,
                fee_requested=True,
                fee_total_vnd=max(state.fee_total_vnd, event.amount_vnd),
            )
        case FeePaid():
            status = DossierStatus.PROCESSING if state.status is DossierStatus.FINANCIAL_OBLIGATION else state.status
            return _set(
                state,
                status=status,
                fee_paid=True,
                fee_total_vnd=max(state.fee_total_vnd, event.amount_vnd),
                paid_online=event.paid_online.value if event.paid_online else state.paid_online,
            )
        case ApologyIssued():
            return _set(state, apologies=(*state.apologies, Apology(event.issued_at, event.new_due_at)))
        case ProcessingStopped():
            return _set(state, status=DossierStatus.STOPPED, stopped_at=event.stopped_at)
        case DossierWithdrawn():
            return _set(state, status=DossierStatus.WITHDRAWN, withdrawn_at=event.withdrawn_at)
        case ResultIssued():
            return _set(
                state,
                status=DossierStatus.PROCESSED,
                finished_at=event.finished_at,
                electronic_result=any(d.electronic for d in event.result_docs),
            )
        case ResultDelivered():
            return _set(state, status=DossierStatus.RESULT_DELIVERED, delivered_at=event.delivered_at)
        case DossierSyncedToDVCQG():
            return _set(state, synced_to_dvcqg=True)
        case DossierRated():
            return _set(state, rated=True)
        case DossierResolved():
            return _set(state, last_resolution=resolution_key(event))
        case DossierBecameOverdue():
            return _set(state, overdue_reported_at=event.due_at)
        case ApologyAssessed():
            return _set(state, last_apology_assessment=assessment_key(event))
    return state


def reference_check(state: DossierState, fact: EventPayload, at: datetime) -> str | None:
    """Why ``fact`` cannot happen to a dossier in ``state`` (None: it can)."""
    status = state.status
    if status is not None and getattr(fact, "dossier_id", state.dossier_id) != state.dossier_id:
        return f"dossier_id {getattr(fact, 'dossier_id', None)!r} differs from the stream's {state.dossier_id!r}"
    if state.received_at is not None and at < state.received_at and not isinstance(fact, DossierSubmitted):
        return f"it happened at {at.isoformat()}, before the dossier was received ({state.received_at.isoformat()})"
    match fact:
        case DossierSubmitted():
            if status is not None:
                return f"the dossier is already {status.value}"
        case DossierReceived():
            if status not in _BEFORE_RECEIPT:
                return f"the dossier is already {status.value}"  # type: ignore[union-attr]
            if state.submitted_at is not None and at < state.submitted_at:
                return "received_at is before the submission"
        case DossierRefused():
            if status not in _BEFORE_RECEIPT:
                return (
                    f"reception can only be refused before receipt; the dossier is {status.value} "  # type: ignore[union-attr]
                    "(stop it with processing_stopped instead)"
                )
        case SupplementRequested():
            if any(s.supplement_id == fact.supplement_id for s in state.supplements):
                return f"supplement {fact.supplement_id!r} was already requested"
            if state.pending_supplement is not None:
                return f"supplement {state.pending_supplement.supplement_id!r} is still pending"
            if fact.stage is SupplementStage.RECEPTION and status not in _BEFORE_RECEIPT:
                return f"a reception-stage supplement needs a dossier not yet received; it is {status.value}"  # type: ignore[union-attr]
            if fact.stage is SupplementStage.PROCESSING and status not in _PROCESSING_OPEN:
                return f"a processing-stage supplement needs a dossier in processing; it is {_name(status)}"
        case SupplementReceived():
            pending = state.pending_supplement
            if pending is None or pending.supplement_id != fact.supplement_id:
                return f"no pending supplement {fact.supplement_id!r}"
            if at < pending.requested_at:
                return "the supplement came back before it was requested"
        case ProcessingStepCompleted() | FinancialObligationRequested() | ProcessingStopped():
            if status not in _PROCESSING_OPEN:
                return f"the dossier must be received and in processing; it is {_name(status)}"
        case FeePaid():
            if status is None or status in (_S.NOT_RECEIVED, _S.WITHDRAWN, _S.STOPPED):
                return f"there is no live dossier to pay for; it is {_name(status)}"
        case ApologyIssued():
            if status not in OPEN:
                return f"an apology is issued for a dossier still in processing; it is {_name(status)}"
            if fact.sequence_no != len(state.apologies) + 1:
                return f"sequence_no {fact.sequence_no} but {len(state.apologies)} apologies were issued before"
            if fact.new_due_at <= fact.issued_at:
                return "new_due_at must be after issued_at"
        case DossierWithdrawn():
            if status not in OPEN and status is not _S.SUBMITTED:
                return f"only a submitted or open dossier can be withdrawn; it is {_name(status)}"
        case ResultIssued():
            if status not in _PROCESSING_OPEN:
                return f"a result needs a dossier in processing (no pending supplement); it is {_name(status)}"
        case ResultDelivered():
            if status is not _S.PROCESSED and status not in _PROCESSING_OPEN:
                return f"a result is delivered after processing; the dossier is {_name(status)}"
            if state.finished_at is not None and at < state.finished_at:
                return "delivered_at is before the result was issued"
        case DossierSyncedToDVCQG() | DossierRated():
            if status is None:
                return "the dossier is unknown (no submission or receipt recorded)"
    return None


@pytest.fixture(scope="module")
def judge() -> Judge:
    calendar = WorkingCalendar.load()
    return Judge(load_rules(DEFAULT_RULESETS), calendar, calendar.hours.hours_per_day, "01")


def _same_fold_and_rules(state: DossierState, event: EventPayload, at: datetime | None) -> None:
    assert evolve(state, event) == reference_evolve(state, event)
    if at is not None:
        assert lifecycle._check(state, event, at) == reference_check(state, event, at)


def _replay(judge: Judge, facts: list, now: datetime) -> int:
    """Every fact (accepted or not) checked and folded both ways at each state; returns the pairs compared."""
    state, compared = DossierState(), 0
    for fact in facts:
        if not isinstance(fact, CheckOverdue):
            _same_fold_and_rules(state, fact, lifecycle.fact_time(fact))
            compared += 1
        decided = decide_and_evolve(state, fact, now, judge)
        if isinstance(decided, str):
            continue
        events, after = decided
        folded = state
        for event in events:
            _same_fold_and_rules(folded, event, None)
            folded = reference_evolve(folded, event)
            compared += 1
        assert folded == after  # decide_and_evolve's state is the reference fold of its events
        state = after
    return compared


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(fact_sequences())
def test_any_sequence_folds_and_is_judged_as_by_the_match_statements(judge, sequence) -> None:
    facts, last = sequence
    _replay(judge, facts, last + timedelta(hours=1))


@st.composite
def unordered_sequences(draw: st.DrawFn) -> list:
    """Facts at any times within a fortnight, in any order (most refused, each rule's refusals reached)."""
    return [
        _fact(
            draw(st.integers(0, 10)),
            _BASE + timedelta(minutes=draw(st.integers(-60 * 24, 60 * 24 * 14))),
            f"bs-{draw(st.integers(0, 2))}",
            n,
            draw(st.sampled_from(["processing", "reception"])),
            draw(st.integers(1, 3)),
        )
        for n in range(draw(st.integers(1, 14)))
    ]


@settings(max_examples=1500, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(unordered_sequences())
def test_facts_at_any_times_in_any_order_are_judged_as_by_the_match_statements(judge, facts) -> None:
    _replay(judge, facts, _BASE + timedelta(days=30))


def test_a_generated_month_folds_and_is_judged_as_by_the_match_statements(judge) -> None:
    calendar = WorkingCalendar.load()
    with tempfile.TemporaryDirectory() as tmp:
        path = write_jsonl(Path(tmp) / "export.jsonl", 600, seed=5)
        records = [record for _, record in iter_records(path)]
    compared = 0
    now = datetime.now(UTC)
    for record in records:
        assert not isinstance(record, Exception)
        facts = map_sync_body(record, source="t", default_unit=None, due_at_of=calendar.due_at)
        compared += _replay(judge, [f.payload for f in facts], now)
        # the same facts out of order: mostly refusals, each with its reason
        compared += _replay(judge, [f.payload for f in reversed(facts)], now)
    assert compared > 4000


def test_every_contract_type_takes_the_case_isinstance_gives() -> None:
    for cls in default_registry().types():
        assert lifecycle._IS_DERIVED.of(_instance_of(cls)) is issubclass(cls, DERIVED)
        assert lifecycle._IS_END.of(_instance_of(cls)) is issubclass(cls, lifecycle._ENDS)
        assert lifecycle._IS_RECEIPT.of(_instance_of(cls)) is issubclass(cls, DossierReceived)
        assert lifecycle._IS_APOLOGY.of(_instance_of(cls)) is issubclass(cls, ApologyIssued)


def _instance_of(cls: type) -> object:
    # ByClass only looks at the class: an instance made without validation is enough
    return cls.model_construct()  # type: ignore[attr-defined]


class _A:
    pass


class _B:
    pass


class _AB(_A, _B):
    pass


class _SubB(_B):
    pass


def test_by_class_takes_the_first_case_in_order_like_match() -> None:
    def by_match(value: object) -> str:
        match value:
            case _B():
                return "b"
            case _A():
                return "a"
        return "none"

    chosen = ByClass([(_B, "b"), (_A, "a")], "none")
    for value in [_A(), _B(), _AB(), _SubB(), object(), 3, _AB(), _A()]:  # the second time from the memo
        assert chosen.of(value) == by_match(value)
    assert ByClass([((_SubB, _A), "x")], "-").of(_AB()) == "x"
    assert ByClass([((_SubB, _A), "x")], "-").of(_B()) == "-"


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(unordered_sequences())
def test_the_state_setter_equals_dataclasses_replace(judge, facts) -> None:
    state = DossierState()
    for fact in facts:
        decided = decide_and_evolve(state, fact, _BASE + timedelta(days=30), judge)
        if isinstance(decided, str):
            continue
        after = decided[1]
        changes = {k: v for k, v in after.__dict__.items() if state.__dict__[k] is not v}
        assert _set(state, **changes) == replace(state, **changes) == after
        assert _set(state, **changes).__dict__ == replace(state, **changes).__dict__
        assert hash(_set(state, **changes)) == hash(after)
        state = after
