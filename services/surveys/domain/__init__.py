"""The surveys domain: questionnaires as versioned data, answers validated against them, one response per
dossier. Pure: no I/O, the clock passed in."""

from services.surveys.domain.instrument import (
    Confidence,
    Element,
    Instrument,
    Item,
    ItemKind,
    ItemRole,
    ProfileSpec,
    ProxyFor,
    Scale,
)
from services.surveys.domain.response import (
    CLOCK_SKEW,
    Refusal,
    ResponseState,
    SubmitResponse,
    decide,
    evolve,
    local_day,
    response_id_for_dossier,
    response_id_for_submission,
)
from services.surveys.domain.validation import MAX_ANSWERS, Valid, Violation, validate_answers

__all__ = [
    "CLOCK_SKEW",
    "MAX_ANSWERS",
    "Confidence",
    "Element",
    "Instrument",
    "Item",
    "ItemKind",
    "ItemRole",
    "ProfileSpec",
    "ProxyFor",
    "Refusal",
    "ResponseState",
    "Scale",
    "SubmitResponse",
    "Valid",
    "Violation",
    "decide",
    "evolve",
    "local_day",
    "response_id_for_dossier",
    "response_id_for_submission",
    "validate_answers",
]
