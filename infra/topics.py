"""Topic provisioning as code: the mechanism, not the project's topic list (that is ``contracts.topics``).

The local broker runs with ``auto.create.topics.enable=false``, so every topic a service touches must be
created here first, with its partition count and retention stated explicitly. Provisioning is idempotent:
missing topics are created, existing ones keep their configuration (changing retention on a live topic is
an operator's decision, not a side effect of starting a service), and only a partition count below the spec
is raised, because Kafka can add partitions but never remove them.
"""

from __future__ import annotations

import asyncio
import logging
import re
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from aiokafka.admin import AIOKafkaAdminClient, NewPartitions, NewTopic
from aiokafka.errors import KafkaError, TopicAlreadyExistsError, for_code

from contracts.topics import TopicDef

__all__ = ["TopicSpec", "provision_topics", "topic_spec"]

log = logging.getLogger(__name__)

# Kafka's own rule (org.apache.kafka.common.internals.Topic): legal characters and at most 249 of them.
_TOPIC_NAME_RE = re.compile(r"^[A-Za-z0-9._-]{1,249}$")
_CLEANUP_POLICIES = frozenset({"delete", "compact", "compact,delete", "delete,compact"})
# Set through the dedicated fields so a spec cannot say two different things about them.
_RESERVED_KEYS = frozenset({"retention.ms", "cleanup.policy"})


@dataclass(frozen=True)
class TopicSpec:
    """What one topic must look like.

    ``retention_ms=None`` means keep forever (``retention.ms=-1``): event topics are the history read models
    are rebuilt from. ``extra_config`` takes any other topic-level config (e.g. ``max.message.bytes``).
    """

    name: str
    partitions: int = 1
    retention_ms: int | None = None
    cleanup_policy: str = "delete"
    extra_config: dict[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if not _TOPIC_NAME_RE.match(self.name) or self.name in {".", ".."}:
            raise ValueError(f"invalid Kafka topic name {self.name!r}")
        if self.partitions < 1:
            raise ValueError(f"{self.name}: partitions must be >= 1, got {self.partitions}")
        if self.retention_ms is not None and self.retention_ms <= 0:
            raise ValueError(f"{self.name}: retention_ms must be positive or None (keep forever)")
        if self.cleanup_policy not in _CLEANUP_POLICIES:
            raise ValueError(f"{self.name}: unknown cleanup_policy {self.cleanup_policy!r}")
        clash = _RESERVED_KEYS & self.extra_config.keys()
        if clash:
            raise ValueError(f"{self.name}: set {sorted(clash)} through retention_ms/cleanup_policy")

    def topic_config(self) -> dict[str, str]:
        """The topic-level configs sent with CreateTopics."""
        return {
            "cleanup.policy": self.cleanup_policy,
            "retention.ms": str(self.retention_ms if self.retention_ms is not None else -1),
            **self.extra_config,
        }


def _raise_for_errors(errors: Sequence[Any], what: str, *, ignore: frozenset[int] = frozenset()) -> set[str]:
    """Raise the first non-ignored error of a CreateTopics response; return the names that succeeded."""
    ok: set[str] = set()
    for entry in errors:
        # (topic, error_code) in v0; (topic, error_code, error_message) from v1 on
        name, code = entry[0], entry[1]
        message = entry[2] if len(entry) > 2 else None
        if code == 0:
            ok.add(name)
        elif code not in ignore:
            raise for_code(code)(f"{what} {name}: {message}")
    return ok


async def _partition_counts(admin: AIOKafkaAdminClient, names: Sequence[str]) -> dict[str, int]:
    """Partitions per topic that the broker knows, counting only those with an elected leader."""
    counts: dict[str, int] = {}
    for topic in await admin.describe_topics(list(names)):
        if topic["error_code"] == 0:
            counts[topic["topic"]] = sum(1 for p in topic["partitions"] if p["leader"] >= 0)
    return counts


async def _wait_ready(admin: AIOKafkaAdminClient, expected: dict[str, int], timeout_s: float) -> None:
    """Block until every topic has its partitions with leaders in the metadata.

    CreateTopics returns once the controller has committed the topic; the broker's metadata cache catches up
    a moment later. Waiting here means callers can produce/consume right away without UNKNOWN_TOPIC retries.
    """
    deadline = time.monotonic() + timeout_s
    while True:
        counts = await _partition_counts(admin, list(expected))
        missing = {name: n for name, n in expected.items() if counts.get(name, 0) < n}
        if not missing:
            return
        if time.monotonic() >= deadline:
            raise KafkaError(f"topics not ready after {timeout_s}s: {missing} (have {counts})")
        await asyncio.sleep(0.1)


def topic_spec(topic: TopicDef) -> TopicSpec:
    """How a topic of :data:`contracts.topics.TOPICS` is provisioned (event topics keep their history)."""
    return TopicSpec(
        name=topic.name,
        partitions=topic.partitions,
        retention_ms=None if topic.keep_forever else 30 * 86_400_000,
        cleanup_policy="compact" if topic.compacted else "delete",
    )


async def provision_topics(
    bootstrap_servers: str,
    specs: Sequence[TopicSpec],
    *,
    replication_factor: int = 1,
    request_timeout_ms: int = 30_000,
    client_id: str = "chiso-provisioner",
) -> list[str]:
    """Create the missing topics of ``specs`` and raise partition counts that are too low.

    Returns the names created by this call, in ``specs`` order (empty when everything already existed).
    Existing topics' configs are left alone. Safe to run concurrently from several services: a topic created
    by someone else in between counts as existing.
    """
    names = [spec.name for spec in specs]
    if len(set(names)) != len(names):
        raise ValueError(f"duplicate topic names in specs: {names}")
    if not specs:
        return []

    admin = AIOKafkaAdminClient(
        bootstrap_servers=bootstrap_servers, request_timeout_ms=request_timeout_ms, client_id=client_id
    )
    await admin.start()
    try:
        existing = set(await admin.list_topics())
        to_create = [spec for spec in specs if spec.name not in existing]
        created: set[str] = set()
        if to_create:
            response = await admin.create_topics(
                [
                    NewTopic(spec.name, spec.partitions, replication_factor, topic_configs=spec.topic_config())
                    for spec in to_create
                ],
                timeout_ms=request_timeout_ms,
            )
            created = _raise_for_errors(
                response.topic_errors, "could not create topic", ignore=frozenset({TopicAlreadyExistsError.errno})
            )

        # Topics that already existed (or were created concurrently by another process): grow, never shrink.
        others = [spec for spec in specs if spec.name not in created]
        if others:
            await _wait_ready(admin, {spec.name: 1 for spec in others}, request_timeout_ms / 1000)
            counts = await _partition_counts(admin, [spec.name for spec in others])
            grow = {s.name: NewPartitions(s.partitions) for s in others if counts[s.name] < s.partitions}
            for spec in others:
                if counts[spec.name] > spec.partitions:
                    log.warning(
                        "topic %s has %d partitions, more than the %d specified; Kafka cannot shrink it",
                        spec.name,
                        counts[spec.name],
                        spec.partitions,
                    )
            if grow:
                log.info("raising partitions: %s", {n: p.total_count for n, p in grow.items()})
                await admin.create_partitions(grow, timeout_ms=request_timeout_ms)

        await _wait_ready(admin, {spec.name: spec.partitions for spec in specs}, request_timeout_ms / 1000)
    finally:
        await admin.close()
    return [name for name in names if name in created]
