"""Rebuild and verify: replay the event topics from the start into fresh read models, then swap or compare.

``rebuild`` (``chiso scoring rebuild``):

1. creates a fresh schema ``<schema>_rebuild_<time>`` with the projections' tables and offsets;
2. replays every projection's topics from the beginning (read_committed) up to the end offsets seen at the
   start, through the projections' own code and eventkit's exactly-once batch transaction;
3. takes an EXCLUSIVE lock on the live ``projection_offsets`` (the live runners' next batch waits; the query
   API keeps reading), reads where the live projections are, and catches the fresh tables up to exactly
   there, so both hold the same events;
4. compares the two (rows per table, differing keys), moves every table that is not a replayed read model
   (the event store, relay checkpoints, subscription state, imports) from the live schema into the fresh
   one, marks every published unit and period dirty (subscribers get any correction), and renames the
   schemas — ``<schema>`` → ``<schema>_old_<time>``, fresh → ``<schema>`` — all in that one transaction.

New statements of the running service resolve ``<schema>`` to the fresh tables from the commit on
(PostgreSQL re-plans cached statements when the search path's schema changes); the stored offsets there
equal the live ones at the swap, so the live runners continue exactly once.

``verify`` (``chiso scoring verify``) does steps 1-4 without the swap, up to where the live projections are,
then drops the fresh schema: zero differences means the live read models equal a clean rebuild.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime

import asyncpg
from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.structs import ConsumerRecord

from contracts.registry import Registry, default_registry
from eventkit import projection as plumbing
from eventkit.deadletter import DeadLetterPublisher
from eventkit.heap import settle_heap_for_batches
from eventkit.pg import Connection, apply_migrations, create_pool, quote_ident
from eventkit.projection import Projection, ProjectionRunner
from eventkit.settings import KafkaSettings
from services.scoring.rebuild_workers import ShareJob, replay_in_workers, shares

__all__ = ["RebuildReport", "Replay", "TableReport", "rebuild", "replay_consumer", "replay_runners"]

Progress = Callable[[int, int], None]
_SERVICE_PROJECTIONS = (
    "scoring.unit_activity",
    "scoring.dossier_indicators",
    "scoring.surveys",
    "scoring.plans",
    "scoring.feedback",
)
_PLUMBING_TABLES = frozenset({"schema_migrations", "projection_offsets", "projection_processed"})
#: not compared by verify: when a row was written, and when the publisher handled a PAKN deadline (``fired_at``,
#: set by the publisher, not by the events; a rebuilt row has none, and its passed deadline is handled once more)
# written by the service, not derived from events (feedback_items.published_at is a fact: it is compared)
_VOLATILE_COLUMNS = frozenset({"updated_at", "recorded_at", "fired_at"})
_EXAMPLES = 20


@dataclass
class TableReport:
    """One read-model table: rows on each side and the keys whose rows differ."""

    table: str
    live_rows: int
    rebuilt_rows: int
    differing_keys: int = 0
    examples: list[str] = field(default_factory=list)


@dataclass
class RebuildReport:
    """What a rebuild or verify did and found."""

    schema: str
    rebuilt_schema: str
    events: int
    seconds: float
    swapped: bool
    old_schema: str | None
    tables: list[TableReport]
    #: with rebuild workers: each worker process's peak resident set in MB (None where not measurable)
    worker_peak_rss_mb: list[float | None] = field(default_factory=list)

    @property
    def differences(self) -> int:
        """Differing keys over all tables (0: the live read models equal a clean rebuild)."""
        return sum(t.differing_keys for t in self.tables)


class _CountedDeadLetters(DeadLetterPublisher):
    """A replay does not park records again (the live consumer already did): it only counts them."""

    def __init__(self, consumer: str) -> None:  # no producer: nothing is published
        self.consumer = consumer
        self.topic = ""
        self.count = 0

    async def publish(self, **_: object) -> None:
        self.count += 1


Targets = dict[str, dict[TopicPartition, int]]


class Replay:
    """One consumer over every replayed topic, feeding each projection's runner up to its target offsets."""

    def __init__(self, consumer: AIOKafkaConsumer, runners: Sequence[ProjectionRunner], batch: int) -> None:
        self._consumer = consumer
        self._runners = runners
        self._batch = batch
        self.events = 0

    async def run_to(self, targets: Targets, progress: Progress | None, done_before: int, total: int) -> int:
        """Apply every record below each projection's target; returns the records consumed."""
        consumer = self._consumer
        limit = _merged(targets)
        active = set()
        for tp, offset in limit.items():
            if await consumer.position(tp) < offset:
                active.add(tp)
        consumer.pause(*(set(consumer.assignment()) - active))
        consumer.resume(*active)
        consumed = 0
        while active:
            fetched = await consumer.getmany(*active, timeout_ms=500, max_records=self._batch)
            kept: dict[TopicPartition, list[ConsumerRecord[bytes, bytes]]] = {}
            for tp, records in fetched.items():
                below = [r for r in records if r.offset < limit[tp]]
                if len(below) < len(records):
                    consumer.seek(tp, limit[tp])  # keep the rest for the catch-up at the swap
                if below:
                    kept[tp] = below
            for tp in list(active):
                if await consumer.position(tp) >= limit[tp]:
                    active.discard(tp)
                    consumer.pause(tp)
            # the projections' batches run side by side, each in its own transaction on its own connection: one
            # projection's Python work fills the time another waits on PostgreSQL (they share no rows, and each
            # stores its own offsets, so every one stays exactly once as when they ran one after the other)
            async with asyncio.TaskGroup() as group:
                for runner in self._runners:
                    own = targets.get(runner.name, {})
                    sub = {tp: [r for r in rs if r.offset < own.get(tp, 0)] for tp, rs in kept.items() if tp in own}
                    sub = {tp: rs for tp, rs in sub.items() if rs}
                    if sub:
                        group.create_task(runner.process_batch(sub))
            n = sum(len(rs) for rs in kept.values())
            consumed += n
            self.events += n
            if progress is not None:
                progress(done_before + consumed, max(total, done_before + consumed))
        return consumed


def _service_names() -> set[str]:
    from services.scoring.app import scoring_projections  # noqa: PLC0415 - the service's app, only when asked

    return {p.name for p in scoring_projections()}


def replay_runners(
    projections: Sequence[Projection], pool: asyncpg.Pool, kafka: KafkaSettings, registry: Registry, batch: int
) -> list[ProjectionRunner]:
    """The runners a replay applies its batches with (their own consumers are never started)."""
    return [
        ProjectionRunner(
            projection=p,
            pool=pool,
            kafka=kafka,
            registry=registry,
            dead_letters=_CountedDeadLetters(p.name),
            max_records=batch,
        )
        for p in projections
    ]


def replay_consumer(kafka: KafkaSettings, name: str) -> AIOKafkaConsumer:
    """A group-less, read_committed consumer; the caller assigns and seeks its partitions."""
    return AIOKafkaConsumer(
        bootstrap_servers=kafka.bootstrap_servers,
        group_id=None,
        enable_auto_commit=False,
        isolation_level="read_committed",
        auto_offset_reset="earliest",
        client_id=f"chiso.rebuild.{name}",
    )


async def _live_offsets(conn: Connection, schema: str, names: Sequence[str]) -> Targets:
    rows = await conn.fetch(
        f"SELECT projection, topic, partition, next_offset FROM {schema}.projection_offsets"
        " WHERE projection = ANY($1::text[])",
        list(names),
    )
    out: Targets = {n: {} for n in names}
    for r in rows:
        out[r["projection"]][TopicPartition(r["topic"], r["partition"])] = r["next_offset"]
    return out


async def _exists(conn: Connection, qualified: str) -> bool:
    return bool(await conn.fetchval("SELECT to_regclass($1) IS NOT NULL", qualified))


async def _tables(conn: Connection, schema: str) -> list[str]:
    rows = await conn.fetch("SELECT tablename FROM pg_tables WHERE schemaname = $1 ORDER BY tablename", schema)
    return [r[0] for r in rows]


async def _compare(conn: Connection, live: str, fresh: str, table: str) -> TableReport:
    """Rows of ``table`` in both schemas, compared on every column but timestamps of writing."""
    cols = await conn.fetch(
        """SELECT a.attname, format_type(a.atttypid, a.atttypmod) AS type FROM pg_attribute a
           WHERE a.attrelid = $1::regclass AND a.attnum > 0 AND NOT a.attisdropped ORDER BY a.attnum""",
        f"{fresh}.{table}",
    )
    keys = [
        r[0]
        for r in await conn.fetch(
            """SELECT a.attname FROM pg_index i
               JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = ANY(i.indkey)
               WHERE i.indrelid = $1::regclass AND i.indisprimary ORDER BY a.attnum""",
            f"{fresh}.{table}",
        )
    ]
    exprs, floats = [], []
    for r in cols:
        name, type_ = r["attname"], r["type"]
        if name in _VOLATILE_COLUMNS:
            continue
        if type_ in {"double precision", "real"}:
            # sums kept by adding and subtracting deltas may differ from a fresh sum in the last bits
            exprs.append(f"round({name}::numeric, 6) AS {name}")
            if name not in keys:
                floats.append(name)
        else:
            exprs.append(name)
    select = ", ".join(exprs)
    # a counter moved to 0 by a correction is the same as no counter
    where = " AND ".join(f"round({f}::numeric, 6) <> 0" for f in floats) if floats else "true"
    key_list = ", ".join(keys or [c for c in (r["attname"] for r in cols) if c not in _VOLATILE_COLUMNS])
    live_rows = await conn.fetchval(f"SELECT count(*) FROM {live}.{table} WHERE {where}")
    fresh_rows = await conn.fetchval(f"SELECT count(*) FROM {fresh}.{table} WHERE {where}")
    diff = await conn.fetch(
        f"""SELECT DISTINCT {key_list} FROM (
                (SELECT {select} FROM {live}.{table} WHERE {where}
                 EXCEPT SELECT {select} FROM {fresh}.{table} WHERE {where})
                UNION ALL
                (SELECT {select} FROM {fresh}.{table} WHERE {where}
                 EXCEPT SELECT {select} FROM {live}.{table} WHERE {where})
            ) d ORDER BY {key_list}"""
    )
    return TableReport(
        table, live_rows, fresh_rows, len(diff), [" / ".join(str(v) for v in r.values()) for r in diff[:_EXAMPLES]]
    )


async def _swap(conn: Connection, live: str, fresh: str, old: str, replayed: Sequence[str]) -> None:
    """Carry the live schema's other tables into the fresh one, mark published keys dirty, rename both."""
    for table in await _tables(conn, live):
        if table not in _PLUMBING_TABLES and table not in replayed:
            await conn.execute(f"ALTER TABLE {live}.{table} SET SCHEMA {fresh}")
    if await _exists(conn, f"{live}.schema_migrations"):  # none on a database the service never ran on
        await conn.execute(
            f"""INSERT INTO {fresh}.schema_migrations (component, name, applied_at)
                SELECT component, name, applied_at FROM {live}.schema_migrations l
                WHERE NOT EXISTS (SELECT 1 FROM {fresh}.schema_migrations f WHERE f.component = l.component)"""
        )
    if await _exists(conn, f"{fresh}.scoring_dirty") and await _exists(conn, f"{fresh}.indicator_counters"):
        # subscribers get every value the rebuild corrected (the publisher sends only values that changed)
        # the counters are kept per month: each month with counters marks itself, its quarter and its year
        await conn.execute(
            f"""WITH months AS (
                    SELECT DISTINCT unitcode, provincecode, period_start FROM {fresh}.indicator_counters
                    WHERE length(unitcode) = 5
                    UNION
                    SELECT DISTINCT provincecode, provincecode, period_start FROM {fresh}.indicator_counters
                )
                INSERT INTO {fresh}.scoring_dirty (unitcode, provincecode, period_kind, period_start)
                SELECT DISTINCT m.unitcode, m.provincecode, k.kind, k.start FROM months m
                CROSS JOIN LATERAL (VALUES ('month', m.period_start),
                                           ('quarter', date_trunc('quarter', m.period_start)::date),
                                           ('year', date_trunc('year', m.period_start)::date)) AS k(kind, start)
                ORDER BY 1, 3, 4"""
        )
    if await conn.fetchval("SELECT 1 FROM pg_namespace WHERE nspname = $1", live):
        await conn.execute(f"ALTER SCHEMA {live} RENAME TO {old}")
    await conn.execute(f"ALTER SCHEMA {fresh} RENAME TO {live}")


async def _prepare(pool: asyncpg.Pool, fresh: str, projections: Sequence[Projection]) -> list[str]:
    """The fresh schema's tables; returns the read-model tables the projections create."""
    await apply_migrations(pool, "eventkit.projection", plumbing.MIGRATIONS)
    replayed: list[str] = []
    async with pool.acquire() as conn:
        for p in projections:
            before = set(await _tables(conn, fresh))
            await apply_migrations(pool, p.name, p.migrations)
            replayed += sorted(set(await _tables(conn, fresh)) - before)
    return replayed


async def _drop_schema(database_url: str, schema: str) -> None:
    conn = await asyncpg.connect(database_url)
    try:
        await conn.execute(f"DROP SCHEMA IF EXISTS {schema} CASCADE")
    finally:
        await conn.close()


@dataclass
class _Plan:
    live: str
    fresh: str
    old: str
    swap: bool
    names: list[str]
    replayed: list[str]


async def _finish(
    lock: Connection, plan: _Plan, replay: Replay, progress: Progress | None, has_live: bool
) -> list[TableReport]:
    """Under the live offsets' lock: catch up to the live positions, compare, swap (one transaction)."""
    live, fresh = plan.live, plan.fresh
    tables: list[TableReport] = []
    async with lock.transaction():
        final: Targets = {n: {} for n in plan.names}
        if has_live:
            await lock.execute(f"LOCK TABLE {live}.projection_offsets IN EXCLUSIVE MODE")
            final = await _live_offsets(lock, live, plan.names)
        await replay.run_to(final, progress, replay.events, replay.events)
        for table in plan.replayed:
            if await _exists(lock, f"{live}.{table}"):
                tables.append(await _compare(lock, live, fresh, table))
            else:
                rows = await lock.fetchval(f"SELECT count(*) FROM {fresh}.{table}")
                tables.append(TableReport(table, 0, rows, rows, ["(no live table)"]))
        if plan.swap:
            await _swap(lock, live, fresh, plan.old, plan.replayed)
    return tables


async def rebuild(
    *,
    database_url: str,
    schema: str,
    kafka: KafkaSettings,
    registry: Registry,
    projections: Sequence[Projection],
    swap: bool,
    progress: Progress | None = None,
    batch: int = 5000,
    workers: int = 1,
) -> RebuildReport:
    """Rebuild the read models of ``projections`` from the topics; swap them in, or only compare (verify).

    ``workers`` > 1: the replay up to the first targets runs in that many processes, each with a share of the
    partitions (:mod:`services.scoring.rebuild_workers`; they build the service's projections, without hooks,
    and the contracts' default registry themselves, so ``projections`` and ``registry`` must be those, as
    ``chiso scoring rebuild`` passes them); the catch-up and the swap stay in this process.
    """
    if workers > 1 and (registry is not default_registry() or not {p.name for p in projections} <= _service_names()):
        msg = "rebuild workers replay the service's own projections with the default registry; else use workers=1"
        raise ValueError(msg)
    settle_heap_for_batches()  # the replay is one long run of projection batches, as in the service
    started = time.perf_counter()
    stamp = datetime.now(UTC).strftime("%Y%m%d%H%M%S")
    live = quote_ident(schema)
    plan = _Plan(
        live,
        quote_ident(f"{schema}_rebuild_{stamp}"),
        quote_ident(f"{schema}_old_{stamp}"),
        swap,
        [p.name for p in projections],
        [],
    )
    # a connection per projection: their batches are applied side by side (Replay.run_to)
    pool = await create_pool(database_url, plan.fresh, min_size=1, max_size=max(4, len(projections)))
    tables: list[TableReport] = []
    worker_peaks: list[float | None] = []
    try:
        plan.replayed = await _prepare(pool, plan.fresh, projections)
        runners = replay_runners(projections, pool, kafka, registry, batch)
        topics = sorted({t for p in projections for t in p.topics})
        consumer = replay_consumer(kafka, schema)
        await consumer.start()
        lock = await asyncpg.connect(database_url)
        try:
            metadata = await consumer._client.fetch_all_metadata()
            tps = [TopicPartition(t, p) for t in topics for p in sorted(metadata.partitions_for_topic(t) or ())]
            consumer.assign(tps)
            await consumer.seek_to_beginning(*tps)
            replay = Replay(consumer, runners, batch)
            has_live = await _exists(lock, f"{live}.projection_offsets")
            if swap or not has_live:
                ends = await consumer.end_offsets(tps)
                first: Targets = {p.name: {tp: ends[tp] for tp in tps if tp.topic in p.topics} for p in projections}
            else:
                first = await _live_offsets(lock, live, plan.names)
            total = sum(_merged(first).values())
            if workers > 1:
                jobs = [
                    ShareJob(database_url, plan.fresh, kafka, default_registry, plan.names, share, first, batch)
                    for share in shares(tps, workers)
                ]
                replay.events, worker_peaks = await replay_in_workers(jobs, pool, progress, total)
                for tp, offset in _merged(first).items():  # the catch-up below reads on from where they stopped
                    consumer.seek(tp, offset)
            else:
                await replay.run_to(first, progress, 0, total)
            tables = await _finish(lock, plan, replay, progress, has_live)
        finally:
            await lock.close()
            await consumer.stop()
            for runner in runners:  # used to apply batches only: their own consumers never started, but are open
                await runner.stop()
    finally:
        await pool.close()
        if not swap or not tables:
            await _drop_schema(database_url, plan.fresh)
    return RebuildReport(
        schema=schema,
        rebuilt_schema=plan.fresh,
        events=replay.events,
        seconds=time.perf_counter() - started,
        swapped=swap,
        old_schema=plan.old if swap else None,
        tables=tables,
        worker_peak_rss_mb=worker_peaks,
    )


def _merged(targets: Targets) -> dict[TopicPartition, int]:
    """The highest target per partition: how far the shared consumer reads."""
    merged: dict[TopicPartition, int] = {}
    for per_tp in targets.values():
        for tp, offset in per_tp.items():
            merged[tp] = max(merged.get(tp, 0), offset)
    return merged
