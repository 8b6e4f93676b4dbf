"""The Kafka way in: partner survey systems publish responses on ``vn.cchc.surveys.inbound``.

A record is a ``vn.cchc.survey.response_submitted`` payload in CloudEvents binary mode (the contract of
:mod:`contracts.surveys`; ``ce_unitcode`` names the commune). It is judged like any other submission:
the instrument version must exist and be in force, answers valid for it, the unit known, at most one
response per dossier. The partner's ``response_id`` is its own: the stored response gets chiso's id
(derived from the dossier, or from ``ce_source`` + the partner's id), so partners cannot collide. A record
re-sent with the same ``ce_source`` + ``ce_id`` is stored once; a refused one becomes a dead letter with
the reasons and the original bytes.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import datetime

from contracts.surveys import SurveyResponseSubmitted
from contracts.topics import SURVEYS_INBOUND
from eventkit.pg import Connection
from eventkit.projection import ConsumedEvent, Projection, Rejection
from services.surveys.intake import Intake, Submission

__all__ = ["INBOX", "SurveyInbox"]

#: the consumer of the inbound topic (its consumer group and dead-letter topic are named after it)
INBOX = "surveys.inbound"


class SurveyInbox(Projection):
    """Inbound topic -> intake -> event store; refused records become dead letters with the reasons."""

    name = INBOX
    topics = (SURVEYS_INBOUND,)
    # the intake dedupes on (source, id), which also catches the same response sent over HTTP with that key
    dedupe_event_ids = False

    def __init__(self, intake: Intake, clock: Callable[[], datetime]) -> None:
        self._intake = intake
        self._clock = clock

    async def apply(self, conn: Connection, events: Sequence[ConsumedEvent]) -> list[Rejection]:
        """Judge the whole batch in one intake call."""
        rejected: list[Rejection] = []
        judged: list[ConsumedEvent] = []
        submissions: list[Submission] = []
        for event in events:
            data = event.data
            if not isinstance(data, SurveyResponseSubmitted):
                rejected.append(Rejection(event, f"{event.attributes.type} is not a survey response"))
                continue
            attributes = event.attributes
            judged.append(event)
            submissions.append(
                Submission(
                    source=attributes.source,
                    submission_id=str(attributes.id),
                    unit_code=attributes.unitcode,
                    instrument_id=data.instrument_id,
                    instrument_version=data.instrument_version,
                    channel=data.channel.value,
                    answers=[a.model_dump(mode="json") for a in data.answers],
                    respondent=data.respondent.model_dump(mode="json", exclude_none=True),
                    submitted_at=data.submitted_at,
                    survey_id=data.survey_id,
                    ma_tthc=data.ma_tthc,
                    policy_group=data.policy_group,
                    weight=data.weight,
                    linked_dossier_id=data.linked_dossier_id,
                    correlation_id=attributes.correlationid or f"{attributes.source}|{data.response_id}",
                )
            )
        outcomes = await self._intake.process(conn, submissions, self._clock()) if submissions else []
        for event, outcome in zip(judged, outcomes, strict=True):
            if outcome.status == "rejected":
                rejected.append(Rejection(event, outcome.reason or "refused"))
        return rejected
