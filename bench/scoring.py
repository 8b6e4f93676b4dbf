"""Benchmarks of the scoring service on a real Kafka broker and PostgreSQL (not tests: no assertion on time).

    python -m bench.scoring [--dossiers N] [--rate R] [--seconds S] [--requests N] [--clients C]

Data: canonical dossier events (``dossier received`` + ``dossier resolved`` with its verdicts, built from the
contracts models and encoded as the relay writes them) for the 168 current communes of TP.HCM (79), a month
of receipts in working hours, 8 % late, 30 % online; 12 partitions, key = the dossier's stream id.

- throughput: the scoring dossier projection (per-dossier rows + per (unit, period, counter) sums + the
  subscriptions' dirty keys, as the service runs it) and the unit-activity projection, each in a
  ProjectionRunner, vs. a raw aiokafka ``getmany`` loop over the same topic (same consumer settings), with the
  process's peak RSS while each projection runs (Linux: the kernel's peak count is reset before each run);
- freshness: events produced at a steady rate into a running dossier projection; per event, the time from
  handing it to the producer to the commit of the batch that projected it (p50 / p99);
- province table: ``GET /provinces/79/communes`` (168 communes, read model filled by the throughput run),
  uvicorn in its own process, C concurrent clients, vs. a trivial endpoint of the same app.

Uses KAFKA_BOOTSTRAP_SERVERS / DATABASE_URL when set, else the project's local broker and PostgreSQL.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import platform
import random
import socket
import statistics
import subprocess
import sys
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from contextlib import ExitStack
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import httpx
import uvicorn
import uvloop
from fastapi import FastAPI

from bench.run import _raw_getmany, _TimedRunner, _topic, console
from contracts.dossiers import (
    Channel,
    DossierComponent,
    DossierReceived,
    DossierResolved,
    DossierStatus,
    StatutoryTime,
    TimelinessClass,
    TimeUnit,
)
from contracts.envelope import make_envelope
from contracts.registry import default_registry
from contracts.wire import encode
from eventkit import projection
from eventkit.deadletter import DeadLetterPublisher
from eventkit.kafka import build_producer
from eventkit.pg import apply_migrations, create_pool
from eventkit.projection import Batch, Projection, ProjectionRunner
from eventkit.settings import KafkaSettings
from eventkit.units import UnitRegistry
from infra.local import LocalKafka, LocalPostgres, ensure_kafka_libs, find_repo_root
from services.scoring.app import legacy_district_of
from services.scoring.configs import load_configs
from services.scoring.indicator_api import IndicatorQueries, indicator_router
from services.scoring.projections import DossierIndicatorsProjection, UnitActivityProjection
from services.scoring.settings import ScoringSettings
from services.scoring.subscriptions import MIGRATIONS as SUBSCRIPTION_MIGRATIONS
from services.scoring.subscriptions import dossier_change_hook

VN = timezone(timedelta(hours=7))
PROVINCE = "79"
Record = tuple[bytes | None, bytes | None, list[tuple[str, bytes]]]


def _communes() -> list[str]:
    return [u.code for u in UnitRegistry.load().communes_of(PROVINCE)]


def _received(dossier_id: str, at: datetime, channel: Channel) -> DossierReceived:
    return DossierReceived(
        dossier_id=dossier_id,
        agency_code="UBND",
        channel=channel,
        ma_tthc="1.001193",
        procedure_version="v1",
        applicant_type="individual",
        applicant_ref="b" * 64,
        received_at=at,
        due_at=at + timedelta(days=3),
        statutory_time=StatutoryTime(value=3, unit=TimeUnit.WORKING_DAYS),
        components=(
            DossierComponent(component_code="TP1", digitized=True, reused_from_store=False, reused_digital_data=False),
        ),
    )


def _resolved(dossier_id: str, at: datetime, end: datetime, channel: Channel, late: bool) -> DossierResolved:
    klass = TimelinessClass.LATE if late else TimelinessClass.ON_TIME
    return DossierResolved(
        dossier_id=dossier_id,
        agency_code="UBND",
        ma_tthc="1.001193",
        channel=channel,
        received_at=at,
        due_at=at + timedelta(days=3),
        resolved_at=end,
        final_status=DossierStatus.RESULT_DELIVERED,
        report06_class=klass,
        on_time_766=not late,
        supplement_working_hours=0,
        supplement_requests=0,
        processing_working_hours=30 if late else 12,
        ruleset_version="bench",
        electronic_result=channel is Channel.ONLINE,
    )


def _record(payload: DossierReceived | DossierResolved, unit: str, at: datetime) -> Record:
    envelope = make_envelope(
        payload,
        id=uuid.uuid4(),
        source="urn:chiso:dossiers",
        subject=f"dossier:{payload.dossier_id}",
        time=at,
        unitcode=unit,
        provincecode=PROVINCE,
    )
    key, value, headers = encode(envelope)
    return key, value, list(headers)


def dossier_records(n: int, seed: int = 79, prefix: str = "B") -> list[Record]:
    """``n`` dossiers of March 2026 over the province's communes: each received, then resolved."""
    rng = random.Random(seed)
    communes = _communes()
    out: list[Record] = []
    for i in range(n):
        unit = communes[i % len(communes)]
        day = datetime(2026, 3, 2 + rng.randrange(26), 8 + rng.randrange(9), rng.randrange(60), tzinfo=VN)
        channel = Channel.ONLINE if rng.random() < 0.3 else Channel.DIRECT
        late = rng.random() < 0.08
        end = day + timedelta(days=4 if late else 2)
        dossier_id = f"{prefix}{i:07d}"
        out.append(_record(_received(dossier_id, day, channel), unit, day))
        out.append(_record(_resolved(dossier_id, day, end, channel, late), unit, end))
    return out


async def _produce(bootstrap: str, topic: str, records: list[Record]) -> None:
    producer = build_producer(KafkaSettings(bootstrap_servers=bootstrap), "bench-feeder")
    await producer.start()
    futures = []
    for i, (k, v, h) in enumerate(records):
        futures.append(await producer.send(topic, value=v, key=k, headers=h))
        if i % 5000 == 4999:
            await asyncio.gather(*futures)
            futures.clear()
    await asyncio.gather(*futures)
    await producer.stop()


def _runner_kwargs(url_pool: Any, bootstrap: str, view: Projection, producer: Any) -> dict[str, Any]:
    return {
        "projection": view,
        "pool": url_pool,
        "kafka": KafkaSettings(bootstrap_servers=bootstrap),
        "registry": default_registry(),
        "dead_letters": DeadLetterPublisher(producer, view.name),
        "group_id": f"bench-{uuid.uuid4().hex[:6]}",
        "max_records": 5000,
    }


async def _prepared_pool(url: str, schema: str) -> Any:
    pool = await create_pool(url, schema, max_size=4)
    await apply_migrations(pool, "eventkit.projection", projection.MIGRATIONS)
    await apply_migrations(pool, "scoring.subscriptions", SUBSCRIPTION_MIGRATIONS)
    for view in (DossierIndicatorsProjection(), UnitActivityProjection()):
        await apply_migrations(pool, view.name, view.migrations)
    return pool


def _views(topic: str) -> dict[str, Projection]:
    dossiers = DossierIndicatorsProjection(legacy_district_of, dossier_change_hook(lambda: datetime.now(UTC)))
    dossiers.topics = (topic,)
    activity = UnitActivityProjection()
    activity.topics = (topic,)  # type: ignore[assignment]  # the bench topic instead of the three canonical ones
    return {"dossier indicators (+ dirty keys)": dossiers, "unit activity (headers only)": activity}


async def _timed(url: str, schema: str, bootstrap: str, view: Projection, n: int) -> float:
    pool = await _prepared_pool(url, schema)
    producer = build_producer(KafkaSettings(bootstrap_servers=bootstrap), "bench-dlq")
    await producer.start()
    runner = _TimedRunner(n, **_runner_kwargs(pool, bootstrap, view, producer))
    await runner.start()
    stop = asyncio.Event()
    task = asyncio.create_task(runner.run(stop))
    await runner.done.wait()
    stop.set()
    await task
    await runner.stop()
    await producer.stop()
    await pool.close()
    assert runner.finished is not None
    assert runner.started is not None
    return float(runner.finished - runner.started)


def _rss_mb(field: str) -> float:
    """The process's resident set (``VmRSS``) or its peak since the last reset (``VmHWM``), in MB."""
    status = Path("/proc/self/status").read_text()
    return int(next(line.split()[1] for line in status.splitlines() if line.startswith(f"{field}:"))) / 1024


def _reset_peak_rss() -> bool:
    """Restart the kernel's peak-RSS count (Linux ``clear_refs`` 5); False where that is not available."""
    try:
        Path("/proc/self/clear_refs").write_text("5")
    except OSError:
        return False
    return True


async def bench_throughput(url: str, bootstrap: str, dossiers: int, repeat: int) -> tuple[dict[str, Any], str]:
    records = dossier_records(dossiers)
    n = len(records)
    topic = await _topic(bootstrap)
    await _produce(bootstrap, topic, records)
    del records  # on the topic now: the memory figures below are the projection's, not the data set's
    out: dict[str, Any] = {"events": n, "dossiers": dossiers, "repeat": repeat, "variants": {}}
    filled = ""
    for name in _views(topic):
        runs, ratios, memory = [], [], []
        for _ in range(repeat):
            raw = await _raw_getmany(bootstrap, topic, n)
            schema = f"bench_scoring_{uuid.uuid4().hex[:6]}"
            before = _rss_mb("VmRSS")
            peak_known = _reset_peak_rss()
            mine = await _timed(url, schema, bootstrap, _views(topic)[name], n)
            if peak_known:
                # the runner, its consumer's fetch buffers and the pool live in this process, as in the service
                memory.append({"rss_before_mb": before, "peak_rss_mb": _rss_mb("VmHWM")})
            if name.startswith("dossier"):
                filled = schema
            runs.append(n / mine)
            ratios.append(raw / mine)
            peak = f", peak RSS {memory[-1]['peak_rss_mb']:,.0f} MB" if memory else ""
            console.print(
                f"  {name}: {n / mine:,.0f} ev/s, raw getmany {n / raw:,.0f} ev/s, ratio {raw / mine:.2f}{peak}"
            )
        out["variants"][name] = {
            "events_per_s_median": statistics.median(runs),
            "ratio_median": statistics.median(ratios),
            "runs_events_per_s": runs,
            "ratios": ratios,
            "memory": memory,
        }
    return out, filled


# --- freshness ---------------------------------------------------------------------------------------


class _CommitClock(ProjectionRunner):
    """Records, for every record key of a batch, when the batch's transaction had committed."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.committed: dict[bytes, float] = {}

    async def process_batch(self, batch: Batch) -> None:
        await super().process_batch(batch)
        now = time.perf_counter()
        for records in batch.values():
            for r in records:
                if r.key is not None:
                    self.committed.setdefault(r.key, now)


def _pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


async def bench_freshness(url: str, bootstrap: str, rate: int, seconds: int) -> dict[str, Any]:
    total = rate * seconds
    records = [r for r in dossier_records(total, seed=7, prefix="F") if b"received" in dict(r[2])["ce_type"]]
    topic = await _topic(bootstrap)
    view = _views(topic)["dossier indicators (+ dirty keys)"]
    pool = await _prepared_pool(url, f"bench_fresh_{uuid.uuid4().hex[:6]}")
    dlq = build_producer(KafkaSettings(bootstrap_servers=bootstrap), "bench-dlq")
    await dlq.start()
    kwargs = _runner_kwargs(pool, bootstrap, view, dlq)
    kwargs["max_records"] = 5000
    runner = _CommitClock(**kwargs)
    await runner.start()
    stop = asyncio.Event()
    task = asyncio.create_task(runner.run(stop))
    await asyncio.sleep(3)  # the group joins before the clock starts
    producer = build_producer(KafkaSettings(bootstrap_servers=bootstrap), "bench-steady")
    await producer.start()
    sent: dict[bytes, float] = {}
    tick, per_tick = 0.01, max(1, rate // 100)
    started = time.perf_counter()
    futures = []
    for i in range(0, len(records), per_tick):
        due = started + (i // per_tick) * tick
        if (wait := due - time.perf_counter()) > 0:
            await asyncio.sleep(wait)
        for k, v, h in records[i : i + per_tick]:
            assert k is not None
            sent[k] = time.perf_counter()
            futures.append(await producer.send(topic, value=v, key=k, headers=h))
    await asyncio.gather(*futures)
    produced_s = time.perf_counter() - started
    for _ in range(600):
        if len(runner.committed.keys() & sent.keys()) >= len(sent):
            break
        await asyncio.sleep(0.05)
    stop.set()
    await task
    await runner.stop()
    await producer.stop()
    await dlq.stop()
    stored = await pool.fetchval("SELECT count(*) FROM dossier_facts")
    await pool.close()
    latencies = [(runner.committed[k] - t) * 1000 for k, t in sent.items() if k in runner.committed]
    assert stored == len(sent), f"read model has {stored} of {len(sent)} dossiers"
    return {
        "events": len(sent),
        "target_rate_per_s": rate,
        "achieved_rate_per_s": len(sent) / produced_s,
        "p50_ms": _pct(latencies, 0.50),
        "p99_ms": _pct(latencies, 0.99),
        "max_ms": max(latencies),
        "measured": "producer.send() called -> the projection's batch transaction committed (runner in-process)",
    }


# --- province table ----------------------------------------------------------------------------------


def serve(url: str, schema: str, port: int) -> None:
    """The query API of the scoring service over an existing read model, plus a trivial baseline route."""
    settings = ScoringSettings()

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        pool = await create_pool(url, schema, min_size=4, max_size=10)
        queries = IndicatorQueries(pool, load_configs(), settings.d766_default, UnitRegistry.load)
        app.include_router(indicator_router(queries))
        yield
        await pool.close()

    app = FastAPI(lifespan=lifespan)

    @app.get("/trivial")
    async def trivial() -> dict[str, bool]:
        return {"ok": True}

    uvicorn.run(app, host="127.0.0.1", port=port, log_level="warning")


@contextlib.contextmanager
def _server(url: str, schema: str) -> Iterator[str]:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = int(s.getsockname()[1])
    proc = subprocess.Popen([sys.executable, "-m", "bench.scoring", "--serve", url, schema, str(port)])
    base = f"http://127.0.0.1:{port}"
    try:
        for _ in range(300):
            try:
                if httpx.get(f"{base}/trivial").status_code == 200:
                    break
            except httpx.TransportError:
                pass
            time.sleep(0.1)
        yield base
    finally:
        proc.terminate()
        proc.wait(timeout=30)


async def _load(base: str, path: str, requests: int, clients: int) -> dict[str, Any]:
    latencies: list[float] = []
    queue = iter(range(requests))
    limits = httpx.Limits(max_connections=clients, max_keepalive_connections=clients)
    async with httpx.AsyncClient(base_url=base, limits=limits, timeout=60) as client:
        body = (await client.get(path)).json()  # warm-up, and the answer's shape

        async def worker() -> None:
            for _ in queue:
                t = time.perf_counter()
                response = await client.get(path)
                latencies.append((time.perf_counter() - t) * 1000)
                assert response.status_code == 200, response.text[:300]

        started = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(clients)))
        elapsed = time.perf_counter() - started
    return {
        "requests": requests,
        "clients": clients,
        "requests_per_s": requests / elapsed,
        "p50_ms": _pct(latencies, 0.50),
        "p99_ms": _pct(latencies, 0.99),
        "rows": len(body.get("rows", [])) if isinstance(body, dict) else None,
    }


async def bench_table(url: str, schema: str, requests: int, clients: int) -> dict[str, Any]:
    table = f"/provinces/{PROVINCE}/communes?indicator=r06.on_time_rate&period=month&start=2026-03-01"
    with _server(url, schema) as base:
        baseline = await _load(base, "/trivial", requests, clients)
        mine = await _load(base, table, requests, clients)
        sequential = await _load(base, table, max(200, requests // 10), 1)
    assert mine["rows"] == len(_communes()), mine
    return {
        "path": table,
        "table": mine,
        "table_one_client": sequential,
        "trivial_endpoint": baseline,
        "ratio_throughput": mine["requests_per_s"] / baseline["requests_per_s"],
    }


async def main(args: argparse.Namespace) -> dict[str, Any]:
    with ExitStack() as stack:
        url = os.environ.get("DATABASE_URL")
        if not url:
            url = stack.enter_context(LocalPostgres(dbname="bench")).url
        bootstrap = os.environ.get("KAFKA_BOOTSTRAP_SERVERS")
        if not bootstrap:
            libs = ensure_kafka_libs(find_repo_root())
            bootstrap = stack.enter_context(LocalKafka(libs, heap="-Xms1g -Xmx1g")).bootstrap_servers
        console.print(f"broker {bootstrap}, database {url}")
        result: dict[str, Any] = {
            "when": datetime.now(UTC).isoformat(timespec="seconds"),
            "machine": {"cpus": os.cpu_count(), "python": platform.python_version(), "platform": platform.platform()},
            "command": " ".join(["python -m bench.scoring", *sys.argv[1:]]),
        }
        throughput, filled = await bench_throughput(url, bootstrap, args.dossiers, args.repeat)
        result["throughput"] = throughput
        console.print(throughput)
        result["freshness"] = await bench_freshness(url, bootstrap, args.rate, args.seconds)
        console.print(result["freshness"])
        result["province_table"] = await bench_table(url, filled, args.requests, args.clients)
        console.print(result["province_table"])
        return result


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "--serve":
        serve(sys.argv[2], sys.argv[3], int(sys.argv[4]))
        sys.exit(0)
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--dossiers", type=int, default=50_000, help="dossiers (2 events each) for throughput")
    parser.add_argument("--repeat", type=int, default=3, help="runs per projection (median reported)")
    parser.add_argument("--rate", type=int, default=1000, help="events/s for the freshness run")
    parser.add_argument("--seconds", type=int, default=20, help="length of the freshness run")
    parser.add_argument("--requests", type=int, default=3000, help="requests per endpoint for the table run")
    parser.add_argument("--clients", type=int, default=100, help="concurrent clients for the table run")
    result = uvloop.run(main(parser.parse_args()))
    out = Path(__file__).resolve().parent / "results"
    out.mkdir(exist_ok=True)
    path = out / f"scoring-{result['when'][:19].replace(':', '')}.json"
    path.write_text(json.dumps(result, indent=2) + "\n")
    console.print(f"written to {path}")
