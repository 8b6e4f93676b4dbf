"""Floors: the least CPU this machine spends per record on work every target's design must do, measured on
the real broker and PostgreSQL, and what each throughput target therefore needs in cores at the very least.

    python -m bench.floors [--records 10000] [--events 200000] [--repeat 3]

A floor leaves out everything that could conceivably be optimised away and keeps only what the issue's
design requires (each event a row of the event store; contracts validated as pydantic models; the canonical
records read from Kafka with the runner's consumer settings). Each figure is the best of ``--repeat`` runs.

- **store**: the events of ``--records`` DVCQG records (bench/dvcqg_gen.py), judged by the dossier intake's
  pure stages, appended by the store as an import does (``append_many``, one transaction), then inserted
  again by a server-side ``INSERT ... SELECT`` from a table already in the database (no client, no COPY,
  no lock or version check): the PostgreSQL backend's CPU (``/proc/<pid>/stat``, the database is local)
  per stored event for both; plus one ``es_streams`` row per dossier.
- **python (import)**: per record, in this process: the JSON line parsed (orjson), each fact's contract
  validated from its JSON, each stored event's payload serialised — no mapping, judging or I/O at all.
- **kafka**: the scoring benchmark's canonical dossier events (as the relay writes them) on a 12-partition
  topic, read by a raw ``getmany`` loop with the runner's settings (read_committed, 5,000 records): this
  process's CPU and the broker's (every local Java process running Kafka) per record.
- **python (projection)**: per canonical event: its CloudEvents headers read (``read_headers``), its payload
  validated (``Registry.parse``), and the scoring domain's pure fold (``fold_all``) and contributions.
- **read model**: the dossier projection's own rows for those events (made by its code from memory), inserted
  again server-side into empty tables: PostgreSQL's CPU per event of writing each dossier once.

Then, per target: floor CPU per unit x the target rate = the cores the target needs at the least, against
this machine's ``os.cpu_count()``. A figure for the reasoning, not a test: nothing asserts on time.
"""

from __future__ import annotations

import argparse
import gc
import os
import platform
import tempfile
import time
import uuid
from collections import defaultdict
from collections.abc import Callable
from contextlib import ExitStack
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson

from bench.dossiers import SECRET, run_stages
from bench.dvcqg_gen import write_jsonl
from bench.output import save_result
from bench.run import _topic, bench_infra, console, raw_consumer
from bench.scoring import _prepared_pool, _produce, dossier_records
from bench.scoring_profile import batches as profile_batches
from bench.scoring_profile import offline_runner
from contracts.dossiers import ApologyAssessed, DossierBecameOverdue, DossierResolved
from contracts.registry import default_registry
from contracts.wire import read_headers
from eventkit import postgres
from eventkit.pg import apply_migrations, create_pool
from eventkit.postgres import PostgresEventStore
from eventkit.worktime import WorkingCalendar
from services.dossiers.compose import build_intake
from services.dossiers.settings import DossiersSettings
from services.scoring.domain.dossier import UnitStamp, contributions, fold_all

_TICK = os.sysconf("SC_CLK_TCK")
#: the targets (issues 3 and 5) as (what, units per second, the floor key they are made of)
_IMPORT_RATE = 20_000  # DVCQG records/s
_INBOUND_RATE = 10_000  # canonical events/s
_REBUILD_RATE = 10_000_000 / 180  # events/s: 10 M events in 3 minutes
_PROJECTION_RATE = 100_000  # events/s


def _cpu_of(pids: list[int]) -> float:
    """User + system CPU seconds of ``pids`` so far (0 for a pid that is gone)."""
    total = 0.0
    for pid in pids:
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        total += (int(fields[11]) + int(fields[12])) / _TICK
    return total


def _kafka_pids() -> list[int]:
    """Every local Java process running a Kafka broker."""
    pids = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            cmd = (entry / "cmdline").read_bytes()
        except OSError:
            continue
        if b"java" in cmd and b"kafka.Kafka" in cmd:
            pids.append(int(entry.name))
    return pids


def _best_per(samples: list[float], n: int) -> float:
    """The best of the runs' seconds, in µs per unit."""
    return round(min(samples) / n * 1e6, 2)


# --- the store ------------------------------------------------------------------------------------------

_COLUMNS = (
    "txid, stream_id, version, event_id, type, schema_version, source, occurred_at, unitcode, provincecode,"
    " correlation_id, causation_id, data, legacy_unitcode"
)


async def store_floor(url: str, records: int, repeat: int) -> dict[str, Any]:
    """PostgreSQL CPU per stored event: as the store appends today, and server-side only."""
    settings = DossiersSettings(pseudonym_secret=SECRET, db_schema="unused")
    with tempfile.TemporaryDirectory() as tmp:
        path = write_jsonl(Path(tmp) / "export.jsonl", records)
        streams, _ = run_stages(path, build_intake(settings, store=None), WorkingCalendar.load(), datetime.now(UTC))  # type: ignore[arg-type]
        python = _python_import_floor(path, streams, repeat)
    appends = [(s, st.version, st.appended) for s, st in sorted(streams.items()) if st.appended]
    events = sum(len(a[2]) for a in appends)
    pool = await create_pool(url, f"bench_floor_{uuid.uuid4().hex[:6]}", max_size=1)
    append_s: list[float] = []
    insert_s: list[float] = []
    streams_s: list[float] = []
    try:
        await apply_migrations(pool, "eventkit.store", postgres.MIGRATIONS)
        store = PostgresEventStore(pool, default_registry())
        async with pool.acquire() as conn:
            backend = [await conn.fetchval("SELECT pg_backend_pid()")]
            for _ in range(repeat):
                await conn.execute("TRUNCATE es_events, es_streams")
                before = _cpu_of(backend)
                async with conn.transaction():
                    await store.append_many(conn, appends)
                append_s.append(_cpu_of(backend) - before)
            # the rows as they arrive (payload as text), already inside the database
            await conn.execute(
                f"CREATE TEMP TABLE floor_src AS SELECT {_COLUMNS.replace('data,', 'data::text AS data,')}, position"
                " FROM es_events"
            )
            for _ in range(repeat):
                await conn.execute("TRUNCATE es_events, es_streams")
                before = _cpu_of(backend)
                await conn.execute(
                    f"INSERT INTO es_events ({_COLUMNS}) SELECT {_COLUMNS.replace('data,', 'data::jsonb,')}"
                    " FROM floor_src ORDER BY position"
                )
                middle = _cpu_of(backend)
                await conn.execute(
                    "INSERT INTO es_streams (stream_id, version, last_txid)"
                    " SELECT stream_id, max(version), 1 FROM floor_src GROUP BY stream_id"
                )
                insert_s.append(middle - before)
                streams_s.append(_cpu_of(backend) - middle)
    finally:
        await pool.close()
    return {
        "records": records,
        "events": events,
        "events_per_record": round(events / records, 3),
        "pg_cpu_us_per_event_append_many": _best_per(append_s, events),
        "pg_cpu_us_per_event_insert_select": _best_per(insert_s, events),
        "pg_cpu_us_per_stream_row": _best_per(streams_s, len(appends)),
        "python_import_floor": python,
    }


def _python_import_floor(path: Path, streams: dict[str, Any], repeat: int) -> dict[str, Any]:
    """Per record: parse the line, validate each fact from its JSON, serialise each stored event's payload."""
    lines = [line for line in path.read_bytes().splitlines() if line.strip()]
    events = [e for st in streams.values() for e in st.appended]
    facts = [e.data for e in events if e.type not in _VERDICTS]
    fact_json = [(type(f), f.model_dump_json()) for f in facts]
    timings: dict[str, list[float]] = defaultdict(list)
    for _ in range(repeat):
        timings["parse line (orjson)"].append(_timed(lambda: [orjson.loads(line) for line in lines]))
        timings["validate facts"].append(_timed(lambda: [cls.model_validate_json(raw) for cls, raw in fact_json]))
        timings["serialise event payloads"].append(_timed(lambda: [e.data.model_dump_json() for e in events]))
    n = len(lines)
    out: dict[str, Any] = {name: _best_per(s, n) for name, s in timings.items()}
    out["total_us_per_record"] = round(sum(out.values()), 2)
    out["facts_per_record"] = round(len(facts) / n, 3)
    return out


#: derived by the intake (verdicts), not validated from a partner's JSON
_VERDICTS = frozenset({DossierResolved.event_type, ApologyAssessed.event_type, DossierBecameOverdue.event_type})


def _timed(work: Callable[[], object]) -> float:
    """CPU seconds of ``work`` with the cyclic garbage collector off (a floor leaves its passes out: with
    hundreds of thousands of objects alive they double the cost of validation)."""
    gc.collect()
    gc.disable()
    try:
        started = time.process_time()
        work()
        return time.process_time() - started
    finally:
        gc.enable()


# --- Kafka and the projection's Python --------------------------------------------------------------------


async def kafka_floor(bootstrap: str, events: int, repeat: int) -> dict[str, Any]:
    """CPU per record of reading the canonical topic raw (this process, the broker), and of the projection's
    irreducible Python per event."""
    records = dossier_records(events // 2, prefix="F")
    topic = await _topic(bootstrap)
    await _produce(bootstrap, topic, records)
    broker = _kafka_pids()
    client_s: list[float] = []
    broker_s: list[float] = []
    wall_s: list[float] = []
    for _ in range(repeat):
        consumer = raw_consumer(bootstrap, topic)
        await consumer.start()
        seen = 0
        first = await consumer.getmany(timeout_ms=10_000, max_records=5000)  # the group joined, fetching
        seen += sum(len(v) for v in first.values())
        cpu, broker_cpu, wall = time.process_time(), _cpu_of(broker), time.perf_counter()
        while seen < len(records):
            batch = await consumer.getmany(timeout_ms=500, max_records=5000)
            seen += sum(len(v) for v in batch.values())
        client_s.append(time.process_time() - cpu)
        broker_s.append(_cpu_of(broker) - broker_cpu)
        wall_s.append(time.perf_counter() - wall)
        await consumer.stop()
    n = len(records)  # the first fetch is left out of the timing: per record of the timed part
    timed = n - 5000 if n > 10_000 else n
    return {
        "events": n,
        "raw_getmany_client_cpu_us_per_event": _best_per(client_s, timed),
        "broker_cpu_us_per_event": _best_per(broker_s, timed),
        "raw_getmany_events_per_s": round(timed / min(wall_s)),
        "broker_processes": len(broker),
        "python_projection_floor": _python_projection_floor(records, repeat),
    }


def _python_projection_floor(records: list[tuple[bytes, bytes, list[tuple[str, bytes]]]], repeat: int) -> dict:
    registry = default_registry()
    heads = [read_headers(h) for _, _, h in records]
    payloads = [registry.parse(a.type, a.schemaversion, v) for a, (_, v, _) in zip(heads, records, strict=True)]
    by_dossier: dict[str, list[tuple[UnitStamp, Any]]] = defaultdict(list)
    for a, data in zip(heads, payloads, strict=True):
        by_dossier[a.subject.removeprefix("dossier:")].append((UnitStamp(a.unitcode, a.provincecode), data))

    def fold() -> None:
        for dossier_id, events in by_dossier.items():
            contributions(fold_all(None, dossier_id, events))

    timings: dict[str, list[float]] = defaultdict(list)
    for _ in range(repeat):
        timings["read headers"].append(_timed(lambda: [read_headers(h) for _, _, h in records]))
        timings["validate payload"].append(
            _timed(lambda: [registry.parse(a.type, a.schemaversion, r[1]) for a, r in zip(heads, records, strict=True)])
        )
        timings["fold + contributions (pure domain)"].append(_timed(fold))
    n = len(records)
    out: dict[str, Any] = {name: _best_per(s, n) for name, s in timings.items()}
    out["total_us_per_event"] = round(sum(out.values()), 2)
    return out


# --- the scoring read model ------------------------------------------------------------------------------


async def read_model_floor(url: str, events: int, repeat: int) -> dict[str, Any]:
    """PostgreSQL CPU per event of writing the dossier read model once: the rows the projection made from
    ``events`` canonical events (its own code, batches from memory), inserted again server-side."""
    records = dossier_records(events // 2, prefix="R")
    pool = await _prepared_pool(url, f"bench_floor_rm_{uuid.uuid4().hex[:6]}")
    samples: list[float] = []
    try:
        runner = offline_runner(pool)
        for batch in profile_batches(records):
            await runner.process_batch(batch)
        await runner.stop()
        async with pool.acquire() as conn:
            backend = [await conn.fetchval("SELECT pg_backend_pid()")]
            await conn.execute("CREATE TEMP TABLE facts_src AS SELECT * FROM dossier_facts")
            await conn.execute("CREATE TEMP TABLE counters_src AS SELECT * FROM indicator_counters")
            rows = await conn.fetchval("SELECT count(*) FROM facts_src")
            for _ in range(repeat):
                await conn.execute("TRUNCATE dossier_facts, indicator_counters")
                before = _cpu_of(backend)
                await conn.execute("INSERT INTO dossier_facts SELECT * FROM facts_src")
                await conn.execute("INSERT INTO indicator_counters SELECT * FROM counters_src")
                samples.append(_cpu_of(backend) - before)
    finally:
        await pool.close()
    return {
        "events": len(records),
        "dossier_rows": rows,
        "pg_cpu_us_per_event_write_once": _best_per(samples, len(records)),
    }


# --- the verdicts ---------------------------------------------------------------------------------------


def verdicts(store: dict[str, Any], kafka: dict[str, Any], read_model: dict[str, Any], cores: int) -> dict[str, Any]:
    """Cores each target needs at the least, from the floors (µs of CPU per unit x units per second)."""
    per_record_pg = (
        store["events_per_record"] * store["pg_cpu_us_per_event_insert_select"] + store["pg_cpu_us_per_stream_row"]
    )
    import_us = per_record_pg + store["python_import_floor"]["total_us_per_record"]
    read_us = kafka["raw_getmany_client_cpu_us_per_event"] + kafka["broker_cpu_us_per_event"]
    projection = kafka["python_projection_floor"]
    # the pure fold is our own code (it could be made faster): the rebuild's floor is given without it too
    rebuild_us = read_us + projection["total_us_per_event"] + read_model["pg_cpu_us_per_event_write_once"]
    rebuild_no_fold_us = rebuild_us - projection["fold + contributions (pure domain)"]
    inbound_us = store["pg_cpu_us_per_event_insert_select"] + read_us  # per canonical event: stored, read once
    out = {}
    for name, rate, us in (
        ("import 20k records/s", _IMPORT_RATE, import_us),
        ("inbound 10k events/s", _INBOUND_RATE, inbound_us),
        ("rebuild 10 M events in 3 min", _REBUILD_RATE, rebuild_us),
        ("rebuild 10 M events in 3 min, without the fold", _REBUILD_RATE, rebuild_no_fold_us),
        ("projection 100k events/s, without the fold", _PROJECTION_RATE, rebuild_no_fold_us),
    ):
        need = rate * us / 1e6
        out[name] = {
            "floor_cpu_us_per_unit": round(us, 1),
            "cores_needed_at_least": round(need, 2),
            "machine_cores": cores,
            "possible_here": need < cores,
        }
    return out


async def main(args: argparse.Namespace) -> dict[str, Any]:
    with ExitStack() as stack:
        url, bootstrap = bench_infra(stack)
        store = await store_floor(url, args.records, args.repeat)
        console.print(f"store: {store}")
        kafka = await kafka_floor(bootstrap, args.events, args.repeat)
        console.print(f"kafka: {kafka}")
        read_model = await read_model_floor(url, min(args.events, 40_000), args.repeat)
        console.print(f"read model: {read_model}")
        cores = os.cpu_count() or 1
        return {
            "when": datetime.now(UTC).isoformat(timespec="seconds"),
            "machine": {"cpus": cores, "python": platform.python_version(), "platform": platform.platform()},
            "store": store,
            "kafka": kafka,
            "read_model": read_model,
            "verdicts": verdicts(store, kafka, read_model, cores),
        }


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--records", type=int, default=10_000, help="DVCQG records for the store floor")
    parser.add_argument("--events", type=int, default=200_000, help="canonical events for the Kafka floor")
    parser.add_argument("--repeat", type=int, default=3, help="runs of each measure (the best is kept)")
    arguments = parser.parse_args()
    import uvloop

    save_result(uvloop.run(main(arguments)), "floors", console, show=True)
