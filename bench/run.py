"""Benchmarks of the plumbing on a real Kafka broker and PostgreSQL (not tests: no assertion on time).

    python -m bench.run [--events N] [--relay-events N] [--repeat K]

Uses KAFKA_BOOTSTRAP_SERVERS / DATABASE_URL when set, else starts the project's local broker and
PostgreSQL (infra/local.py). Every figure is paired with a baseline measured in the same process on the
same data, so the ratio carries the meaning and the machine's speed mostly cancels out:

- relay: events/s from the PostgreSQL event store to Kafka (gap-safe read, one Kafka
  transaction per batch with its progress record, idempotent acks=all producer) vs. a raw aiokafka
  producer sending the same records with the same settings (not transactional);
- projection runner: events/s from Kafka into a PostgreSQL read model in one transaction per batch (offset
  gating, optional event-id dedupe, optional payload validation) vs. a raw aiokafka ``getmany`` loop
  over the same topic that does nothing with the records.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import platform
import statistics
import time
import uuid
from contextlib import ExitStack
from datetime import UTC, datetime

from aiokafka import AIOKafkaConsumer
from rich.console import Console
from rich.progress import Progress

from bench.output import save_result
from contracts.wire import encode
from eventkit import postgres, projection, relay
from eventkit.deadletter import DeadLetterPublisher
from eventkit.kafka import build_producer
from eventkit.pg import apply_migrations, create_pool
from eventkit.postgres import PostgresEventStore
from eventkit.projection import ProjectionRunner
from eventkit.settings import KafkaSettings
from eventkit.testing import SampleTotalsProjection, sample_event, sample_registry
from infra.local import LocalKafka, LocalPostgres, ensure_kafka_libs, find_repo_root
from infra.topics import TopicSpec, provision_topics

console = Console()
UNITS = [f"{n:05d}" for n in range(4, 4 + 168 * 3, 3)]  # a 168-commune province


def _events(n: int, streams: int) -> list:
    now = datetime(2026, 3, 2, 8, 0, tzinfo=UTC)
    return [
        sample_event(f"dossier-{i % streams}", f"n{i}", amount=i % 7, unitcode=UNITS[i % len(UNITS)], at=now)
        for i in range(n)
    ]


async def _topic(bootstrap: str, partitions: int = 12) -> str:
    name = f"vn.cchc.bench.{uuid.uuid4().hex[:8]}"
    await provision_topics(bootstrap, [TopicSpec(name=name, partitions=partitions)])
    return name


# --- relay -------------------------------------------------------------------------------------------


async def bench_relay(url: str, bootstrap: str, n: int) -> dict:
    kafka = KafkaSettings(bootstrap_servers=bootstrap)
    pool = await create_pool(url, f"bench_relay_{uuid.uuid4().hex[:6]}", max_size=4)
    for owner, migrations in (("eventkit.store", postgres.MIGRATIONS), ("eventkit.relay", relay.MIGRATIONS)):
        await apply_migrations(pool, owner, migrations)
    store = PostgresEventStore(pool, sample_registry())
    events = _events(n, streams=n // 10)
    by_stream: dict[str, list] = {}
    for e in events:
        by_stream.setdefault(e.subject, []).append(e)
    with Progress(console=console, transient=True) as progress:
        task = progress.add_task("relay: appending to the event store", total=n)
        for stream, evs in by_stream.items():
            await store.append(stream, 0, evs)
            progress.advance(task, len(evs))

    # baseline: the same records, the same producer settings, straight from memory
    records = [encode(e) for e in events]
    topic = await _topic(bootstrap)
    producer = build_producer(kafka, "bench-baseline")
    await producer.start()
    started = time.perf_counter()
    futures = [await producer.send(topic, value=v, key=k, headers=h) for k, v, h in records]
    await asyncio.gather(*futures)
    baseline_s = time.perf_counter() - started
    await producer.stop()

    topic = await _topic(bootstrap)
    progress = await _topic(bootstrap, partitions=1)
    relayer = relay.Relay(
        name="bench", pool=pool, store=store, kafka=kafka, topic_of=lambda _t: topic, progress_topic=progress
    )
    await relayer.start()
    started = time.perf_counter()
    published = 0
    while (count := await relayer.publish_batch()) > 0:
        published += count
    relay_s = time.perf_counter() - started
    await relayer.stop()
    await pool.close()
    assert published == n, f"relay published {published} of {n}"
    return {
        "events": n,
        "relay_events_per_s": n / relay_s,
        "baseline_producer_events_per_s": n / baseline_s,
        "ratio": baseline_s / relay_s,
    }


# --- projection runner -------------------------------------------------------------------------------


def raw_consumer(bootstrap: str, topic: str) -> AIOKafkaConsumer:
    """A baseline consumer with ProjectionRunner's settings (read_committed: a partner's transactional
    producer must never make aborted records count), so a ratio measures the runner, not a config difference."""
    return AIOKafkaConsumer(
        topic,
        bootstrap_servers=bootstrap,
        group_id=f"bench-raw-{uuid.uuid4().hex[:6]}",
        enable_auto_commit=False,
        auto_offset_reset="earliest",
        max_poll_records=5000,
        isolation_level="read_committed",
    )


async def _raw_getmany(bootstrap: str, topic: str, n: int) -> float:
    consumer = raw_consumer(bootstrap, topic)
    await consumer.start()
    seen, started = 0, None
    while seen < n:
        batch = await consumer.getmany(timeout_ms=500, max_records=5000)
        if batch and started is None:
            started = time.perf_counter()
        seen += sum(len(v) for v in batch.values())
    elapsed = time.perf_counter() - (started or time.perf_counter())
    await consumer.stop()
    return elapsed


class _TimedRunner(ProjectionRunner):
    """Records when the first batch arrives and when the stored offsets reach the end of the topic.

    Completion is read from the offsets committed with the read model, not from fetched records: after a
    rebalance a runner re-fetches records that offset gating then skips, and those must not count.
    """

    def __init__(self, n: int, pool, **kwargs) -> None:
        super().__init__(pool=pool, **kwargs)
        self.n, self.started, self.finished = n, None, None
        self._timing_pool = pool
        self.done = asyncio.Event()

    async def process_batch(self, batch) -> None:
        if self.started is None:
            self.started = time.perf_counter()
        await super().process_batch(batch)
        committed = await self._timing_pool.fetchval(
            "SELECT coalesce(sum(next_offset), 0) FROM projection_offsets WHERE projection = $1", self.name
        )
        if committed >= self.n:
            self.finished = time.perf_counter()
            self.done.set()


async def _runner(url: str, bootstrap: str, topic: str, n: int, *, dedupe: bool, payload: bool) -> float:
    kafka = KafkaSettings(bootstrap_servers=bootstrap)
    pool = await create_pool(url, f"bench_proj_{uuid.uuid4().hex[:6]}", max_size=4)
    view = SampleTotalsProjection((topic,), read_payload=payload)
    view.dedupe_event_ids = dedupe
    await apply_migrations(pool, "eventkit.projection", projection.MIGRATIONS)
    await apply_migrations(pool, view.name, view.migrations)
    producer = build_producer(kafka, "bench-dlq")
    await producer.start()
    runner = _TimedRunner(
        n,
        projection=view,
        pool=pool,
        kafka=kafka,
        registry=sample_registry(),
        dead_letters=DeadLetterPublisher(producer, "bench"),
        group_id=f"bench-{uuid.uuid4().hex[:6]}",
        max_records=5000,
    )
    await runner.start()
    stop = asyncio.Event()
    task = asyncio.create_task(runner.run(stop))
    await runner.done.wait()
    stop.set()
    await task
    await runner.stop()
    await producer.stop()
    total = await pool.fetchval("SELECT sum(events) FROM sample_totals")
    await pool.close()
    assert total == n, f"read model counted {total} of {n}"
    return runner.finished - runner.started


async def bench_projection(url: str, bootstrap: str, n: int, repeat: int) -> dict:
    topic = await _topic(bootstrap)
    producer = build_producer(KafkaSettings(bootstrap_servers=bootstrap), "bench-feeder")
    await producer.start()
    with Progress(console=console, transient=True) as progress:
        task = progress.add_task("projection: producing the topic", total=n)
        futures = []
        for i, e in enumerate(_events(n, streams=n // 10)):
            k, v, h = encode(e)
            futures.append(await producer.send(topic, value=v, key=k, headers=h))
            if i % 5000 == 4999:
                await asyncio.gather(*futures)
                futures.clear()
                progress.advance(task, 5000)
        await asyncio.gather(*futures)
    await producer.stop()

    variants = {
        "headers only, offset gating": {"dedupe": False, "payload": False},
        "headers only, offset gating + event-id dedupe": {"dedupe": True, "payload": False},
        "payload validated, offset gating + event-id dedupe": {"dedupe": True, "payload": True},
    }
    results: dict = {"events": n, "repeat": repeat, "variants": {}}
    raw_runs = []
    for variant, options in variants.items():
        runs, ratios = [], []
        for _ in range(repeat):
            raw = await _raw_getmany(bootstrap, topic, n)  # baseline next to each run: same topic, same moment
            mine = await _runner(url, bootstrap, topic, n, **options)
            raw_runs.append(n / raw)
            runs.append(n / mine)
            ratios.append(raw / mine)
            console.print(f"  {variant}: {n / mine:,.0f} ev/s, raw getmany {n / raw:,.0f} ev/s, ratio {raw / mine:.2f}")
        results["variants"][variant] = {
            "events_per_s_median": statistics.median(runs),
            "ratio_median": statistics.median(ratios),
            "runs_events_per_s": runs,
            "ratios": ratios,
        }
    results["raw_getmany_events_per_s_median"] = statistics.median(raw_runs)
    return results


def bench_database(stack: ExitStack) -> str:
    """``DATABASE_URL`` if set, else a throw-away local PostgreSQL (fsync=off) kept open by ``stack``."""
    return os.environ.get("DATABASE_URL") or stack.enter_context(LocalPostgres(dbname="bench")).url


def bench_infra(stack: ExitStack) -> tuple[str, str]:
    """(database URL, bootstrap servers): the environment's if set, else the project's own local PostgreSQL
    and Kafka broker, kept running by ``stack`` (every benchmark starts them the same way)."""
    url = bench_database(stack)
    bootstrap = os.environ.get("KAFKA_BOOTSTRAP_SERVERS")
    if not bootstrap:
        libs = ensure_kafka_libs(find_repo_root())
        bootstrap = stack.enter_context(LocalKafka(libs, heap="-Xms1g -Xmx1g")).bootstrap_servers
    console.print(f"broker {bootstrap}, database {url}")
    return url, bootstrap


async def main(args: argparse.Namespace) -> dict:
    with ExitStack() as stack:
        url, bootstrap = bench_infra(stack)
        relay_result = projection_result = None
        if args.only in (None, "relay"):
            relay_result = await bench_relay(url, bootstrap, args.relay_events)
            console.print(f"relay: {relay_result}")
        if args.only in (None, "projection"):
            projection_result = await bench_projection(url, bootstrap, args.events, args.repeat)
        return {
            "when": datetime.now(UTC).isoformat(timespec="seconds"),
            "machine": {"cpus": os.cpu_count(), "python": platform.python_version(), "platform": platform.platform()},
            "postgres": "local, fsync=off" if "DATABASE_URL" not in os.environ else "external",
            "relay": relay_result,
            "projection": projection_result,
        }


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--events", type=int, default=200_000, help="records for the projection benchmark")
    parser.add_argument("--relay-events", type=int, default=100_000, help="events for the relay benchmark")
    parser.add_argument("--repeat", type=int, default=3, help="runs per variant (median reported)")
    parser.add_argument("--only", choices=["relay", "projection"], help="run one benchmark only")
    result = asyncio.run(main(parser.parse_args()))
    save_result(result, "", console, show=True)
