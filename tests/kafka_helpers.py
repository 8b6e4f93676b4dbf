"""Small helpers for tests against the real broker."""

from __future__ import annotations

import asyncio
import time
import uuid

from aiokafka import AIOKafkaConsumer
from aiokafka.structs import ConsumerRecord

from infra.topics import TopicSpec, provision_topics


def new_topic_name(prefix: str = "test") -> str:
    return f"vn.cchc.{prefix}.{uuid.uuid4().hex[:10]}"


async def create_topic(bootstrap: str, name: str, partitions: int = 3) -> str:
    await provision_topics(bootstrap, [TopicSpec(name=name, partitions=partitions, retention_ms=None)])
    return name


async def read_topic(
    bootstrap: str, topic: str, *, expect: int | None = None, wait_s: float = 30.0
) -> list[ConsumerRecord[bytes, bytes]]:
    """All records of ``topic`` (every partition, from the beginning), waiting for ``expect`` of them."""
    # no group: aiokafka assigns every partition of the topic, starting at the earliest offset
    consumer = AIOKafkaConsumer(
        topic,
        bootstrap_servers=bootstrap,
        enable_auto_commit=False,
        group_id=None,
        auto_offset_reset="earliest",
        isolation_level="read_committed",  # as every chiso consumer reads: aborted transactions stay invisible
    )
    await consumer.start()
    try:
        records: list[ConsumerRecord[bytes, bytes]] = []
        deadline = time.monotonic() + wait_s
        while time.monotonic() < deadline:
            batch = await consumer.getmany(timeout_ms=300)
            for recs in batch.values():
                records.extend(recs)
            if expect is not None and len(records) >= expect:
                break
            if expect is None and not batch:
                tps = list(consumer.assignment())
                ends = await consumer.end_offsets(tps)
                positions = {tp: await consumer.position(tp) for tp in tps}
                if all(positions[tp] >= ends[tp] for tp in tps):
                    break
            await asyncio.sleep(0)
        return records
    finally:
        await consumer.stop()
