"""``decide``: judge one fact against a dossier's lifecycle (DOMAIN §2.2-2.4) and derive what follows.

``decide(state, command, now, judge)`` returns the events to append — the fact itself first, then the
derived facts it causes (resolution, overdue, apology compliance) — or the reason the fact is refused.
It never raises for bad input and never reads a clock: ``now`` is passed in.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, datetime, timedelta, timezone
from typing import Any

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
from services.dossiers.domain.dispatch import ByClass
from services.dossiers.domain.rules import RulesBook, Ruleset
from services.dossiers.domain.state import OPEN, DossierState, assessment_key, evolve, resolution_key
from services.dossiers.domain.timeliness import Calendar, apology_assessment, effective_due, overdue, resolution

__all__ = [
    "DERIVED",
    "CheckOverdue",
    "Judge",
    "decide",
    "decide_and_evolve",
    "fact_time",
    "local_day",
    "overdue_watch",
]

#: how far in the future a fact may be dated (clock skew between partner systems and chiso)
FUTURE_TOLERANCE = timedelta(minutes=5)

#: facts only chiso derives; a partner sending one is refused
DERIVED = (DossierResolved, DossierBecameOverdue, ApologyAssessed)

#: facts that can end a dossier (and so make or change its timeliness verdict)
_ENDS = (ResultIssued, ResultDelivered, ProcessingStopped, DossierWithdrawn)

# isinstance tests of the payload types, remembered per class (see .dispatch: each failing one costs ~0.35 µs)
_IS_DERIVED = ByClass([(DERIVED, True)], False)
_IS_RECEIPT = ByClass([(DossierReceived, True)], False)
_IS_END = ByClass([(_ENDS, True)], False)
_IS_APOLOGY = ByClass([(ApologyIssued, True)], False)

_S = DossierStatus
_VN = timezone(timedelta(hours=7))
_BEFORE_RECEIPT = frozenset({None, _S.SUBMITTED})
_PROCESSING_OPEN = frozenset({_S.RECEIVED, _S.PROCESSING, _S.FINANCIAL_OBLIGATION})


@dataclass(frozen=True)
class CheckOverdue:
    """The scheduler's command: has the due date of this open dossier passed by ``now``?"""


@dataclass(frozen=True)
class Judge:
    """What ``decide`` needs besides the state: the rules book and the working calendar of the province."""

    rules: RulesBook
    calendar: Calendar
    hours_per_day: float
    province_code: str | None = None

    def ruleset(self, state: DossierState) -> Ruleset | None:
        """The rules of the day the dossier was received (DOMAIN §0.3: judged by the rules then in force)."""
        if state.received_at is None:
            return None
        return self.rules.for_receipt(local_day(state.received_at), self.province_code)

    def stamp(self, ruleset: Ruleset) -> str:
        """Ruleset and calendar versions, stamped on every verdict."""
        return f"{ruleset.stamp}+cal:{self.calendar.version}"


def local_day(t: datetime) -> date:
    """The Vietnamese calendar day of an instant (UTC+7, no daylight saving)."""
    return t.astimezone(_VN).date()


#: the business time of each fact (the instant it happened, as the partner reports it)
_TIME_OF: dict[type[EventPayload], Callable[[EventPayload], datetime]] = {
    DossierSubmitted: lambda e: e.submitted_at,  # type: ignore[attr-defined]
    DossierReceived: lambda e: e.received_at,  # type: ignore[attr-defined]
    DossierRefused: lambda e: e.refused_at,  # type: ignore[attr-defined]
    SupplementRequested: lambda e: e.requested_at,  # type: ignore[attr-defined]
    SupplementReceived: lambda e: e.received_at,  # type: ignore[attr-defined]
    ProcessingStepCompleted: lambda e: e.completed_at,  # type: ignore[attr-defined]
    FinancialObligationRequested: lambda e: e.requested_at,  # type: ignore[attr-defined]
    FeePaid: lambda e: e.paid_at,  # type: ignore[attr-defined]
    ApologyIssued: lambda e: e.issued_at,  # type: ignore[attr-defined]
    ProcessingStopped: lambda e: e.stopped_at,  # type: ignore[attr-defined]
    DossierWithdrawn: lambda e: e.withdrawn_at,  # type: ignore[attr-defined]
    ResultIssued: lambda e: e.finished_at,  # type: ignore[attr-defined]
    ResultDelivered: lambda e: e.delivered_at,  # type: ignore[attr-defined]
    DossierSyncedToDVCQG: lambda e: e.synced_at,  # type: ignore[attr-defined]
    DossierRated: lambda e: e.rated_at,  # type: ignore[attr-defined]
}


def fact_time(fact: EventPayload) -> datetime | None:
    """When a dossier fact happened (None for types that are not dossier lifecycle facts)."""
    getter = _TIME_OF.get(type(fact))
    return None if getter is None else getter(fact)


def decide(
    state: DossierState, command: EventPayload | CheckOverdue, now: datetime, judge: Judge
) -> list[EventPayload] | str:
    """The events ``command`` causes on a dossier in ``state``, or the reason it is refused."""
    decided = decide_and_evolve(state, command, now, judge)
    return decided if isinstance(decided, str) else decided[0]


def decide_and_evolve(  # noqa: PLR0911 - one early return per refusal rule reads best
    state: DossierState, command: EventPayload | CheckOverdue, now: datetime, judge: Judge
) -> tuple[list[EventPayload], DossierState] | str:
    """:func:`decide`, and the state after folding its events with ``evolve`` (computed on the way anyway;
    the intake uses this so a batch folds every event once)."""
    if isinstance(command, CheckOverdue):
        return _derive(state, judge, at=now, now=now, resolve=False, assess=True)
    if _IS_DERIVED.of(command):
        return f"{command.event_type} is derived by chiso and cannot be sent by a partner"
    at = fact_time(command)
    if at is None:
        return f"{command.event_type} is not a dossier lifecycle fact"
    if at > now + FUTURE_TOLERANCE:
        return f"{command.event_type} refused: it is dated {at.isoformat()}, in the future (now {now.isoformat()})"
    refusal = _check(state, command, at)
    if refusal is not None:
        return f"{command.event_type} refused: {refusal}"
    if _IS_RECEIPT.of(command) and judge.rules.for_receipt(local_day(at), judge.province_code) is None:
        return f"{command.event_type} refused: no one-stop-shop ruleset is in force on {local_day(at)}"
    # a due date that passed while the dossier was open is reported with the fact that follows it, so the
    # overdue count is the same whether the scheduler or the next fact noticed first
    before, state = _derive(state, judge, at=at, now=now, resolve=False, assess=False)
    ended_before = state.end_time
    state = evolve(state, command)
    # only a fact that moves the end can change the verdict, and only such a fact, an apology or an overdue
    # the apology assessment (verdicts are recomputed from the whole state then, so skipping is exact)
    ends = _IS_END.of(command) and state.end_time != ended_before
    assess = ends or bool(before) or _IS_APOLOGY.of(command)
    after, state = _derive(state, judge, at=at, now=now, resolve=ends, assess=assess)
    return [command, *before, *after], state


def _derive(
    state: DossierState, judge: Judge, *, at: datetime, now: datetime, resolve: bool, assess: bool
) -> tuple[list[EventPayload], DossierState]:
    """Derived facts that the state implies at ``at`` and that were not emitted yet (each verdict once),
    and the state with them folded in."""
    if state.received_at is None:
        return [], state
    if not (resolve or assess) and _cannot_be_overdue(state, at):
        return [], state  # most facts: no verdict asked and no due date passed (skips the ruleset lookup)
    ruleset = judge.ruleset(state)
    if ruleset is None:
        return [], state
    stamp = judge.stamp(ruleset)
    out: list[EventPayload] = []
    late = overdue(state, ruleset, judge.calendar, at=at, detected_at=now, stamp=stamp)
    if late is not None:
        out.append(late)
        state = evolve(state, late)
    if resolve:
        resolved = resolution(state, ruleset, judge.calendar, f"cal:{judge.calendar.version}")
        if resolved is not None and resolution_key(resolved) != state.last_resolution:
            out.append(resolved)
            state = evolve(state, resolved)
    if assess:
        assessed = apology_assessment(
            state, ruleset, judge.calendar, hours_per_day=judge.hours_per_day, assessed_at=now, stamp=stamp
        )
        if assessed is not None and assessment_key(assessed) != state.last_apology_assessment:
            out.append(assessed)
            state = evolve(state, assessed)
    return out, state


def _cannot_be_overdue(state: DossierState, at: datetime) -> bool:
    """:func:`~services.dossiers.domain.timeliness.overdue`'s first test (it returns None then, whatever the
    ruleset): not open, waiting for the applicant, no due date, or the original due date not passed."""
    return not state.is_open or state.pending_supplement is not None or state.due_at is None or at <= state.due_at


def overdue_watch(state: DossierState, judge: Judge, now: datetime) -> datetime | None:
    """When the scheduler should next ask :class:`CheckOverdue` of this dossier (None: it cannot go overdue).

    Open, not waiting for the applicant (the clock is paused then), and the current due date not yet
    reported: the effective due date is the instant to watch.
    """
    ruleset = judge.ruleset(state)
    if ruleset is None or not state.is_open or state.pending_supplement is not None or state.due_at is None:
        return None
    due = effective_due(state, ruleset, judge.calendar, now)
    return None if state.overdue_reported_at == due else due


def _check(state: DossierState, fact: EventPayload, at: datetime) -> str | None:
    """Why ``fact`` cannot happen to a dossier in ``state`` (None: it can)."""
    status = state.status
    if status is not None and getattr(fact, "dossier_id", state.dossier_id) != state.dossier_id:
        return f"dossier_id {getattr(fact, 'dossier_id', None)!r} differs from the stream's {state.dossier_id!r}"
    if state.received_at is not None and at < state.received_at and not isinstance(fact, DossierSubmitted):
        return f"it happened at {at.isoformat()}, before the dossier was received ({state.received_at.isoformat()})"
    return _CHECK.of(fact)(state, fact, at, status)


def _check_submitted(state: DossierState, fact: DossierSubmitted, at: datetime, status: _S | None) -> str | None:
    if status is not None:
        return f"the dossier is already {status.value}"
    return None


def _check_received(state: DossierState, fact: DossierReceived, at: datetime, status: _S | None) -> str | None:
    if status not in _BEFORE_RECEIPT:
        return f"the dossier is already {status.value}"  # type: ignore[union-attr]
    if state.submitted_at is not None and at < state.submitted_at:
        return "received_at is before the submission"
    return None


def _check_refused(state: DossierState, fact: DossierRefused, at: datetime, status: _S | None) -> str | None:
    if status not in _BEFORE_RECEIPT:
        return (
            f"reception can only be refused before receipt; the dossier is {status.value} "  # type: ignore[union-attr]
            "(stop it with processing_stopped instead)"
        )
    return None


def _check_supplement_requested(
    state: DossierState, fact: SupplementRequested, at: datetime, status: _S | None
) -> str | None:
    if any(s.supplement_id == fact.supplement_id for s in state.supplements):
        return f"supplement {fact.supplement_id!r} was already requested"
    if state.pending_supplement is not None:
        return f"supplement {state.pending_supplement.supplement_id!r} is still pending"
    if fact.stage is SupplementStage.RECEPTION and status not in _BEFORE_RECEIPT:
        return f"a reception-stage supplement needs a dossier not yet received; it is {status.value}"  # type: ignore[union-attr]
    if fact.stage is SupplementStage.PROCESSING and status not in _PROCESSING_OPEN:
        return f"a processing-stage supplement needs a dossier in processing; it is {_name(status)}"
    return None


def _check_supplement_received(
    state: DossierState, fact: SupplementReceived, at: datetime, status: _S | None
) -> str | None:
    pending = state.pending_supplement
    if pending is None or pending.supplement_id != fact.supplement_id:
        return f"no pending supplement {fact.supplement_id!r}"
    if at < pending.requested_at:
        return "the supplement came back before it was requested"
    return None


def _check_processing(state: DossierState, fact: EventPayload, at: datetime, status: _S | None) -> str | None:
    if status not in _PROCESSING_OPEN:
        return f"the dossier must be received and in processing; it is {_name(status)}"
    return None


def _check_fee_paid(state: DossierState, fact: FeePaid, at: datetime, status: _S | None) -> str | None:
    if status is None or status in (_S.NOT_RECEIVED, _S.WITHDRAWN, _S.STOPPED):
        return f"there is no live dossier to pay for; it is {_name(status)}"
    return None


def _check_apology(state: DossierState, fact: ApologyIssued, at: datetime, status: _S | None) -> str | None:
    if status not in OPEN:
        return f"an apology is issued for a dossier still in processing; it is {_name(status)}"
    if fact.sequence_no != len(state.apologies) + 1:
        return f"sequence_no {fact.sequence_no} but {len(state.apologies)} apologies were issued before"
    if fact.new_due_at <= fact.issued_at:
        return "new_due_at must be after issued_at"
    return None


def _check_withdrawn(state: DossierState, fact: DossierWithdrawn, at: datetime, status: _S | None) -> str | None:
    if status not in OPEN and status is not _S.SUBMITTED:
        return f"only a submitted or open dossier can be withdrawn; it is {_name(status)}"
    return None


def _check_result_issued(state: DossierState, fact: ResultIssued, at: datetime, status: _S | None) -> str | None:
    if status not in _PROCESSING_OPEN:
        return f"a result needs a dossier in processing (no pending supplement); it is {_name(status)}"
    return None


def _check_result_delivered(state: DossierState, fact: ResultDelivered, at: datetime, status: _S | None) -> str | None:
    if status is not _S.PROCESSED and status not in _PROCESSING_OPEN:
        return f"a result is delivered after processing; the dossier is {_name(status)}"
    if state.finished_at is not None and at < state.finished_at:
        return "delivered_at is before the result was issued"
    return None


def _check_known(state: DossierState, fact: EventPayload, at: datetime, status: _S | None) -> str | None:
    if status is None:
        return "the dossier is unknown (no submission or receipt recorded)"
    return None


def _no_rule(state: DossierState, fact: EventPayload, at: datetime, status: _S | None) -> str | None:
    return None


#: the rule of each fact type, in the order of the ``match`` this replaces (see :mod:`.dispatch`)
_CHECK: ByClass[Callable[[DossierState, Any, datetime, _S | None], str | None]] = ByClass(
    [
        (DossierSubmitted, _check_submitted),
        (DossierReceived, _check_received),
        (DossierRefused, _check_refused),
        (SupplementRequested, _check_supplement_requested),
        (SupplementReceived, _check_supplement_received),
        ((ProcessingStepCompleted, FinancialObligationRequested, ProcessingStopped), _check_processing),
        (FeePaid, _check_fee_paid),
        (ApologyIssued, _check_apology),
        (DossierWithdrawn, _check_withdrawn),
        (ResultIssued, _check_result_issued),
        (ResultDelivered, _check_result_delivered),
        ((DossierSyncedToDVCQG, DossierRated), _check_known),
    ],
    _no_rule,
)


def _name(status: DossierStatus | None) -> str:
    return "unknown" if status is None else status.value
