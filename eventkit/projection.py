"""Projection runner: Kafka batches into PostgreSQL read models with exactly-once effects.

For every batch, ONE PostgreSQL transaction:

1. locks the projection's stored offsets of the batch's partitions and drops records below them
   (a record already applied — after a crash or a rebalance race — is never applied twice);
2. decodes the CloudEvents headers; an invalid record goes to the dead-letter topic;
3. optionally records the event ids (``dedupe_event_ids``) and drops ids seen before: the same event
   arriving as two records (a partner system re-sending, a dead letter replayed twice) is applied once.
   chiso's own relay publishes exactly once, so on its topics offset gating alone is already exactly
   once; the id table (one row per event) is the price of also absorbing other producers' duplicates;
4. calls :meth:`Projection.apply` with the remaining events, in partition order;
5. stores the next offset of every partition.

Kafka's own committed offsets are not used for correctness (they are committed now and then so standard
tools can show lag); on partition assignment the consumer seeks to the offsets stored in PostgreSQL. A
crash at any point therefore either loses the whole transaction (the batch is read again) or none of it.

A batch that keeps failing is retried, then replayed one record at a time so only the record that fails
goes to the dead-letter topic (with the exception as reason) and the consumer moves on. Connection
failures and lost races between concurrent transactions (:class:`BatchConflict`, deadlocks, serialization
failures) are never blamed on a record: the runner backs off and reads again from the stored offsets.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import cast

import asyncpg
from aiokafka import AIOKafkaConsumer, ConsumerRebalanceListener, TopicPartition
from aiokafka.errors import KafkaConnectionError, KafkaTimeoutError
from aiokafka.structs import ConsumerRecord

from contracts.base import EventPayload
from contracts.registry import Registry, UnknownEventType
from contracts.wire import CloudEventHeaders, InvalidRecord, decode_data, read_headers
from eventkit.deadletter import DeadLetterPublisher
from eventkit.logging import bind_message_context, get_logger
from eventkit.metrics import PlumbingMetrics
from eventkit.pg import Connection, Migration
from eventkit.settings import KafkaSettings

__all__ = ["MIGRATIONS", "BatchConflict", "ConsumedEvent", "Projection", "ProjectionRunner", "Rejection"]

MIGRATIONS = (
    Migration(
        "0001_projection_offsets",
        """
        CREATE TABLE projection_offsets (
            projection   text NOT NULL,
            topic        text NOT NULL,
            partition    integer NOT NULL,
            next_offset  bigint NOT NULL,
            updated_at   timestamptz NOT NULL DEFAULT now(),
            PRIMARY KEY (projection, topic, partition)
        );
        CREATE TABLE projection_processed (
            projection  text NOT NULL,
            event_id    uuid NOT NULL,
            PRIMARY KEY (projection, event_id)
        );
        """,
    ),
)

_log = get_logger("eventkit.projection")
_TRANSIENT = (
    OSError,
    ConnectionError,
    TimeoutError,
    asyncpg.InterfaceError,
    asyncpg.PostgresConnectionError,
    asyncpg.CannotConnectNowError,
    KafkaConnectionError,
    KafkaTimeoutError,
)

#: how long one top-up round waits for an in-flight fetch (bounds the latency it can add)
_TOP_UP_WAIT_MS = 5

FaultHook = Callable[[str], None]
Batch = dict[TopicPartition, list[ConsumerRecord[bytes, bytes]]]
Group = tuple[tuple[str, int], list[ConsumerRecord[bytes, bytes]]]


class ConsumedEvent:
    """A record read from Kafka: origin, CloudEvents attributes, and its payload decoded on first use."""

    __slots__ = ("_data", "_registry", "attributes", "record")

    def __init__(self, record: ConsumerRecord[bytes, bytes], attributes: CloudEventHeaders, registry: Registry) -> None:
        self.record = record
        self.attributes = attributes
        self._registry = registry
        self._data: EventPayload | None = None

    # views on the record rather than copies: the runner builds one of these per record on its hot path
    @property
    def topic(self) -> str:
        """Origin topic."""
        return cast("str", self.record.topic)

    @property
    def partition(self) -> int:
        """Origin partition."""
        return cast("int", self.record.partition)

    @property
    def offset(self) -> int:
        """Origin offset."""
        return cast("int", self.record.offset)

    @property
    def key(self) -> bytes | None:
        """Record key (the stream id)."""
        return cast("bytes | None", self.record.key)

    @property
    def value(self) -> bytes | None:
        """Record value (the JSON payload)."""
        return cast("bytes | None", self.record.value)

    @property
    def data(self) -> EventPayload:
        """The validated payload (raises :class:`InvalidRecord`; the runner dead-letters it)."""
        if self._data is None:
            self._data = decode_data(self.attributes, self.record.value, self._registry)
        return self._data


@dataclass(frozen=True)
class Rejection:
    """An event a projection refuses, and why (becomes a dead letter)."""

    event: ConsumedEvent
    reason: str


class Projection:
    """A read model fed from Kafka. Subclasses set the class attributes and implement :meth:`apply`."""

    #: stable name: the consumer group and the key of the stored offsets
    name: str
    #: topics to consume
    topics: tuple[str, ...]
    #: CloudEvents types to apply (others are skipped, but their offsets still advance); None = all
    event_types: frozenset[str] | None = None
    #: record event ids to ignore duplicate records (costs one insert per event)
    dedupe_event_ids: bool = True
    #: validate every wanted payload before :meth:`apply` (invalid ones are dead-lettered); a projection
    #: that reads headers only may turn it off and skip the payload parsing cost
    validate_payloads: bool = True
    #: the read model's tables
    migrations: tuple[Migration, ...] = ()

    async def apply(self, conn: Connection, events: Sequence[ConsumedEvent]) -> Sequence[Rejection] | None:
        """Update the read model inside the runner's transaction (``conn``). Must not commit.

        Returns the events it refuses to apply, with the reason (they go to the dead-letter topic in the
        same transaction); raising instead fails the whole batch (retried, then bisected).
        """
        raise NotImplementedError


class _Transient(Exception):
    """Infrastructure failure: retry from the stored offsets, never dead-letter for it."""


class BatchConflict(Exception):
    """A batch lost a race with a concurrent transaction (another member of the consumer group, e.g. on a row
    both touched). Raised by a projection's :meth:`Projection.apply`: the batch is retried, and once its retries
    are spent it is read again from the stored offsets rather than bisected — no record is to blame, so none is
    dead-lettered for it."""


# conflicts PostgreSQL itself reports between concurrent transactions: retrying is the documented answer
_CONFLICTS = (BatchConflict, asyncpg.DeadlockDetectedError, asyncpg.SerializationError)


class _SeekToStoredOffsets(ConsumerRebalanceListener):  # type: ignore[misc]
    def __init__(self, runner: ProjectionRunner) -> None:
        self._runner = runner

    async def on_partitions_revoked(self, revoked: Iterable[TopicPartition]) -> None:
        # let an in-flight batch finish before the partitions move to another member
        async with self._runner.batch_lock:
            pass

    async def on_partitions_assigned(self, assigned: Iterable[TopicPartition]) -> None:
        await self._runner.seek_to_stored(list(assigned))


class ProjectionRunner:
    """Runs one :class:`Projection`; see the module docstring for the guarantees."""

    def __init__(
        self,
        *,
        projection: Projection,
        pool: asyncpg.Pool,
        kafka: KafkaSettings,
        registry: Registry,
        dead_letters: DeadLetterPublisher,
        metrics: PlumbingMetrics | None = None,
        max_records: int = 5000,
        max_attempts: int = 3,
        group_id: str | None = None,
        session_timeout_ms: int = 10_000,
        fault: FaultHook | None = None,
    ) -> None:
        self.projection = projection
        self._pool = pool
        self._registry = registry
        self._dead_letters = dead_letters
        self._metrics = metrics
        self._max_records = max_records
        self._max_attempts = max_attempts
        self._fault = fault or (lambda _point: None)
        self.batch_lock = asyncio.Lock()
        self._consumer = AIOKafkaConsumer(
            *projection.topics,
            bootstrap_servers=kafka.bootstrap_servers,
            client_id=f"{kafka.client_id_prefix}.{projection.name}",
            group_id=group_id or f"chiso.{projection.name}",
            enable_auto_commit=False,
            auto_offset_reset="earliest",
            isolation_level="read_committed",
            max_poll_records=max_records,
            session_timeout_ms=session_timeout_ms,
            heartbeat_interval_ms=max(1000, session_timeout_ms // 4),
        )
        self._last_kafka_commit = 0.0
        self._known_types = frozenset(cls.event_type for cls in registry.types())

    @property
    def name(self) -> str:
        """The projection's name (consumer name in metrics and dead letters)."""
        return self.projection.name

    async def start(self) -> None:
        """Connect and join the group (offsets are sought on assignment)."""
        self._consumer.subscribe(list(self.projection.topics), listener=_SeekToStoredOffsets(self))
        await self._consumer.start()

    async def stop(self) -> None:
        """Leave the group and close the connection."""
        await self._consumer.stop()

    async def seek_to_stored(self, partitions: Sequence[TopicPartition]) -> None:
        """Position ``partitions`` at the offsets stored with the read model (the beginning if none)."""
        if not partitions:
            return
        rows = await self._pool.fetch(
            "SELECT topic, partition, next_offset FROM projection_offsets"
            " WHERE projection = $1 AND topic = ANY($2::text[])",
            self.name,
            list({tp.topic for tp in partitions}),
        )
        stored = {TopicPartition(r["topic"], r["partition"]): r["next_offset"] for r in rows}
        for tp in partitions:
            if tp in stored:
                self._consumer.seek(tp, stored[tp])
            else:
                await self._consumer.seek_to_beginning(tp)

    async def run(self, stop: asyncio.Event) -> None:
        """Consume until ``stop`` is set."""
        while not stop.is_set():
            batch = await self._consumer.getmany(timeout_ms=500, max_records=self._max_records)
            batch = await self._top_up(batch)
            if not batch:
                await self._maybe_commit_to_kafka()
                continue
            self._fault("fetched")
            try:
                async with self.batch_lock:
                    await self.process_batch(batch)
            except _Transient:
                _log.warning("database or broker unavailable; re-reading from stored offsets", projection=self.name)
                await asyncio.sleep(1)
                await self.seek_to_stored(list(self._consumer.assignment()))
                continue
            await self._update_lag(batch)
            await self._maybe_commit_to_kafka()

    async def _top_up(self, batch: Batch) -> Batch:
        """Under load, add the records of fetches already in flight: fewer, larger transactions.

        Waits at most a few milliseconds per round (the fetches are already on the wire), and only while
        records keep coming, so a quiet topic adds no latency.
        """
        count = sum(len(v) for v in batch.values())
        while batch and count < self._max_records:
            more = await self._consumer.getmany(timeout_ms=_TOP_UP_WAIT_MS, max_records=self._max_records - count)
            if not more:
                break
            for tp, records in more.items():
                batch.setdefault(tp, []).extend(records)
                count += len(records)
        return batch

    async def process_batch(self, batch: Batch) -> None:
        """Apply one fetched batch: whole, or record by record if it keeps failing."""
        started = time.perf_counter()
        groups = [((tp.topic, tp.partition), batch[tp]) for tp in sorted(batch) if batch[tp]]
        for attempt in range(1, self._max_attempts + 1):
            try:
                await self._transaction(groups, poison=None)
                break
            except Exception as exc:
                if _is_transient(exc):
                    raise _Transient from exc
                _log.warning("batch failed", projection=self.name, attempt=attempt, error=repr(exc))
                if attempt == self._max_attempts:
                    if isinstance(exc, _CONFLICTS):
                        raise _Transient from exc
                    await self._one_by_one([r for _, records in groups for r in records])
                else:
                    await asyncio.sleep(0.05 * 2**attempt)
        if self._metrics:
            self._metrics.batch_seconds.labels(f"projection:{self.name}").observe(time.perf_counter() - started)

    async def _one_by_one(self, records: Sequence[ConsumerRecord[bytes, bytes]]) -> None:
        for record in records:
            error: Exception | None = None
            for attempt in range(1, self._max_attempts + 1):
                try:
                    await self._transaction([((record.topic, record.partition), [record])], poison=None)
                    error = None
                    break
                except Exception as exc:
                    if _is_transient(exc) or (isinstance(exc, _CONFLICTS) and attempt == self._max_attempts):
                        raise _Transient from exc
                    error = exc
                    await asyncio.sleep(0.05 * attempt)
            if error is not None:
                reason = error.reason if isinstance(error, InvalidRecord) else f"processing failed: {error!r}"
                await self._transaction([((record.topic, record.partition), [record])], poison=reason)

    async def _transaction(self, groups: Sequence[Group], poison: str | None) -> None:
        """The one transaction per batch (see the module docstring). ``poison``: dead-letter these records."""
        async with self._pool.acquire() as conn, conn.transaction():
            next_offsets = await self._lock_offsets(conn, [key for key, _ in groups])
            fresh: list[ConsumerRecord[bytes, bytes]] = []
            for key, records in groups:  # each partition's records come in offset order
                start = next_offsets[key]
                fresh.extend(records if records[0].offset >= start else (r for r in records if r.offset >= start))
            events, dead = self._classify(fresh, poison)
            if self.projection.dedupe_event_ids and events:
                events = await self._first_seen(conn, events)
            invalid = len(dead)
            if events:
                for rejection in await self.projection.apply(conn, events) or ():
                    dead.append((rejection.event.record, rejection.reason))
            self._fault("applied")
            for record, reason in dead:
                await self._park(record, reason)
            await self._store_offsets(conn, [(key, records[-1].offset + 1) for key, records in groups])
        self._fault("db_committed")
        if self._metrics:
            total = sum(len(records) for _, records in groups)
            self._metrics.consumed.labels(self.name, "applied").inc(len(events) - (len(dead) - invalid))
            self._metrics.consumed.labels(self.name, "dead_lettered").inc(len(dead))
            self._metrics.consumed.labels(self.name, "skipped").inc(total - len(events) - invalid)

    def _classify(
        self, records: Sequence[ConsumerRecord[bytes, bytes]], poison: str | None
    ) -> tuple[list[ConsumedEvent], list[tuple[ConsumerRecord[bytes, bytes], str]]]:
        """Split fresh records into events to apply and dead letters (with reasons); skip unwanted types."""
        events: list[ConsumedEvent] = []
        dead: list[tuple[ConsumerRecord[bytes, bytes], str]] = []
        if poison is not None:
            return events, [(record, poison) for record in records]
        wanted = self.projection.event_types
        validate = self.projection.validate_payloads
        known = self._known_types
        for record in records:
            try:
                attributes = read_headers(record.headers)
                # an unknown type is parked, not skipped: once the contracts are upgraded it can be
                # replayed; skipping it would lose it silently
                if attributes.type not in known:
                    self._registry.latest(attributes.type)
            except (InvalidRecord, UnknownEventType) as exc:
                dead.append((record, exc.reason if isinstance(exc, InvalidRecord) else str(exc)))
                continue
            if wanted is not None and attributes.type not in wanted:
                continue
            event = ConsumedEvent(record, attributes, self._registry)
            if validate:
                try:
                    event.data  # noqa: B018 - parses and caches the payload
                except InvalidRecord as exc:
                    dead.append((record, exc.reason))
                    continue
            events.append(event)
        return events, dead

    async def _lock_offsets(self, conn: Connection, keys: Sequence[tuple[str, int]]) -> dict[tuple[str, int], int]:
        topics, partitions = [t for t, _ in keys], [p for _, p in keys]
        # create missing rows first so the FOR UPDATE below always has a row to lock (two members racing
        # for a partition during a rebalance serialise here)
        await conn.execute(
            """INSERT INTO projection_offsets (projection, topic, partition, next_offset)
               SELECT $1, t, p, 0 FROM unnest($2::text[], $3::int[]) AS x(t, p)
               ON CONFLICT DO NOTHING""",
            self.name,
            topics,
            partitions,
        )
        rows = await conn.fetch(
            """SELECT o.topic, o.partition, o.next_offset FROM projection_offsets o
               JOIN unnest($2::text[], $3::int[]) AS x(t, p) ON o.topic = x.t AND o.partition = x.p
               WHERE o.projection = $1 ORDER BY o.topic, o.partition FOR UPDATE OF o""",
            self.name,
            topics,
            partitions,
        )
        return {(r["topic"], r["partition"]): r["next_offset"] for r in rows}

    async def _first_seen(self, conn: Connection, events: list[ConsumedEvent]) -> list[ConsumedEvent]:
        rows = await conn.fetch(
            """INSERT INTO projection_processed (projection, event_id)
               SELECT $1, id FROM unnest($2::uuid[]) AS x(id)
               ON CONFLICT DO NOTHING RETURNING event_id""",
            self.name,
            [e.attributes.id for e in events],
        )
        new = {str(r["event_id"]) for r in rows}
        first: list[ConsumedEvent] = []
        for event in events:  # a duplicate inside the batch itself: keep the first occurrence only
            if event.attributes.id in new:
                new.discard(event.attributes.id)
                first.append(event)
        return first

    async def _store_offsets(self, conn: Connection, next_offsets: Sequence[tuple[tuple[str, int], int]]) -> None:
        await conn.execute(
            """UPDATE projection_offsets o SET next_offset = GREATEST(o.next_offset, x.n), updated_at = now()
               FROM unnest($2::text[], $3::int[], $4::bigint[]) AS x(t, p, n)
               WHERE o.projection = $1 AND o.topic = x.t AND o.partition = x.p""",
            self.name,
            [t for (t, _), _ in next_offsets],
            [p for (_, p), _ in next_offsets],
            [n for _, n in next_offsets],
        )

    async def _park(self, record: ConsumerRecord[bytes, bytes], reason: str) -> None:
        with bind_message_context(topic=record.topic, partition=record.partition, offset=record.offset):
            _log.warning("dead-lettering record", projection=self.name, reason=reason)
        await self._dead_letters.publish(
            reason=reason,
            topic=record.topic,
            partition=record.partition,
            offset=record.offset,
            key=record.key,
            value=record.value,
            headers=list(record.headers or ()),
        )
        if self._metrics:
            self._metrics.dead_letters.labels(self.name).inc()

    async def _update_lag(self, batch: Batch) -> None:
        """Records a read_committed consumer could still read: last stable offset minus position.

        Not "high watermark minus last offset + 1": a transaction's commit marker takes an offset too, so
        that would never reach zero on the relay's transactional topics.
        """
        if not self._metrics:
            return
        for tp in batch:
            stable = self._consumer.last_stable_offset(tp)
            if stable is None:
                continue
            position = await self._consumer.position(tp)
            self._metrics.consumer_lag.labels(self.name, tp.topic, str(tp.partition)).set(max(0, stable - position))

    async def _maybe_commit_to_kafka(self) -> None:
        """Mirror the stored positions to Kafka now and then, for operators' lag tools only."""
        if time.monotonic() - self._last_kafka_commit < 5:
            return
        self._last_kafka_commit = time.monotonic()
        positions: dict[TopicPartition, int] = {}
        for tp in self._consumer.assignment():
            with contextlib.suppress(Exception):
                positions[tp] = await self._consumer.position(tp)
        if positions:
            with contextlib.suppress(Exception):  # a failed mirror commit changes nothing we rely on
                await self._consumer.commit(positions)
            self._fault("kafka_committed")


def _is_transient(exc: BaseException) -> bool:
    return isinstance(exc, (*_TRANSIENT, _Transient))
