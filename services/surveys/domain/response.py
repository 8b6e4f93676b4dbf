"""A survey response's life: submitted once, never overwritten. Pure ``decide`` / ``evolve``, clock passed in.

The stream of a response is its ``response_id``. A response linked to a dossier gets an id derived from
the dossier (see :func:`response_id_for_dossier`), so every response about one dossier lands in the same
stream and the second one finds the first there: at most one response per dossier, refused and not
overwritten, whichever way (HTTP, Kafka, file) each came in.
"""

from __future__ import annotations

import hashlib
import uuid
from dataclasses import dataclass, replace
from datetime import date, datetime, timedelta, timezone
from typing import Any

from pydantic import ValidationError

from contracts.surveys import SurveyChannel, SurveyResponseSubmitted
from services.surveys.domain.instrument import Instrument
from services.surveys.domain.validation import Valid, Violation, validate_answers

__all__ = [
    "CLOCK_SKEW",
    "RESPONSE_NAMESPACE",
    "Refusal",
    "ResponseState",
    "SubmitResponse",
    "decide",
    "evolve",
    "local_day",
    "response_id_for_dossier",
    "response_id_for_submission",
]

#: namespace of response ids: uuid5 of a stable key, so a re-sent submission maps to the same response
RESPONSE_NAMESPACE = uuid.UUID("c3b1d0a4-7e52-4f6b-9a18-5d2e0f7c4b93")
#: how far in the future a submission time may lie (device clocks drift); further is refused
CLOCK_SKEW = timedelta(minutes=10)
_VN = timezone(timedelta(hours=7))


def local_day(at: datetime) -> date:
    """The calendar day of an instant in Việt Nam (instruments' effective periods are in local dates)."""
    return at.astimezone(_VN).date()


def response_id_for_dossier(dossier_id: str) -> str:
    """The one response id a dossier can have (opaque: the dossier code is not readable from it)."""
    return _uuid5_text(f"dossier|{dossier_id}")


def response_id_for_submission(source: str, submission_id: str) -> str:
    """The response id of an unlinked submission, stable for the sender's id of it."""
    return _uuid5_text(f"submission|{source}|{submission_id}")


_NAMESPACE_BYTES = RESPONSE_NAMESPACE.bytes


def _uuid5_text(name: str) -> str:
    """``str(uuid.uuid5(RESPONSE_NAMESPACE, name))`` without building the UUID object (a third of the time,
    once per submission; tests compare the two)."""
    digest = bytearray(hashlib.sha1(_NAMESPACE_BYTES + name.encode(), usedforsecurity=False).digest()[:16])
    digest[6] = (digest[6] & 0x0F) | 0x50  # version 5
    digest[8] = (digest[8] & 0x3F) | 0x80  # RFC 4122 variant
    text = digest.hex()
    return f"{text[:8]}-{text[8:12]}-{text[12:16]}-{text[16:20]}-{text[20:]}"


@dataclass(frozen=True)
class SubmitResponse:
    """A respondent hands in a questionnaire (the command every way in builds).

    Fields other than the ids are what the sender gave, unchecked (``Any``): :func:`decide` checks them
    against ``instrument`` and names every problem.
    """

    response_id: str
    instrument: Instrument
    channel: SurveyChannel
    submitted_at: datetime
    #: the province of the (already resolved) unit: a province's own instrument is refused elsewhere
    province_code: str
    answers: Any
    respondent: Any
    survey_id: str | None = None
    ma_tthc: Any = None
    policy_group: Any = None
    weight: Any = None
    linked_dossier_id: str | None = None


@dataclass(frozen=True)
class ResponseState:
    """What a response stream holds: nothing yet, or the submitted response."""

    submitted: SurveyResponseSubmitted | None = None


@dataclass(frozen=True)
class Refusal:
    """Why a submission is refused; ``conflict`` when it collides with a stored response (HTTP 409)."""

    violations: tuple[Violation, ...]
    conflict: bool = False

    @property
    def reason(self) -> str:
        """One line naming every violation (dead letters, import reports)."""
        return "; ".join(str(v) for v in self.violations)


def evolve(state: ResponseState, event: SurveyResponseSubmitted) -> ResponseState:
    """The state after ``event``."""
    return replace(state, submitted=event)


def decide(state: ResponseState, command: SubmitResponse, now: datetime) -> tuple[SurveyResponseSubmitted] | Refusal:
    """The event a submission produces, or the refusal with every reason."""
    if state.submitted is not None:
        return _already(state.submitted, command)
    instrument = command.instrument
    problems: list[Violation] = []
    if command.submitted_at > now + CLOCK_SKEW:
        problems.append(Violation("submitted_at", command.submitted_at.isoformat(), "in the future"))
    day = local_day(command.submitted_at)
    if not instrument.in_force(day):
        until = instrument.effective_to.isoformat() if instrument.effective_to else "-"
        rule = f"{instrument.key} is in force {instrument.effective_from.isoformat()} .. {until}"
        problems.append(Violation("submitted_at", day.isoformat(), rule))
    if instrument.provinces and command.province_code not in instrument.provinces:
        rule = f"{instrument.key} is an instrument of province(s) {list(instrument.provinces)}"
        problems.append(Violation("unitcode", command.province_code, rule))
    checked = validate_answers(
        instrument, command.answers, command.respondent, command.policy_group, command.ma_tthc, command.weight
    )
    if not isinstance(checked, Valid):
        problems.extend(checked)
    if problems or not isinstance(checked, Valid):
        return Refusal(tuple(problems))
    try:
        event = SurveyResponseSubmitted(
            response_id=command.response_id,
            survey_id=command.survey_id or f"{instrument.id}:{day.year}",
            instrument_id=instrument.id,
            instrument_version=instrument.version,
            ma_tthc=checked.ma_tthc,
            policy_group=checked.policy_group,
            channel=command.channel,
            respondent=checked.respondent,
            answers=checked.answers,
            weight=checked.weight,
            linked_dossier_id=command.linked_dossier_id,
            submitted_at=command.submitted_at,
        )
    except ValidationError as exc:  # a limit of the contract the checks above do not know (e.g. an id's length)
        return Refusal(
            tuple(
                Violation(".".join(str(p) for p in e["loc"]) or "response", e.get("input"), e["msg"])
                for e in exc.errors()[:10]
            )
        )
    return (event,)


def _already(stored: SurveyResponseSubmitted, command: SubmitResponse) -> Refusal:
    if stored.linked_dossier_id is not None:
        rule = (
            f"dossier {stored.linked_dossier_id} already has a response (submitted "
            f"{stored.submitted_at.isoformat()} by {stored.channel.value}); a second one is refused, not overwritten"
        )
        return Refusal((Violation("linked_dossier_id", command.linked_dossier_id, rule),), conflict=True)
    rule = f"response {stored.response_id} was already submitted; it is never overwritten"
    return Refusal((Violation("response_id", command.response_id, rule),), conflict=True)
