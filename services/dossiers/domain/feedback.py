"""PAKN (phản ánh, kiến nghị) streams: a feedback is received once, then changes state."""

from __future__ import annotations

from contracts.base import EventPayload
from contracts.dossiers import FeedbackReceived, FeedbackStateChanged

__all__ = ["decide_feedback"]


def decide_feedback(version: int, fact: EventPayload) -> list[EventPayload] | str:
    """The events of a PAKN fact on a stream at ``version`` (0 = unknown PAKN), or why it is refused."""
    if isinstance(fact, FeedbackReceived):
        return [fact] if version == 0 else f"{fact.event_type} refused: PAKN {fact.feedback_id!r} was already received"
    if isinstance(fact, FeedbackStateChanged):
        if version == 0:
            return f"{fact.event_type} refused: PAKN {fact.feedback_id!r} was never received"
        return [fact]
    return f"{fact.event_type} is not a PAKN fact"
