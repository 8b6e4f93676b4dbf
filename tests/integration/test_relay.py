"""The relay on the real broker and database: complete, in order, gap-safe, at-least-once across crashes."""

import asyncio
from collections import defaultdict
from datetime import UTC, datetime

import asyncpg
import pytest

from contracts.wire import decode, decode_attributes, encode_headers, read_headers
from eventkit.postgres import PostgresEventStore
from eventkit.relay import Relay, record_headers
from eventkit.settings import KafkaSettings
from eventkit.store import NO_STREAM
from eventkit.testing import sample_event, sample_registry
from tests.kafka_helpers import create_topic, new_topic_name, read_topic

pytestmark = pytest.mark.integration


async def _relay(pool: asyncpg.Pool, bootstrap: str, topic: str, name: str = "test"):
    progress = await create_topic(bootstrap, new_topic_name("progress"), partitions=1)
    relay = _make(Relay, pool, bootstrap, topic, progress, name)
    await relay.start()
    return relay, relay._store


def _make(cls, pool, bootstrap, topic, progress, name="test"):
    return cls(
        name=name,
        pool=pool,
        store=PostgresEventStore(pool, sample_registry()),
        kafka=KafkaSettings(bootstrap_servers=bootstrap),
        topic_of=lambda _t: topic,
        progress_topic=progress,
    )


async def test_relays_every_event_with_its_key_and_cloudevents_headers(pg_pool, kafka_bootstrap) -> None:
    topic = await create_topic(kafka_bootstrap, new_topic_name())
    relay, store = await _relay(pg_pool, kafka_bootstrap, topic)
    try:
        appended = []
        for s in range(5):
            events = [sample_event(f"dossier-{s}", f"{s}:{i}", amount=i) for i in range(3)]
            await store.append(f"dossier-{s}", NO_STREAM, events)
            appended.extend(events)
        assert await relay.publish_batch() == 15
        assert await relay.publish_batch() == 0
        records = await read_topic(kafka_bootstrap, topic, expect=15)
    finally:
        await relay.stop()
    assert len(records) == 15
    decoded = {}
    for record in records:
        envelope = decode(record.key, record.value, record.headers, sample_registry())
        assert record.key == envelope.subject.encode()
        decoded[envelope.id] = envelope
    for original in appended:
        got = decoded[original.id]
        assert got.data == original.data
        assert got.unitcode == original.unitcode
        assert got.time == original.time
    by_stream = defaultdict(set)
    for record in records:
        by_stream[record.key].add(record.partition)
    assert all(len(partitions) == 1 for partitions in by_stream.values())  # one stream = one partition


async def test_relay_headers_decode_to_what_the_envelope_codec_writes(pg_pool) -> None:
    """The relay builds headers from rows by hand; they must mean exactly what encode_headers writes."""
    store = PostgresEventStore(pg_pool, sample_registry())
    event = sample_event("s-h", "x", at=datetime(2026, 2, 13, 3, 0, 0, 123456, tzinfo=UTC))
    event = event.model_copy(update={"correlationid": "req-1", "causationid": "evt-0"})
    await store.append("s-h", NO_STREAM, [event])
    (row,) = await pg_pool.fetch("SELECT * FROM es_events WHERE stream_id = 's-h'")
    (stored,) = await store.read_stream("s-h")
    by_relay = read_headers(record_headers(row))
    by_codec = read_headers(encode_headers(stored.envelope))
    assert by_relay == by_codec
    assert by_relay.to_attributes() == decode_attributes(encode_headers(stored.envelope))
    assert by_relay.sequence == 1
    assert by_relay.correlationid == "req-1"


async def test_relay_waits_for_a_transaction_that_commits_after_a_later_position(pg_pool, kafka_bootstrap) -> None:
    topic = await create_topic(kafka_bootstrap, new_topic_name())
    relay, store = await _relay(pg_pool, kafka_bootstrap, topic)
    try:
        async with pg_pool.acquire() as conn_a:
            tx_a = conn_a.transaction()
            await tx_a.start()
            await store.append("a", NO_STREAM, [sample_event("a", "A1")], connection=conn_a)  # smaller position
            await store.append("b", NO_STREAM, [sample_event("b", "B1")])  # larger position, committed first
            assert await relay.publish_batch() == 0  # B is held back: A may still commit below it
            await tx_a.commit()
        await store.append("a", 1, [sample_event("a", "A2")])
        published = 0
        while (n := await relay.publish_batch()) > 0:
            published += n
        assert published == 3
        records = await read_topic(kafka_bootstrap, topic, expect=3)
    finally:
        await relay.stop()
    notes = {r.key: [] for r in records}
    for r in sorted(records, key=lambda r: (r.partition, r.offset)):
        notes[r.key].append(decode(r.key, r.value, r.headers, sample_registry()).data.note)
    assert notes == {b"a": ["A1", "A2"], b"b": ["B1"]}


async def test_concurrent_writers_are_relayed_complete_and_in_stream_order(pg_pool, kafka_bootstrap) -> None:
    topic = await create_topic(kafka_bootstrap, new_topic_name(), partitions=4)
    relay, store = await _relay(pg_pool, kafka_bootstrap, topic)
    stop = asyncio.Event()
    streams, per_stream = 12, 20

    async def writer(s: int) -> None:
        for i in range(per_stream):
            async with pg_pool.acquire() as conn, conn.transaction():
                await store.append(f"s{s}", i, [sample_event(f"s{s}", f"{i}")], connection=conn)
                await asyncio.sleep(0.001 * ((s + i) % 4))

    running = asyncio.create_task(relay.run(stop))
    try:
        await asyncio.gather(*(writer(s) for s in range(streams)))
        records = await read_topic(kafka_bootstrap, topic, expect=streams * per_stream, wait_s=60)
    finally:
        stop.set()
        await running
        await relay.stop()
    assert len(records) == streams * per_stream
    sequences = defaultdict(list)
    for r in sorted(records, key=lambda r: (r.partition, r.offset)):
        sequences[r.key].append(decode(r.key, r.value, r.headers, sample_registry()).sequence)
    assert all(seq == list(range(1, per_stream + 1)) for seq in sequences.values())


async def test_a_relay_that_dies_after_the_kafka_commit_publishes_nothing_twice(pg_pool, kafka_bootstrap) -> None:
    topic = await create_topic(kafka_bootstrap, new_topic_name())
    relay, store = await _relay(pg_pool, kafka_bootstrap, topic)
    events = [sample_event(f"k{i % 3}", str(i)) for i in range(9)]
    for e in events:
        await store.append(e.subject, None, [e])

    class Crash(Exception):
        pass

    class DiesBeforeItsDatabaseCheckpoint(Relay):
        async def _save_checkpoint(self, checkpoint):
            raise Crash  # the Kafka transaction (batch + progress record) is committed; PostgreSQL never hears

    await relay.stop()
    dying = _make(DiesBeforeItsDatabaseCheckpoint, pg_pool, kafka_bootstrap, topic, relay._progress_topic)
    await dying.start()
    with pytest.raises(Crash):
        await dying.publish_batch()
    await dying.stop()
    restarted = _make(Relay, pg_pool, kafka_bootstrap, topic, relay._progress_topic)
    await restarted.start()  # finds the committed progress record
    try:
        assert await restarted.publish_batch() == 0
        await store.append("k0", None, [sample_event("k0", "after")])
        assert await restarted.publish_batch() == 1
        records = await read_topic(kafka_bootstrap, topic, expect=10)
    finally:
        await restarted.stop()
    ids = [decode(r.key, r.value, r.headers, sample_registry()).id for r in records]
    assert len(ids) == 10
    assert len(set(ids)) == 10  # exactly once


async def test_a_relay_that_dies_inside_its_transaction_leaves_nothing_visible(pg_pool, kafka_bootstrap) -> None:
    topic = await create_topic(kafka_bootstrap, new_topic_name())
    relay, store = await _relay(pg_pool, kafka_bootstrap, topic)
    await relay.stop()
    events = [sample_event(f"k{i % 4}", str(i)) for i in range(12)]
    for e in events:
        await store.append(e.subject, None, [e])

    class Crash(Exception):
        pass

    class DiesBeforeCommit(Relay):
        def _before_commit(self) -> None:
            raise Crash  # every record and the progress record are sent, the transaction never commits

    dying = _make(DiesBeforeCommit, pg_pool, kafka_bootstrap, topic, relay._progress_topic)
    await dying.start()
    with pytest.raises(Crash):
        await dying.publish_batch()
    await dying.stop()
    assert await read_topic(kafka_bootstrap, topic, wait_s=3) == []  # aborted: invisible to read_committed
    restarted = _make(Relay, pg_pool, kafka_bootstrap, topic, relay._progress_topic)
    await restarted.start()
    try:
        assert await restarted.publish_batch() == 12
        records = await read_topic(kafka_bootstrap, topic, expect=12)
    finally:
        await restarted.stop()
    ids = [decode(r.key, r.value, r.headers, sample_registry()).id for r in records]
    assert sorted(map(str, ids)) == sorted(str(e.id) for e in events)
