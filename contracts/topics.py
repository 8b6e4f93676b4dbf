"""Kafka topic names and their retention rules: one place, shared by producers, consumers and infra.

Key rule (one stream = one key = one partition): every record's key is the CloudEvents ``partitionkey``,
which is the event's stream id (``subject``). All events of one dossier, plan or survey response therefore
land on one partition and keep their order; consumers may rely on that order per stream and on nothing
else.

Event topics keep their whole history (``keep_forever``) so read models can always be rebuilt from Kafka.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = [
    "DOSSIERS_EVENTS",
    "DOSSIERS_INBOUND",
    "PLANS_EVENTS",
    "RELAY_PROGRESS",
    "SCORING_INDICATORS",
    "SURVEYS_EVENTS",
    "SURVEYS_INBOUND",
    "TOPICS",
    "TopicDef",
    "dead_letter_topic",
]

#: canonical dossier events, published by the dossiers service (relayed from its event store)
DOSSIERS_EVENTS = "vn.cchc.dossiers.events"
#: where the one-stop-shop software of each province publishes its dossier facts (inbound contract)
DOSSIERS_INBOUND = "vn.cchc.dossiers.inbound"
#: canonical survey events (SIPAS and citizen questionnaires)
SURVEYS_EVENTS = "vn.cchc.surveys.events"
#: where partner survey systems publish responses
SURVEYS_INBOUND = "vn.cchc.surveys.inbound"
#: plans, targets, tasks, reports, inspections, criterion assessments
PLANS_EVENTS = "vn.cchc.plans.events"
#: ``indicator updated`` notifications for district and commune systems, keyed by unit code
SCORING_INDICATORS = "vn.cchc.scoring.indicators"
#: plumbing: how far each relay has published, committed in the same Kafka transaction as the events
RELAY_PROGRESS = "vn.cchc.relay.progress"


@dataclass(frozen=True)
class TopicDef:
    """A topic of the system and the rules infra must provision it with."""

    name: str
    partitions: int
    keep_forever: bool
    description: str
    #: keep only the latest record per key (progress markers), instead of every record
    compacted: bool = False


def dead_letter_topic(consumer: str) -> str:
    """The dead-letter topic of one consuming component (e.g. ``dossiers.inbound``)."""
    return f"vn.cchc.deadletters.{consumer}"


# 12 partitions: enough parallelism for a province's services on a few cores and still cheap on one broker;
# a national deployment raises it (partitions can grow; keys then move, which is why consumers never rely
# on cross-partition order).
_DEFAULT_PARTITIONS = 12

TOPICS: tuple[TopicDef, ...] = (
    TopicDef(DOSSIERS_INBOUND, _DEFAULT_PARTITIONS, True, "One-stop-shop dossier facts as sent by provinces"),
    TopicDef(DOSSIERS_EVENTS, _DEFAULT_PARTITIONS, True, "Canonical dossier events"),
    TopicDef(SURVEYS_INBOUND, _DEFAULT_PARTITIONS, True, "Survey responses from partner systems"),
    TopicDef(SURVEYS_EVENTS, _DEFAULT_PARTITIONS, True, "Canonical survey events"),
    TopicDef(PLANS_EVENTS, _DEFAULT_PARTITIONS, True, "Plans, targets, tasks, reports and assessments"),
    TopicDef(SCORING_INDICATORS, _DEFAULT_PARTITIONS, False, "Indicator updates (rebuildable, 30 days)"),
    TopicDef(RELAY_PROGRESS, 1, True, "Relay checkpoints, one key per relay", compacted=True),
)
