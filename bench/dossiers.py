"""Benchmarks of the dossiers service on a real Kafka broker and PostgreSQL (no assertion on time).

    python -m bench.dossiers [--records N] [--inbound-records N] [--import-workers N] [--inbox-processes N]

- import: ``chiso dossiers import`` (run_import) of N synthetic DVCQG records (bench/dvcqg_gen.py) into a
  fresh schema, vs. the baseline of only reading and mapping the same file in the same process (what any
  import must do before judging and storing);
- inbound: N inbound facts already on a Kafka topic -> DossierInbox (validated, judged, stored with
  their verdicts) -> relay (exactly-once Kafka transactions) -> canonical events on an output topic, both
  components in one process as the service runs them; vs. the baseline of a raw aiokafka ``getmany`` loop
  over the same inbound topic.

Uses KAFKA_BOOTSTRAP_SERVERS / DATABASE_URL when set, else the project's local broker and PostgreSQL.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import platform
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from contextlib import ExitStack
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from aiokafka import AIOKafkaConsumer, TopicPartition

from bench.dvcqg_gen import write_jsonl
from bench.output import save_result
from bench.run import _raw_getmany, _topic, bench_infra, console
from contracts.registry import default_registry
from eventkit import postgres, projection, relay
from eventkit.deadletter import DeadLetterPublisher
from eventkit.heap import settle_heap_for_batches
from eventkit.kafka import build_producer
from eventkit.pg import apply_migrations, create_pool
from eventkit.postgres import PostgresEventStore
from eventkit.projection import ProjectionRunner
from eventkit.settings import KafkaSettings
from eventkit.worktime import WorkingCalendar
from services.dossiers import intake as intake_module
from services.dossiers.compose import build_intake
from services.dossiers.dvcqg import iter_records, map_sync_body
from services.dossiers.importer import run_import
from services.dossiers.inbox import DossierInbox
from services.dossiers.settings import DossiersSettings

SECRET = "bench-only-pseudonym-key-0123456789"


def _settings(schema: str) -> DossiersSettings:
    return DossiersSettings(pseudonym_secret=SECRET, db_schema=schema)


async def bench_import(url: str, n: int, workers: int = 1) -> dict:
    with tempfile.TemporaryDirectory() as tmp:
        path = write_jsonl(Path(tmp) / "export.jsonl", n)
        calendar = WorkingCalendar.load()
        started = time.perf_counter()
        facts = 0
        for _, record in iter_records(path):
            assert not isinstance(record, Exception)
            facts += len(map_sync_body(record, source="b", default_unit=None, due_at_of=calendar.due_at))
        baseline_s = time.perf_counter() - started
        summary = await run_import(
            path, settings=_settings(f"bench_import_{uuid.uuid4().hex[:6]}"), database_url=url, workers=workers
        )
    assert summary.accepted == n, f"imported {summary.accepted} of {n} ({dict(summary.reasons)})"
    return {
        "records": n,
        "workers": workers,
        "facts": facts,
        "events_stored": summary.events,
        "import_records_per_s": n / summary.seconds,
        "import_events_per_s": summary.events / summary.seconds,
        "baseline_read_and_map_records_per_s": n / baseline_s,
        "ratio": baseline_s / summary.seconds,
        "note": "import seconds include loading the unit registry and the calendar (about 1 s, per process)",
    }


def run_stages(path: Path, the_intake: Any, calendar: WorkingCalendar, now: datetime) -> tuple[Any, dict[str, float]]:
    """The intake's pure stages over the records of ``path``, no I/O: (the streams they leave, CPU seconds
    per stage). The streams hold the events an import would append (``_Stream.appended``)."""
    from services.dossiers.domain import overdue_watch  # noqa: PLC0415 - only these modes need them
    from services.dossiers.intake import _Stream  # noqa: PLC0415

    times: dict[str, float] = {}
    t = time.process_time()
    groups = [
        map_sync_body(r, source="b", default_unit=None, due_at_of=calendar.due_at)  # type: ignore[arg-type]
        for _, r in iter_records(path)
    ]
    times["map (DVCQG record -> validated facts)"] = time.process_time() - t
    t = time.process_time()
    prepared = [the_intake._prepare(g) for g in groups]
    times["prepare (units, pseudonym, ids)"] = time.process_time() - t
    streams: dict[str, _Stream] = {}
    seen: set = set()  # type: ignore[type-arg]
    t = time.process_time()
    outcomes = [the_intake._judge_group(p, streams, seen, now) for p in prepared]
    times["judge (decide + verdicts + envelopes)"] = time.process_time() - t
    assert all(o.status == "accepted" for o in outcomes)
    events = [e for o in outcomes for e in o.events]
    t = time.process_time()
    postgres._columns(events)
    times["event rows"] = time.process_time() - t
    t = time.process_time()
    for st in streams.values():
        assert st.unit is not None
        st.state.to_json()
        overdue_watch(st.state, the_intake._judge_of(st.unit.province_code, st.state.agency_code), now)
    times["snapshots"] = time.process_time() - t
    return streams, times


def bench_stages(n: int, repeat: int = 3) -> dict:
    """CPU seconds (process time, best of ``repeat``) per record of the intake's pure stages, no I/O: the
    figure that stays comparable on a machine shared with other work, where wall-clock rates move ±40 %."""
    best: dict[str, float] = {}
    with tempfile.TemporaryDirectory() as tmp:
        path = write_jsonl(Path(tmp) / "export.jsonl", n)
        calendar = WorkingCalendar.load()
        the_intake = build_intake(_settings("unused"), store=None)  # type: ignore[arg-type] - no storage here
        now = datetime.now(UTC)
        for _ in range(repeat):
            _, times = run_stages(path, the_intake, calendar, now)
            for name, seconds in times.items():
                best[name] = min(best.get(name, seconds), seconds)
    result: dict = {name: round(seconds / n * 1e6, 1) for name, seconds in best.items()}
    result["total_us_per_record"] = round(sum(best.values()) / n * 1e6, 1)
    return {"records": n, "cpu_us_per_record": result}


def inbound_records(
    n_records: int, seed: int = 11, start: datetime | None = None
) -> Iterator[tuple[str, str, tuple[bytes, bytes, list[tuple[str, bytes]]]]]:
    """The inbound facts of ``n_records`` generated dossiers as partners send them, a dossier's facts in a row:
    (dossier id, event type, (key, value, headers))."""
    calendar = WorkingCalendar.load()
    namespace = uuid.uuid4()
    with tempfile.TemporaryDirectory() as tmp:
        path = write_jsonl(Path(tmp) / "export.jsonl", n_records, seed=seed, start=start)
        for _, record in iter_records(path):
            assert not isinstance(record, Exception)
            for fact in map_sync_body(record, source="b", default_unit=None, due_at_of=calendar.due_at):
                payload = fact.payload
                dossier_id: str = payload.dossier_id  # type: ignore[attr-defined]
                subject = f"dossier:{dossier_id}"
                headers = [
                    ("content-type", b"application/json"),
                    ("ce_specversion", b"1.0"),
                    ("ce_id", str(uuid.uuid5(namespace, fact.event_id)).encode()),
                    ("ce_source", b"//motcua.bench"),
                    ("ce_type", payload.event_type.encode()),
                    ("ce_subject", subject.encode()),
                    ("ce_time", fact.time.isoformat().encode()),
                    ("ce_dataschema", payload.schema_id().encode()),
                    ("ce_schemaversion", b"1"),
                    ("ce_unitcode", fact.unit_code.encode()),
                    ("ce_provincecode", b"01"),
                    ("ce_partitionkey", subject.encode()),
                ]
                yield dossier_id, payload.event_type, (subject.encode(), payload.model_dump_json().encode(), headers)


async def _produce_inbound(bootstrap: str, n_records: int) -> tuple[str, int]:
    """A fresh inbound topic holding the facts of ``n_records`` generated dossiers, as partners send them."""
    topic = await _topic(bootstrap)
    producer = build_producer(KafkaSettings(bootstrap_servers=bootstrap), "bench-inbound-feeder")
    await producer.start()
    count = 0
    futures = []
    for _, _, (key, value, headers) in inbound_records(n_records):
        futures.append(await producer.send(topic, value=value, key=key, headers=headers))
        count += 1
        if len(futures) >= 5000:
            await asyncio.gather(*futures)
            futures.clear()
    await asyncio.gather(*futures)
    await producer.stop()
    return topic, count


async def _committed_count(bootstrap: str, topic: str) -> int:
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, isolation_level="read_committed")
    await consumer.start()
    try:
        parts = [TopicPartition(topic, p) for p in consumer.partitions_for_topic(topic) or set()]
        if not parts:
            await consumer._client.force_metadata_update()
            parts = [TopicPartition(topic, p) for p in consumer.partitions_for_topic(topic) or set()]
        ends = await consumer.end_offsets(parts)
        return sum(ends.values())
    finally:
        await consumer.stop()


async def _inbox_runner(url: str, bootstrap: str, schema: str, inbound: str, group: str):
    kafka = KafkaSettings(bootstrap_servers=bootstrap)
    pool = await create_pool(url, schema, max_size=6)
    registry = default_registry()
    store = PostgresEventStore(pool, registry)
    inbox = DossierInbox(build_intake(_settings(schema), store), lambda: datetime.now(UTC))
    inbox.topics = (inbound,)
    producer = build_producer(kafka, f"bench-dlq-{uuid.uuid4().hex[:4]}")
    await producer.start()
    runner = ProjectionRunner(
        projection=inbox,
        pool=pool,
        kafka=kafka,
        registry=registry,
        dead_letters=DeadLetterPublisher(producer, "bench.dossiers"),
        group_id=group,
        max_records=5000,
    )
    return pool, store, producer, runner


async def inbox_worker(url: str, bootstrap: str, schema: str, inbound: str, group: str, facts: int) -> None:
    """A second (third...) inbox process in the same consumer group: stops when every fact is consumed."""
    pool, _, producer, runner = await _inbox_runner(url, bootstrap, schema, inbound, group)
    await runner.start()
    settle_heap_for_batches()  # as the service does (services.dossiers.app, eventkit.service)
    stop = asyncio.Event()
    task = asyncio.create_task(runner.run(stop))
    print("ready", flush=True)  # the parent starts its clock once every worker is in the group
    done_sql = "SELECT coalesce(sum(next_offset), 0) FROM projection_offsets WHERE projection = 'dossiers.inbound'"
    while True:  # polled: the offsets are committed by whichever process holds the partition
        if await pool.fetchval(done_sql) >= facts:
            break
        await asyncio.sleep(0.5)
    stop.set()
    await task
    await runner.stop()
    await producer.stop()
    await pool.close()


async def bench_inbound(url: str, bootstrap: str, n_records: int, processes: int = 1) -> dict:
    inbound, facts = await _produce_inbound(bootstrap, n_records)
    raw_s = await _raw_getmany(bootstrap, inbound, facts)
    out = await _topic(bootstrap)
    progress_topic = await _topic(bootstrap, partitions=1)
    kafka = KafkaSettings(bootstrap_servers=bootstrap)
    schema = f"bench_inbound_{uuid.uuid4().hex[:6]}"
    migrate = await create_pool(url, schema, max_size=1)
    for owner, migrations in (
        ("eventkit.store", postgres.MIGRATIONS),
        ("eventkit.relay", relay.MIGRATIONS),
        ("eventkit.projection", projection.MIGRATIONS),
        ("dossiers.intake", intake_module.MIGRATIONS),
    ):
        await apply_migrations(migrate, owner, migrations)
    await migrate.close()
    group = f"bench-{uuid.uuid4().hex[:6]}"
    pool, store, producer, runner = await _inbox_runner(url, bootstrap, schema, inbound, group)
    inbox = runner.projection
    relayer = relay.Relay(
        name="bench-dossiers",
        pool=pool,
        store=store,
        kafka=kafka,
        topic_of=lambda _t: out,
        progress_topic=progress_topic,
    )
    consumed_sql = "SELECT coalesce(sum(next_offset), 0) FROM projection_offsets WHERE projection = $1"
    workers = [
        await asyncio.create_subprocess_exec(
            sys.executable,
            *("-m", "bench.dossiers", "--worker", url, bootstrap, schema, inbound, group, str(facts)),
            stdout=asyncio.subprocess.PIPE,
        )
        for _ in range(processes - 1)
    ]
    for worker in workers:  # started and in the group (importing the service takes a few seconds)
        assert worker.stdout is not None
        line = await asyncio.wait_for(worker.stdout.readline(), timeout=120)
        assert line.strip() == b"ready", f"inbox worker said {line!r}"
    await runner.start()
    await relayer.start()
    settle_heap_for_batches()  # as the service does (services.dossiers.app, eventkit.service)
    stop = asyncio.Event()
    started = time.perf_counter()
    cpu_started = time.process_time()
    # the facts workers took alone before this process joined the group are not counted
    consumed_before = int(await pool.fetchval(consumed_sql, inbox.name))
    tasks = [asyncio.create_task(runner.run(stop)), asyncio.create_task(relayer.run(stop))]
    consumed = stored = 0
    progress: list[tuple[float, int]] = []
    while True:
        await asyncio.sleep(0.5)
        consumed = int(await pool.fetchval(consumed_sql, inbox.name))
        progress.append((time.perf_counter(), consumed))
        if consumed >= facts:
            stored = await pool.fetchval("SELECT count(*) FROM es_events")
            if await _committed_count(bootstrap, out) >= stored:
                break
    elapsed = time.perf_counter() - started
    cpu_s = time.process_time() - cpu_started
    stop.set()
    await asyncio.gather(*tasks)
    await runner.stop()
    await relayer.stop()
    await producer.stop()
    await pool.close()
    for worker in workers:
        await worker.wait()
    # the published count includes Kafka's transaction markers in end offsets: report the stored count
    counted = facts - consumed_before
    steady = _steady_rate(progress, consumed_before, facts)
    return {
        "inbox_processes": processes,
        "records": n_records,
        "inbound_facts": facts,
        "facts_taken_before_the_clock": consumed_before,
        "canonical_events_published": stored,
        "inbound_facts_per_s": counted / elapsed,
        "canonical_events_per_s": stored * counted / facts / elapsed,
        # between 10 % and 90 % of the facts stored: no start-up, no rebalance, no tail of a last partition
        "steady_facts_per_s": steady,
        "steady_canonical_events_per_s": steady * stored / facts,
        "baseline_raw_getmany_per_s": facts / raw_s,
        "ratio": raw_s / elapsed,
        # CPU of this process (inbox + relay; with several inbox processes only the first) per inbound fact:
        # unlike the rates it barely moves when other work shares the machine
        "inbox_process_cpu_us_per_fact": cpu_s / facts * 1e6,
    }


def _steady_rate(progress: list[tuple[float, int]], first: int, last: int) -> float:
    """Facts per second between the samples where 10 % and 90 % of ``first..last`` were stored."""
    low, high = first + (last - first) // 10, first + (last - first) * 9 // 10
    start = next((t, n) for t, n in progress if n >= low)
    end = next((t, n) for t, n in progress if n >= high)
    return (end[1] - start[1]) / (end[0] - start[0]) if end[0] > start[0] else float("nan")


async def main(args: argparse.Namespace) -> dict:
    with ExitStack() as stack:
        url, bootstrap = bench_infra(stack)
        result: dict = {
            "when": datetime.now(UTC).isoformat(timespec="seconds"),
            "machine": {"cpus": os.cpu_count(), "python": platform.python_version(), "platform": platform.platform()},
        }
        if args.only == "stages":
            result["stages"] = bench_stages(args.records)
            console.print(f"stages: {result['stages']}")
            return result
        if args.only in (None, "import"):
            result["import"] = await bench_import(url, args.records)
            console.print(f"import: {result['import']}")
            if args.import_workers > 1:
                result["import_split"] = await bench_import(url, args.records, workers=args.import_workers)
                console.print(f"import, {args.import_workers} processes: {result['import_split']}")
        if args.only in (None, "inbound"):
            result["inbound"] = await bench_inbound(url, bootstrap, args.inbound_records)
            console.print(f"inbound: {result['inbound']}")
            if args.inbox_processes > 1:
                result["inbound_scaled"] = await bench_inbound(
                    url, bootstrap, args.inbound_records, processes=args.inbox_processes
                )
                console.print(f"inbound, {args.inbox_processes} inbox processes: {result['inbound_scaled']}")
        return result


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "--worker":
        db, brokers, worker_schema, topic, worker_group, total = sys.argv[2:8]
        try:
            import uvloop

            uvloop.run(inbox_worker(db, brokers, worker_schema, topic, worker_group, int(total)))
        except ImportError:  # pragma: no cover
            asyncio.run(inbox_worker(db, brokers, worker_schema, topic, worker_group, int(total)))
        sys.exit(0)
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--records", type=int, default=20_000, help="DVCQG records for the import benchmark")
    parser.add_argument("--inbound-records", type=int, default=10_000, help="dossiers whose facts go inbound")
    parser.add_argument(
        "--only", choices=["import", "inbound", "stages"], help="run one benchmark only (stages: CPU, no I/O)"
    )
    parser.add_argument("--inbox-processes", type=int, default=2, help="also run the inbound bench with N inboxes")
    parser.add_argument(
        "--import-workers", type=int, default=2, help="also run the import with N processes (chiso ... --workers N)"
    )
    arguments = parser.parse_args()
    # the services run under uvicorn, which uses uvloop when it is installed (a dependency): so does this
    try:
        import uvloop

        outcome = uvloop.run(main(arguments))
    except ImportError:  # pragma: no cover
        outcome = asyncio.run(main(arguments))
    save_result(outcome, "dossiers", console, show=True)
