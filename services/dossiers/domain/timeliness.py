"""Derived facts: timeliness at resolution (both definitions of DOMAIN §3.3), overdue, apology compliance.

Pure functions of the dossier's state, its ruleset and the working calendar. All comparisons of instants
are made in working time, so the canonical due date (Fri 17:00) and TD's form of the same instant
(Mon 07:00) give the same verdict (DOMAIN §3.2).
"""

from __future__ import annotations

from datetime import datetime
from typing import Protocol

from contracts.dossiers import (
    ApologyAssessed,
    Channel,
    DossierBecameOverdue,
    DossierResolved,
    DossierStatus,
    TimelinessClass,
)
from services.dossiers.domain.rules import Ruleset, SupplementPolicy
from services.dossiers.domain.state import DossierState

__all__ = ["Calendar", "apology_assessment", "effective_due", "overdue", "resolution", "supplement_hours"]

_EPS_HOURS = 1e-6  # float noise of working-time arithmetic (the calendar counts whole seconds)


class Calendar(Protocol):
    """The working calendar the rules need (``eventkit.worktime.WorkingCalendar`` implements it)."""

    version: str

    def working_hours_between(self, start: datetime, end: datetime) -> float:
        """Working hours from ``start`` to ``end`` (0 if ``end`` is not after ``start``)."""
        ...

    def add_working_hours(self, t: datetime, hours: float) -> datetime:
        """The instant ``hours`` working hours after ``t`` (canonical form)."""
        ...

    def due_at(self, received_at: datetime, value: float, unit: str) -> datetime:
        """Due instant of a statutory limit counted from ``received_at``."""
        ...

    def working_ordinal(self, t: datetime) -> float:
        """A number that orders instants in working time (equal for Fri 17:00, Sat 10:00, Mon 07:00)."""
        ...


def supplement_hours(state: DossierState, calendar: Calendar, until: datetime) -> float:
    """Working hours the dossier waited for the applicant during processing (766 2.1 subtracts them).

    A supplement still pending counts up to ``until`` (the dossier's end, or now).
    """
    total = 0.0
    for s in state.processing_supplements:
        total += calendar.working_hours_between(s.requested_at, s.received_at or until)
    return total


def effective_due(state: DossierState, ruleset: Ruleset, calendar: Calendar, until: datetime) -> datetime:
    """The legal due date after supplements, per the ruleset's supplement policy (DOMAIN §2.4 [C]).

    PAUSE_RESUME: the original due date moved by the working time spent waiting for supplements;
    RESTART: the statutory time counted again from the last supplement's completion. Apologies never move
    it (an apology's new date is judged separately, by :func:`apology_assessment`).
    """
    assert state.due_at is not None
    done = [s for s in state.processing_supplements if s.received_at is not None]
    if ruleset.supplement_policy is SupplementPolicy.RESTART:
        if done and state.statutory_value is not None and state.statutory_unit is not None:
            last = max(s.received_at for s in done if s.received_at is not None)
            return max(state.due_at, calendar.due_at(last, state.statutory_value, state.statutory_unit))
        return state.due_at
    paused = supplement_hours(state, calendar, until)
    return calendar.add_working_hours(state.due_at, paused) if paused > 0 else state.due_at


def _after(calendar: Calendar, a: datetime, b: datetime) -> bool:
    """``a`` is later than ``b`` in working time."""
    return calendar.working_ordinal(a) > calendar.working_ordinal(b) + _EPS_HOURS


def resolution(
    state: DossierState, ruleset: Ruleset, calendar: Calendar, calendar_stamp: str
) -> DossierResolved | None:
    """The timeliness verdict of a dossier that reached an end state, or None (not received / still open)."""
    end = state.end_time
    if end is None or state.received_at is None or state.due_at is None:
        return None
    end_at, final = end
    assert state.ma_tthc is not None
    assert state.channel is not None
    waited = supplement_hours(state, calendar, end_at)
    due = effective_due(state, ruleset, calendar, end_at)
    report06: TimelinessClass | None = None
    if final in (DossierStatus.PROCESSED, DossierStatus.RESULT_DELIVERED):
        # DOMAIN §3.3a [I]: late = a later instant than the due date (in working time); otherwise early if
        # finished on an earlier calendar date, on time if on the due date itself
        if _after(calendar, end_at, due):
            report06 = TimelinessClass.LATE
        elif end_at.astimezone(due.tzinfo).date() < due.date():
            report06 = TimelinessClass.EARLY
        else:
            report06 = TimelinessClass.ON_TIME
    # 766 2.1: end time minus supplement time against NgayHenTra, and more than N supplements = late
    processing_requests = len(state.processing_supplements)
    elapsed_past_due = calendar.working_hours_between(state.due_at, end_at)
    on_time_766 = processing_requests <= ruleset.max_processing_supplements_766 and (
        elapsed_past_due <= waited + _EPS_HOURS
    )
    return DossierResolved(
        dossier_id=state.dossier_id or "",
        agency_code=state.agency_code or "",
        ma_tthc=state.ma_tthc,
        channel=Channel(state.channel),
        received_at=state.received_at,
        due_at=state.due_at,
        resolved_at=end_at,
        final_status=final,
        report06_class=report06,
        on_time_766=on_time_766,
        supplement_working_hours=round(waited, 6),
        supplement_requests=processing_requests,
        processing_working_hours=round(max(0.0, calendar.working_hours_between(state.received_at, end_at) - waited), 6),
        ruleset_version=f"{ruleset.stamp}+{calendar_stamp}",
        submitted_via_dvcqg=state.submitted_via_dvcqg if state.submitted_at is not None else None,
        vneid_authenticated=state.vneid_authenticated if state.submitted_at is not None else None,
        fee_vnd=state.fee_total_vnd,
        paid_online=state.paid_online,
        components=state.components,
        components_digitized=state.components_digitized,
        components_reused=state.components_reused,
        electronic_result=state.electronic_result,
    )


def overdue(
    state: DossierState, ruleset: Ruleset, calendar: Calendar, *, at: datetime, detected_at: datetime, stamp: str
) -> DossierBecameOverdue | None:
    """``became overdue`` if at ``at`` the dossier is open, not waiting for the applicant, and past its due date.

    Reported once per due date: a due date moved later by a supplement can pass (and be reported) again.
    """
    # (the effective due date is never before the original one: a cheap first test; lifecycle._derive
    # repeats it to skip the ruleset lookup, keep the two the same)
    if not state.is_open or state.pending_supplement is not None or state.due_at is None or at <= state.due_at:
        return None
    due = effective_due(state, ruleset, calendar, at)
    if state.overdue_reported_at == due or not _after(calendar, at, due):
        return None
    assert state.ma_tthc is not None
    assert state.status is not None
    return DossierBecameOverdue(
        dossier_id=state.dossier_id or "",
        agency_code=state.agency_code or "",
        ma_tthc=state.ma_tthc,
        due_at=due,
        detected_at=detected_at,
        status=state.status,
        ruleset_version=stamp,
    )


def is_late(state: DossierState, ruleset: Ruleset, calendar: Calendar) -> bool:
    """Finished after its due date, or reported overdue while open (the apology-rate denominator, §3.6)."""
    if state.due_at is None:
        return False
    end = state.end_time
    if end is None:
        return state.overdue_reported_at is not None
    return _after(calendar, end[0], effective_due(state, ruleset, calendar, end[0]))


def apology_assessment(
    state: DossierState,
    ruleset: Ruleset,
    calendar: Calendar,
    *,
    hours_per_day: float,
    assessed_at: datetime,
    stamp: str,
) -> ApologyAssessed | None:
    """Apology compliance of a late dossier (DOMAIN §3.6), every variant kept; None if not late."""
    if state.due_at is None or not is_late(state, ruleset, calendar):
        return None
    end = state.end_time
    first = state.apologies[0] if state.apologies else None
    last = state.apologies[-1] if state.apologies else None
    needed = ruleset.apology_min_working_days_before_due * hours_per_day
    return ApologyAssessed(
        dossier_id=state.dossier_id or "",
        agency_code=state.agency_code or "",
        original_due_at=state.due_at,
        resolved_at=None if end is None else end[0],
        apologies_issued=len(state.apologies),
        issued=first is not None,
        before_original_due=first is not None and _after(calendar, state.due_at, first.issued_at),
        at_least_one_working_day_before=first is not None
        and first.issued_at < state.due_at
        and calendar.working_hours_between(first.issued_at, state.due_at) + _EPS_HOURS >= needed,
        single_reschedule=1 <= len(state.apologies) <= ruleset.apology_max_reschedules,
        result_by_rescheduled_due=last is not None
        and end is not None
        and not _after(calendar, end[0], last.new_due_at),
        assessed_at=assessed_at,
        ruleset_version=stamp,
    )
