"""Dead letters: records a consumer could not validate or process, parked with the reason, and replayable.

A dead letter is the original record (same key, same value bytes, same headers) on the consumer's
dead-letter topic, plus ``dlq_*`` headers: the reason, the origin (topic, partition, offset), the consumer
and the time. Replaying publishes the original key/value/headers back to the origin topic; consumers that
dedupe on the event id make a replay of an already-applied event a no-op.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer

from contracts.topics import dead_letter_topic

__all__ = ["DeadLetter", "DeadLetterPublisher", "read_dead_letters", "replay_dead_letters"]

_H_REASON = "dlq_reason"
_H_TOPIC = "dlq_origin_topic"
_H_PARTITION = "dlq_origin_partition"
_H_OFFSET = "dlq_origin_offset"
_H_CONSUMER = "dlq_consumer"
_H_AT = "dlq_failed_at"
_MAX_REASON = 2000


@dataclass(frozen=True)
class DeadLetter:
    """One parked record, as read back from a dead-letter topic."""

    dlq_partition: int
    dlq_offset: int
    consumer: str
    reason: str
    origin_topic: str
    origin_partition: int
    origin_offset: int
    failed_at: str
    key: bytes | None
    value: bytes | None
    headers: tuple[tuple[str, bytes], ...]

    @property
    def event_type(self) -> str | None:
        """The ``ce_type`` of the original record, if it had one."""
        return next((v.decode("utf-8", "replace") for k, v in self.headers if k == "ce_type"), None)


class DeadLetterPublisher:
    """Publishes failed records of one consumer to its dead-letter topic and waits for the broker's ack."""

    def __init__(self, producer: AIOKafkaProducer, consumer: str) -> None:
        self._producer = producer
        self.consumer = consumer
        self.topic = dead_letter_topic(consumer)

    async def publish(
        self,
        *,
        reason: str,
        topic: str,
        partition: int,
        offset: int,
        key: bytes | None,
        value: bytes | None,
        headers: Sequence[tuple[str, bytes]],
    ) -> None:
        """Park one record; returns once the dead letter is durable (acks=all)."""
        extra = [
            (_H_REASON, reason[:_MAX_REASON].encode()),
            (_H_TOPIC, topic.encode()),
            (_H_PARTITION, str(partition).encode()),
            (_H_OFFSET, str(offset).encode()),
            (_H_CONSUMER, self.consumer.encode()),
            (_H_AT, datetime.now(UTC).isoformat().encode()),
        ]
        original = [(k, v) for k, v in headers if not k.startswith("dlq_")]
        await self._producer.send_and_wait(self.topic, value=value, key=key, headers=[*original, *extra])


def _parse(record: object) -> DeadLetter:
    headers = tuple(record.headers or ())  # type: ignore[attr-defined]
    found = {k: v.decode("utf-8", "replace") for k, v in headers if k.startswith("dlq_")}
    return DeadLetter(
        dlq_partition=record.partition,  # type: ignore[attr-defined]
        dlq_offset=record.offset,  # type: ignore[attr-defined]
        consumer=found.get(_H_CONSUMER, ""),
        reason=found.get(_H_REASON, ""),
        origin_topic=found.get(_H_TOPIC, ""),
        origin_partition=int(found.get(_H_PARTITION, "-1")),
        origin_offset=int(found.get(_H_OFFSET, "-1")),
        failed_at=found.get(_H_AT, ""),
        key=record.key,  # type: ignore[attr-defined]
        value=record.value,  # type: ignore[attr-defined]
        headers=tuple((k, v) for k, v in headers if not k.startswith("dlq_")),
    )


async def read_dead_letters(bootstrap_servers: str, consumer: str, *, limit: int = 1000) -> list[DeadLetter]:
    """Every dead letter of ``consumer`` (up to ``limit``), read without joining a group or committing."""
    topic = dead_letter_topic(consumer)
    # no group (nothing committed, nobody else affected); aiokafka then assigns every partition
    reader = AIOKafkaConsumer(
        topic,
        bootstrap_servers=bootstrap_servers,
        enable_auto_commit=False,
        group_id=None,
        auto_offset_reset="earliest",
    )
    await reader.start()
    try:
        for _ in range(50):  # the assignment arrives with the first metadata refresh
            if reader.assignment():
                break
            await asyncio.sleep(0.1)
        tps = sorted(reader.assignment(), key=lambda tp: tp.partition)
        if not tps:
            return []
        ends = await reader.end_offsets(tps)
        letters: list[DeadLetter] = []
        remaining = {tp for tp in tps if ends[tp] > 0}
        while remaining and len(letters) < limit:
            batch = await reader.getmany(*remaining, timeout_ms=1000)
            for tp, records in batch.items():
                letters.extend(_parse(r) for r in records)
                if records and records[-1].offset + 1 >= ends[tp]:
                    remaining.discard(tp)
            for tp in list(remaining):
                if await reader.position(tp) >= ends[tp]:
                    remaining.discard(tp)
        return sorted(letters, key=lambda d: (d.dlq_partition, d.dlq_offset))[:limit]
    finally:
        await reader.stop()


async def replay_dead_letters(producer: AIOKafkaProducer, letters: Sequence[DeadLetter]) -> int:
    """Publish the original records back to their origin topics; returns how many were sent."""
    deliveries = [
        await producer.send(d.origin_topic, value=d.value, key=d.key, headers=list(d.headers)) for d in letters
    ]
    for delivery in deliveries:
        await delivery
    return len(deliveries)
