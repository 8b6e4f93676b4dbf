"""What an inbound one-stop-shop fact becomes: pure functions, no I/O, the clock passed in.

Foundation scope: a fact on the inbound topic is checked for the things every later rule relies on (it
is a fact partners may send, it names its stream consistently) and becomes the canonical event of the
dossier's stream, exactly once. The lifecycle rules (impossible transitions, working-time due dates,
timeliness) build on this in the dossiers issue.
"""

from __future__ import annotations

import contextlib
import hashlib
import re
import uuid
from dataclasses import dataclass

from contracts.base import EventPayload
from contracts.dossiers import (
    ApologyAssessed,
    DossierBecameOverdue,
    DossierResolved,
    FeedbackReceived,
    FeedbackStateChanged,
)
from contracts.envelope import Attributes
from services.dossiers.domain.dispatch import ByClass

__all__ = ["CANONICAL_NAMESPACE", "Accepted", "canonical_event_id", "decide_inbound_fact", "stream_of", "uuid5"]

#: namespace of canonical event ids: uuid5(namespace, "<source>|<id>") is stable, so a fact re-sent by a
#: partner maps to the same canonical event and is stored once
CANONICAL_NAMESPACE = uuid.UUID("8a3f1c2e-5b7d-4e0a-9c61-2f4d8b9e7a10")

# derived facts are this service's verdicts (timeliness, overdue, apology compliance): never accepted
# from outside, or a partner could write its own scores
_DERIVED = frozenset({DossierResolved.event_type, DossierBecameOverdue.event_type, ApologyAssessed.event_type})


@dataclass(frozen=True)
class Accepted:
    """The canonical event to store for an inbound fact."""

    stream_id: str
    event_id: uuid.UUID


# the version and variant bits uuid.uuid5 sets (RFC 4122 §4.3)
_CLEAR = ~((0xF000 << 64) | (0xC000 << 48))
_SET = (5 << 76) | (0x8000 << 48)
# looked up once: ``UUID.bytes`` is computed on every access, and an enum member lookup costs ~0.5 µs
_CANONICAL_PREFIX = CANONICAL_NAMESPACE.bytes
_UNKNOWN = uuid.SafeUUID.unknown
_UUID = uuid.UUID
_new = object.__new__
_set = object.__setattr__
# a UUID already in its canonical spelling (what str(UUID) gives): no need to parse it to respell it
_CANONICAL_UUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")


def uuid5(namespace: uuid.UUID, name: str) -> uuid.UUID:
    """``uuid.uuid5(namespace, name)``, equal in every bit, at a third of the cost.

    The intakes make one or more of these per fact; the stdlib's ``UUID(bytes=..., version=5)`` spends most
    of its time in argument checks. This builds the value the way ``UUID.__init__`` ends (``int`` and
    ``is_safe`` are its only slots); tests/unit/test_dossier_fast_paths.py compares it with the stdlib.
    """
    prefix = _CANONICAL_PREFIX if namespace is CANONICAL_NAMESPACE else namespace.bytes
    digest = hashlib.sha1(prefix + name.encode(), usedforsecurity=False).digest()
    value = _new(_UUID)
    _set(value, "int", (int.from_bytes(digest[:16]) & _CLEAR) | _SET)
    _set(value, "is_safe", _UNKNOWN)
    return value


def canonical_event_id(source: str, event_id: uuid.UUID | str) -> uuid.UUID:
    """The id of the canonical event for the partner event (``source``, ``event_id``).

    Partner ids are UUIDs on Kafka (any spelling of one UUID gives the same id); the other ways in use text
    ids (import keys ``MaHoSo:kind``, HTTP idempotency keys), taken as they are.
    """
    if isinstance(event_id, str) and len(event_id) == 36 and _CANONICAL_UUID.fullmatch(event_id) is None:
        with contextlib.suppress(ValueError):
            event_id = uuid.UUID(event_id)
    return uuid5(CANONICAL_NAMESPACE, f"{source}|{event_id}")


# isinstance remembered per class: two failing ABC checks per fact cost more than the rest of stream_of
_IS_FEEDBACK = ByClass([((FeedbackReceived, FeedbackStateChanged), True)], False)


def stream_of(data: EventPayload) -> str:
    """The stream a dossier-service fact belongs to: the dossier (mã hồ sơ) or the feedback (PAKN)."""
    if _IS_FEEDBACK.of(data):
        return f"feedback:{data.feedback_id}"  # type: ignore[attr-defined]
    dossier_id = getattr(data, "dossier_id", None)
    if not isinstance(dossier_id, str):
        msg = f"{data.event_type} has no dossier or feedback id"
        raise TypeError(msg)
    return f"dossier:{dossier_id}"


def decide_inbound_fact(attributes: Attributes, data: EventPayload) -> Accepted | str:
    """Accept a partner's fact as a canonical event, or say why it is refused (it becomes a dead letter)."""
    if data.producer != "dossiers":
        return f"{attributes.type} is not a dossier fact (owned by the {data.producer} service)"
    if attributes.type in _DERIVED:
        return f"{attributes.type} is derived by chiso and cannot be sent by a partner"
    stream_id = stream_of(data)
    if attributes.subject != stream_id:
        return f"ce_subject {attributes.subject!r} must be the stream id {stream_id!r} (key rule)"
    return Accepted(stream_id=stream_id, event_id=canonical_event_id(attributes.source, attributes.id))
