"""The Kafka way in: the inbound topic's records, judged by the intake, in the runner's transaction."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import datetime

from contracts.topics import DOSSIERS_INBOUND
from eventkit.pg import Connection
from eventkit.projection import ConsumedEvent, Projection, Rejection
from services.dossiers.ids import stream_of
from services.dossiers.inbound import InboundFact
from services.dossiers.intake import Intake

__all__ = ["INBOX", "DossierInbox"]

#: the consumer of the inbound topic (its consumer group and dead-letter topic are named after it)
INBOX = "dossiers.inbound"


class DossierInbox(Projection):
    """Inbound topic -> intake -> event store; refused facts become dead letters with the reason."""

    name = INBOX
    topics = (DOSSIERS_INBOUND,)
    # the intake dedupes on canonical ids (source + id), which also catches the same fact sent over HTTP
    dedupe_event_ids = False

    def __init__(self, intake: Intake, clock: Callable[[], datetime]) -> None:
        self._intake = intake
        self._clock = clock

    async def apply(self, conn: Connection, events: Sequence[ConsumedEvent]) -> list[Rejection]:
        """Judge the batch in one intake call; each record is its own group."""
        rejected: list[Rejection] = []
        judged: list[ConsumedEvent] = []
        groups: list[list[InboundFact]] = []
        for event in events:
            attributes = event.attributes
            try:
                stream_id = stream_of(event.data)
            except TypeError as exc:
                rejected.append(Rejection(event, str(exc)))
                continue
            if attributes.subject != stream_id:
                reason = f"ce_subject {attributes.subject!r} must be the stream id {stream_id!r} (key rule)"
                rejected.append(Rejection(event, reason))
                continue
            judged.append(event)
            groups.append(
                [
                    InboundFact(
                        source=attributes.source,
                        event_id=attributes.id,
                        time=attributes.time,
                        unit_code=attributes.unitcode,
                        payload=event.data,
                        correlation_id=attributes.correlationid,
                    )
                ]
            )
        outcomes = await self._intake.process(conn, groups, self._clock()) if groups else []
        for event, outcome in zip(judged, outcomes, strict=True):
            if outcome.status == "rejected":
                rejected.append(Rejection(event, outcome.reason or "refused"))
        return rejected
