"""The outbox relay: publishes the event store to Kafka, in order, without ever skipping an event.

- Reads with :meth:`PostgresEventStore.read_all_raw`, the gap-safe order (see :mod:`eventkit.postgres`):
  an event whose transaction commits after a later position was already relayed is still relayed.
- Key = stream id, so a stream stays on one partition; the producer is idempotent with ``acks=all`` and
  records are handed to it in store order, so a stream is never reordered.
- The checkpoint advances only after Kafka acknowledged every record of the batch. A crash in between
  publishes the batch again: delivery is at-least-once and consumers dedupe on the event id.
- One active relay per store: a PostgreSQL session advisory lock elects it; other replicas wait.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Callable

import asyncpg
from aiokafka import AIOKafkaProducer

from contracts.envelope import Attributes
from contracts.wire import encode_headers
from eventkit.logging import get_logger
from eventkit.metrics import PlumbingMetrics
from eventkit.pg import Connection, Migration
from eventkit.postgres import NOTIFY_CHANNEL, PostgresEventStore
from eventkit.store import Checkpoint

__all__ = ["MIGRATIONS", "Relay", "record_headers"]

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
    """CloudEvents headers of a stored event, exactly as :func:`contracts.wire.encode_headers` writes them."""
    attributes = Attributes.model_construct(
        id=row["event_id"],
        source=row["source"],
        specversion="1.0",
        type=row["type"],
        subject=row["stream_id"],
        time=row["occurred_at"],
        datacontenttype="application/json",
        dataschema=f"urn:chiso:schema:{row['type']}:v{row['schema_version']}",
        schemaversion=row["schema_version"],
        unitcode=row["unitcode"],
        provincecode=row["provincecode"],
        partitionkey=row["stream_id"],
        sequence=row["version"],
        correlationid=row["correlation_id"],
        causationid=row["causation_id"],
    )
    return encode_headers(attributes)


class Relay:
    """Publishes one event store's events to Kafka; see the module docstring for the guarantees."""

    def __init__(
        self,
        *,
        name: str,
        pool: asyncpg.Pool,
        store: PostgresEventStore,
        producer: AIOKafkaProducer,
        topic_of: Callable[[str], str],
        metrics: PlumbingMetrics | None = None,
        batch_size: int = 5000,
        idle_wait_s: float = 1.0,
    ) -> None:
        self.name = name
        self._pool = pool
        self._store = store
        self._producer = producer
        self._topic_of = topic_of
        self._metrics = metrics
        self._batch_size = batch_size
        self._idle_wait_s = idle_wait_s
        self._wake = asyncio.Event()

    async def start(self) -> None:
        """Nothing to connect: the pool and the producer belong to the service."""

    async def stop(self) -> None:
        """Nothing to close (see :meth:`start`)."""

    async def checkpoint(self) -> Checkpoint:
        """Where the relay will continue from."""
        row = await self._pool.fetchrow("SELECT txid, position FROM relay_checkpoints WHERE relay = $1", self.name)
        return Checkpoint(row["txid"], row["position"]) if row else Checkpoint()

    async def publish_batch(self) -> int:
        """Publish the next batch of committed events and advance the checkpoint; returns how many."""
        started = time.perf_counter()
        after = await self.checkpoint()
        async with self._pool.acquire() as conn:
            rows = await self._store.read_all_raw(conn, after, self._batch_size)
        if not rows:
            return 0
        deliveries = []
        for row in rows:
            deliveries.append(
                await self._producer.send(
                    self._topic_of(row["type"]),
                    value=row["data"].encode(),
                    key=row["stream_id"].encode(),
                    headers=record_headers(row),
                )
            )
        # every record acknowledged (acks=all) before the checkpoint moves: nothing is lost by a crash here
        await asyncio.gather(*deliveries)
        last = rows[-1]
        await self._save_checkpoint(Checkpoint(last["txid"], last["position"]))
        if self._metrics:
            self._metrics.relay_published.labels(self.name).inc(len(rows))
            self._metrics.relay_checkpoint.labels(self.name).set(last["position"])
            self._metrics.batch_seconds.labels(f"relay:{self.name}").observe(time.perf_counter() - started)
        return len(rows)

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
                except Exception:
                    # the broker or the database is unavailable: keep the checkpoint, back off, retry
                    _log.exception("relay batch failed; retrying", relay=self.name)
                    published = 0
                    await asyncio.sleep(1)
                if published:
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
