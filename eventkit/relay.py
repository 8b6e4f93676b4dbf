"""The outbox relay: publishes the event store to Kafka, in order, exactly once, never skipping an event.

- Reads with :meth:`PostgresEventStore.read_all_raw`, the gap-safe order (see :mod:`eventkit.postgres`):
  an event whose transaction commits after a later position was already relayed is still relayed.
- Key = stream id, so a stream stays on one partition; the producer is idempotent with ``acks=all`` and
  records are handed to it in store order, so a stream is never reordered.
- Exactly once: each batch is one Kafka transaction that also writes the relay's checkpoint to the
  compacted :data:`~contracts.topics.RELAY_PROGRESS` topic. Either the batch and its checkpoint are both
  committed, or neither is visible to ``read_committed`` consumers. On start the relay continues from the
  checkpoint found there (the copy in PostgreSQL is for operators and a quicker read). A crash before the
  commit leaves an open transaction that the next instance aborts when it starts (same
  ``transactional_id``), which also fences a zombie instance that is still running.
- One active relay per store: a PostgreSQL session advisory lock elects it; other replicas wait.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from collections.abc import Callable

import asyncpg
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.errors import ProducerFenced

from contracts.topics import RELAY_PROGRESS
from eventkit.kafka import build_producer
from eventkit.logging import get_logger
from eventkit.metrics import PlumbingMetrics
from eventkit.pg import Connection, Migration
from eventkit.postgres import NOTIFY_CHANNEL, PostgresEventStore
from eventkit.settings import KafkaSettings
from eventkit.store import Checkpoint

__all__ = ["MIGRATIONS", "Relay", "read_progress", "record_headers"]

MIGRATIONS = (
    Migration(
        "0001_relay_checkpoints",
        """
        CREATE TABLE relay_checkpoints (
            relay       text PRIMARY KEY,
            txid        bigint NOT NULL,
            position    bigint NOT NULL,
            updated_at  timestamptz NOT NULL DEFAULT now()
        );
        """,
    ),
)

_log = get_logger("eventkit.relay")


def record_headers(row: asyncpg.Record) -> list[tuple[str, bytes]]:
    """CloudEvents headers of a stored event, built straight from its row (the relay's hot path).

    Decodes to the same attributes as :func:`contracts.wire.encode_headers` writes for the same event
    (tests/integration/test_relay.py checks it); built by hand because the pydantic round trip cost a third
    of the relay's CPU. The stored row was validated when it was appended.
    """
    headers = [
        ("content-type", b"application/json"),
        ("ce_id", str(row["event_id"]).encode()),
        ("ce_source", row["source"].encode()),
        ("ce_specversion", b"1.0"),
        ("ce_type", row["type"].encode()),
        ("ce_subject", row["stream_id"].encode()),
        ("ce_time", row["occurred_at"].isoformat().replace("+00:00", "Z").encode()),
        ("ce_dataschema", f"urn:chiso:schema:{row['type']}:v{row['schema_version']}".encode()),
        ("ce_schemaversion", str(row["schema_version"]).encode()),
        ("ce_unitcode", row["unitcode"].encode()),
        ("ce_provincecode", row["provincecode"].encode()),
        ("ce_partitionkey", row["stream_id"].encode()),
        ("ce_sequence", str(row["version"]).encode()),
    ]
    if row["correlation_id"] is not None:
        headers.append(("ce_correlationid", row["correlation_id"].encode()))
    if row["causation_id"] is not None:
        headers.append(("ce_causationid", row["causation_id"].encode()))
    if row["legacy_unitcode"] is not None:
        headers.append(("ce_legacyunitcode", row["legacy_unitcode"].encode()))
    return headers


async def read_progress(bootstrap_servers: str, relay: str, *, progress_topic: str = RELAY_PROGRESS) -> Checkpoint:
    """The last checkpoint ``relay`` committed to the progress topic (committed transactions only)."""
    reader = AIOKafkaConsumer(
        bootstrap_servers=bootstrap_servers,
        group_id=None,
        enable_auto_commit=False,
        isolation_level="read_committed",
    )
    await reader.start()
    try:
        tp = TopicPartition(progress_topic, 0)
        reader.assign([tp])
        await reader.seek_to_beginning(tp)
        end = (await reader.end_offsets([tp]))[tp]  # the last stable offset under read_committed
        found = Checkpoint()
        key = relay.encode()
        while await reader.position(tp) < end:
            for record in (await reader.getmany(tp, timeout_ms=1000)).get(tp, []):
                if record.key == key and record.value:
                    value = json.loads(record.value)
                    found = Checkpoint(value["txid"], value["position"])
        return found
    finally:
        await reader.stop()


class Relay:
    """Publishes one event store's events to Kafka; see the module docstring for the guarantees."""

    def __init__(
        self,
        *,
        name: str,
        pool: asyncpg.Pool,
        store: PostgresEventStore,
        kafka: KafkaSettings,
        topic_of: Callable[[str], str],
        metrics: PlumbingMetrics | None = None,
        batch_size: int = 5000,
        idle_wait_s: float = 1.0,
        progress_topic: str = RELAY_PROGRESS,
        linger_s: float = 0.0,
    ) -> None:
        """``linger_s``: after a batch that was not full, wait this long before the next one, so that events
        appended meanwhile share one Kafka transaction (each costs the broker a commit and a marker per
        partition, and the database a checkpoint write: per event, that dominates when appends arrive in
        small groups). 0: publish as soon as an append is notified."""
        self.name = name
        self._pool = pool
        self._store = store
        self._kafka = kafka
        self._topic_of = topic_of
        self._metrics = metrics
        self._batch_size = batch_size
        self._idle_wait_s = idle_wait_s
        self._progress_topic = progress_topic
        self._linger_s = linger_s
        self._wake = asyncio.Event()
        self._producer: AIOKafkaProducer | None = None
        self._checkpoint = Checkpoint()

    async def start(self) -> None:
        """Start the transactional producer (fencing any older instance) and find where to continue."""
        self._producer = build_producer(self._kafka, f"relay.{self.name}", transactional_id=f"chiso.relay.{self.name}")
        await self._producer.start()
        published = await read_progress(self._kafka.bootstrap_servers, self.name, progress_topic=self._progress_topic)
        self._checkpoint = max(published, await self.stored_checkpoint())

    async def stop(self) -> None:
        """Close the producer (an unfinished transaction is aborted by the next instance)."""
        if self._producer is not None:
            await self._producer.stop()
            self._producer = None

    async def stored_checkpoint(self) -> Checkpoint:
        """The checkpoint copy in PostgreSQL (never ahead of the one committed in Kafka)."""
        row = await self._pool.fetchrow("SELECT txid, position FROM relay_checkpoints WHERE relay = $1", self.name)
        return Checkpoint(row["txid"], row["position"]) if row else Checkpoint()

    async def publish_batch(self) -> int:
        """Publish the next batch of committed events in one Kafka transaction; returns how many."""
        if self._producer is None:
            msg = "start() the relay before publishing"
            raise RuntimeError(msg)
        started = time.perf_counter()
        async with self._pool.acquire() as conn:
            rows = await self._store.read_all_raw(conn, self._checkpoint, self._batch_size)
        if not rows:
            return 0
        last = Checkpoint(rows[-1]["txid"], rows[-1]["position"])
        producer = self._producer
        async with producer.transaction():
            deliveries = [
                await producer.send(
                    self._topic_of(row["type"]),
                    value=row["data"].encode(),
                    key=row["stream_id"].encode(),
                    headers=record_headers(row),
                )
                for row in rows
            ]
            deliveries.append(
                await producer.send(
                    self._progress_topic,
                    key=self.name.encode(),
                    value=json.dumps({"txid": last.commit_group, "position": last.position}).encode(),
                )
            )
            self._before_commit()
            await asyncio.gather(*deliveries)
        # committed in Kafka: the batch and its checkpoint are visible together, or (on a crash) neither
        self._checkpoint = last
        await self._save_checkpoint(last)
        if self._metrics:
            self._metrics.relay_published.labels(self.name).inc(len(rows))
            self._metrics.relay_checkpoint.labels(self.name).set(last.position)
            self._metrics.batch_seconds.labels(f"relay:{self.name}").observe(time.perf_counter() - started)
        return len(rows)

    def _before_commit(self) -> None:
        """Hook for crash tests: called with the batch sent but not yet committed."""

    async def _save_checkpoint(self, checkpoint: Checkpoint) -> None:
        await self._pool.execute(
            """INSERT INTO relay_checkpoints (relay, txid, position) VALUES ($1, $2, $3)
               ON CONFLICT (relay) DO UPDATE SET txid = EXCLUDED.txid, position = EXCLUDED.position,
                                                 updated_at = now()""",
            self.name,
            checkpoint.commit_group,
            checkpoint.position,
        )

    async def run(self, stop: asyncio.Event) -> None:
        """Relay until ``stop`` is set: leader lock, then publish whenever an append is notified (or polled)."""
        async with self._pool.acquire() as lock_conn:
            while not stop.is_set():
                if await lock_conn.fetchval("SELECT pg_try_advisory_lock(hashtext('chiso.relay.' || $1))", self.name):
                    break
                _log.info("relay standing by: another instance holds the lock", relay=self.name)
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(stop.wait(), timeout=5)
            if stop.is_set():
                return
            try:
                await self._run_as_leader(lock_conn, stop)
            finally:
                await lock_conn.execute("SELECT pg_advisory_unlock(hashtext('chiso.relay.' || $1))", self.name)

    async def _run_as_leader(self, conn: Connection, stop: asyncio.Event) -> None:
        def on_notify(*_: object) -> None:
            self._wake.set()

        await conn.add_listener(NOTIFY_CHANNEL, on_notify)
        _log.info("relay started", relay=self.name)
        try:
            while not stop.is_set():
                self._wake.clear()
                try:
                    published = await self.publish_batch()
                except ProducerFenced:
                    # a newer instance of this relay started: this one must stop publishing at once
                    _log.error("relay fenced by a newer instance; stopping", relay=self.name)
                    raise
                except Exception:
                    # the broker or the database is unavailable: keep the checkpoint, back off, retry
                    _log.exception("relay batch failed; retrying", relay=self.name)
                    published = 0
                    await asyncio.sleep(1)
                if published:
                    if published < self._batch_size and self._linger_s > 0:
                        with contextlib.suppress(TimeoutError):
                            await asyncio.wait_for(stop.wait(), timeout=self._linger_s)
                    continue
                # idle: wait for an append notification, a stop, or the poll interval (a held-back horizon
                # releases events without any new notification)
                waiters = {asyncio.ensure_future(self._wake.wait()), asyncio.ensure_future(stop.wait())}
                _, pending = await asyncio.wait(waiters, timeout=self._idle_wait_s, return_when=asyncio.FIRST_COMPLETED)
                for task in pending:
                    task.cancel()
        finally:
            await conn.remove_listener(NOTIFY_CHANNEL, on_notify)
            _log.info("relay stopped", relay=self.name)
