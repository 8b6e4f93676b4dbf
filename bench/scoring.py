"""Benchmarks of the scoring service on a real Kafka broker and PostgreSQL (not tests: no assertion on time).

    python -m bench.scoring [--dossiers N] [--rate R] [--seconds S] [--requests N] [--clients C]

Data: canonical dossier events (``dossier received`` + ``dossier resolved`` with its verdicts, built from the
contracts models and encoded as the relay writes them) for the 168 current communes of TP.HCM (79), a month
of receipts in working hours, 8 % late, 30 % online; 12 partitions, key = the dossier's stream id.

- throughput: the scoring dossier projection (per-dossier rows + per (unit, period, counter) sums + the
  subscriptions' dirty keys, as the service runs it) and the unit-activity projection, each in a
  ProjectionRunner, vs. a raw aiokafka ``getmany`` loop over the same topic (same consumer settings), with the
  process's peak RSS while each projection runs (Linux: the kernel's peak count is reset before each run);
  ``--processes N``: also the dossier projection run by N processes of one consumer group (``bench.scoring_group``;
  their memory is not in the peak RSS figure);
- freshness: events produced at a steady rate into a running dossier projection; per event, the time from
  handing it to the producer to the commit of the batch that projected it (p50 / p99);
- province table: ``GET /provinces/79/communes`` (168 communes, read model filled by the throughput run, or
  by its own fill when run alone: ``--phases table``), uvicorn (uvloop + httptools) in its own process,
  C concurrent keep-alive clients from ``bench.httpload`` in another process, vs. a trivial endpoint of the
  same app in the same run; the uncached computation alone; and the same load again while the dossier
  projection writes ``--table-write-rate`` events/s into the served read model.

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
from datetime import UTC, date, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import uvicorn
import uvloop
from fastapi import FastAPI

from bench.output import save_result
from bench.run import _raw_getmany, _TimedRunner, _topic, bench_infra, console
from bench.scoring_group import timed_group
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
from contracts.topics import DOSSIERS_EVENTS, TOPICS
from contracts.wire import encode
from eventkit import projection
from eventkit.deadletter import DeadLetterPublisher
from eventkit.heap import settle_heap_for_batches
from eventkit.http_server import CoalescingHttpToolsProtocol
from eventkit.kafka import build_producer
from eventkit.pg import apply_migrations, create_pool
from eventkit.projection import Batch, Projection, ProjectionRunner
from eventkit.settings import KafkaSettings
from eventkit.units import UnitRegistry
from infra.topics import provision_topics, topic_spec
from services.scoring.app import legacy_district_of, scoring_projections
from services.scoring.configs import load_configs
from services.scoring.domain.periods import PeriodKind
from services.scoring.indicator_api import IndicatorQueries, indicator_router
from services.scoring.projections import DossierIndicatorsProjection, UnitActivityProjection
from services.scoring.rebuild import rebuild
from services.scoring.settings import ScoringSettings
from services.scoring.subscriptions import MIGRATIONS as SUBSCRIPTION_MIGRATIONS
from services.scoring.subscriptions import dossier_change_hook
from services.scoring.table_lane import TableLane

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
    return {
        "dossier indicators (+ dirty keys)": dossiers,
        "unit activity (headers only)": activity,
    }


async def _timed(url: str, schema: str, bootstrap: str, view: Projection, n: int) -> float:
    pool = await _prepared_pool(url, schema)
    producer = build_producer(KafkaSettings(bootstrap_servers=bootstrap), "bench-dlq")
    await producer.start()
    runner = _TimedRunner(n, **_runner_kwargs(pool, bootstrap, view, producer))
    settle_heap_for_batches()  # as the service does once it is set up (services.scoring.app)
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


async def _check_group(url: str, schema: str, dossiers: int) -> None:
    """Every dossier projected once by the group: its rows, and counters that equal a recount of them."""
    conn = await asyncpg.connect(url, server_settings={"search_path": schema})
    try:
        rows = await conn.fetchval("SELECT count(*) FROM dossier_facts")
        off = await conn.fetchval(
            """SELECT count(*) FROM (
                 SELECT unitcode, period_start, counter, round(value::numeric, 6) FROM indicator_counters
                 WHERE abs(value) > 1e-9
                 EXCEPT
                 SELECT d.unitcode, date_trunc('month', c.day)::date, c.k, round(sum(c.v)::numeric, 6)
                 FROM dossier_facts d, unnest(d.contrib_keys, d.contrib_days, d.contrib_values) AS c(k, day, v)
                 GROUP BY 1, 2, 3 HAVING abs(sum(c.v)) > 1e-9) AS x"""
        )
    finally:
        await conn.close()
    if rows != dossiers or off:
        msg = f"the group's read model is wrong: {rows} dossier rows of {dossiers}, {off} counters off a recount"
        raise RuntimeError(msg)


#: the name of the variant run by ``--processes`` members of one consumer group
_GROUP = "dossier indicators (+ dirty keys), {} processes in one consumer group"


async def bench_throughput(
    url: str, bootstrap: str, dossiers: int, repeat: int, processes: int = 1
) -> tuple[dict[str, Any], str]:
    records = dossier_records(dossiers)
    n = len(records)
    topic = await _topic(bootstrap)
    await _produce(bootstrap, topic, records)
    del records  # on the topic now: the memory figures below are the projection's, not the data set's
    out: dict[str, Any] = {"events": n, "dossiers": dossiers, "repeat": repeat, "variants": {}}
    filled = ""
    names = list(_views(topic))
    if processes > 1:
        names.append(_GROUP.format(processes))
    found: dict[str, tuple[list[float], list[float], list[dict[str, float]]]] = {name: ([], [], []) for name in names}
    group_members: list[list[dict[str, float]]] = []  # per run of the group variant: what each member did
    # the variants interleaved round by round: the machine's load drifts within minutes
    for name in [name for _ in range(repeat) for name in names]:
        runs, ratios, memory = found[name]
        raw = await _raw_getmany(bootstrap, topic, n)
        schema = f"bench_scoring_{uuid.uuid4().hex[:6]}"
        before = _rss_mb("VmRSS")
        peak_known = _reset_peak_rss()
        group = name == _GROUP.format(processes)
        if group:
            pool = await _prepared_pool(url, schema)  # the members find the tables ready, as service processes do
            await pool.close()
            mine, members = await timed_group(url, schema, bootstrap, topic, n, processes, partitions=12)
            await _check_group(url, schema, dossiers)
            group_members.append(members)
            console.print(f"    members: {members}")
        else:
            mine = await _timed(url, schema, bootstrap, _views(topic)[name], n)
        if peak_known and not group:  # the members' memory is theirs, not this process's
            # the runner, its consumer's fetch buffers and the pool live in this process, as in the service
            memory.append({"rss_before_mb": before, "peak_rss_mb": _rss_mb("VmHWM")})
        if name.startswith("dossier"):
            filled = schema
        runs.append(n / mine)
        ratios.append(raw / mine)
        peak = f", peak RSS {memory[-1]['peak_rss_mb']:,.0f} MB" if memory and not group else ""
        console.print(f"  {name}: {n / mine:,.0f} ev/s, raw getmany {n / raw:,.0f} ev/s, ratio {raw / mine:.2f}{peak}")
    for name, (runs, ratios, memory) in found.items():
        out["variants"][name] = {
            "events_per_s_median": statistics.median(runs),
            "ratio_median": statistics.median(ratios),
            "runs_events_per_s": runs,
            "ratios": ratios,
            "memory": memory,
        }
        if name == _GROUP.format(processes):
            out["variants"][name]["members"] = group_members
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
    settle_heap_for_batches()  # as the service does once it is set up (services.scoring.app)
    await runner.start()
    stop = asyncio.Event()
    task = asyncio.create_task(runner.run(stop))
    await asyncio.sleep(3)  # the group joins before the clock starts
    producer = build_producer(KafkaSettings(bootstrap_servers=bootstrap), "bench-steady")
    await producer.start()
    sent: dict[bytes, float] = {}
    per_tick = max(1, rate // 100)
    tick = per_tick / rate  # 10 ms ticks, longer below 100/s
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

TABLES = {
    "r06.on_time_rate": "/provinces/79/communes?indicator=r06.on_time_rate&period=month&start=2026-03-01",
    "d766.total": "/provinces/79/communes?indicator=d766.total&period=month&start=2026-03-01",
}


def serve(url: str, schema: str, port: int) -> None:
    """The query API of the scoring service over an existing read model, with the table lane as the service
    installs it, plus a trivial baseline route, on uvicorn with uvloop and httptools (what the service gets),
    no access log."""
    settings = ScoringSettings()
    started: list[IndicatorQueries] = []

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        pool = await create_pool(url, schema, min_size=4, max_size=10)
        queries = IndicatorQueries(pool, load_configs(), settings.d766_default, UnitRegistry.load)
        app.include_router(indicator_router(queries))
        started.append(queries)
        yield
        await pool.close()

    app = FastAPI(lifespan=lifespan)
    app.add_middleware(TableLane, queries=lambda: started[-1] if started else None)

    @app.get("/trivial")
    async def trivial() -> dict[str, bool]:
        return {"ok": True}

    uvicorn.run(
        app,
        host="127.0.0.1",
        port=port,
        log_level="warning",
        loop="uvloop",
        http=CoalescingHttpToolsProtocol,
        access_log=False,
    )


@contextlib.contextmanager
def _server(url: str, schema: str) -> Iterator[tuple[str, int, int]]:
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
        yield base, port, proc.pid
    finally:
        proc.terminate()
        proc.wait(timeout=30)


def _cpu_s(pid: int) -> float:
    """User + system CPU seconds of a process so far (Linux /proc)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


async def _load(port: int, server_pid: int, path: str, requests: int, clients: int) -> dict[str, Any]:
    """``bench.httpload`` in its own process (a lean keep-alive client), and the server's CPU meanwhile."""
    before = _cpu_s(server_pid)
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "bench.httpload", "--port", str(port), "--path", path,
        "--requests", str(requests), "--clients", str(clients),
        stdout=asyncio.subprocess.PIPE,
    )  # fmt: skip
    out, _ = await proc.communicate()
    assert proc.returncode == 0, f"bench.httpload failed ({proc.returncode})"
    result: dict[str, Any] = json.loads(out)
    result["server_cpu_s"] = _cpu_s(server_pid) - before
    console.print(
        f"  {path}: {result['requests_per_s']:,.0f} req/s, p50 {result['p50_ms']:.1f} ms, "
        f"p99 {result['p99_ms']:.1f} ms, max {result['max_ms']:.1f} ms "
        f"(server CPU {result['server_cpu_s']:.1f} s, client CPU {result['client_cpu_s']:.1f} s)"
    )
    return result


async def _computation_ms(url: str, schema: str, indicator: str, runs: int = 20) -> dict[str, float]:
    """One uncached computation of the table (what a cache refresh costs), in this process."""
    pool = await create_pool(url, schema, min_size=2, max_size=4)
    queries = IndicatorQueries(pool, load_configs(), ScoringSettings().d766_default, UnitRegistry.load)
    ask = {"provincecode": PROVINCE, "indicator": indicator, "period": PeriodKind.MONTH, "order": "desc"}
    timings = []
    for _ in range(runs + 1):
        t = time.perf_counter()
        table = await queries._table(**ask, start=date(2026, 3, 1), version=None)  # the uncached path
        timings.append((time.perf_counter() - t) * 1000)
    await pool.close()
    assert len(table.rows) == len(_communes())
    ordered = sorted(timings[1:])
    return {"p50_ms": _pct(ordered, 0.5), "max_ms": ordered[-1], "runs": runs}


async def _steady_writes(url: str, schema: str, bootstrap: str, rate: int, stop: asyncio.Event) -> dict[str, Any]:
    """The dossier projection writing ``rate`` events/s of new March dossiers into the served read model."""
    topic = await _topic(bootstrap)
    records = dossier_records(rate * 300 // 2, seed=11, prefix="W")  # enough for five minutes
    view = _views(topic)["dossier indicators (+ dirty keys)"]
    pool = await create_pool(url, schema, max_size=2)
    dlq = build_producer(KafkaSettings(bootstrap_servers=bootstrap), "bench-dlq")
    await dlq.start()
    runner = ProjectionRunner(**_runner_kwargs(pool, bootstrap, view, dlq))
    await runner.start()
    runner_stop = asyncio.Event()
    task = asyncio.create_task(runner.run(runner_stop))
    producer = build_producer(KafkaSettings(bootstrap_servers=bootstrap), "bench-steady")
    await producer.start()
    per_tick, sent = max(1, rate // 100), 0
    tick = per_tick / rate  # 10 ms ticks, longer below 100/s
    started = time.perf_counter()
    while not stop.is_set() and sent < len(records):
        due = started + (sent // per_tick) * tick
        if (wait := due - time.perf_counter()) > 0:
            await asyncio.sleep(wait)
        for k, v, h in records[sent : sent + per_tick]:
            await producer.send(topic, value=v, key=k, headers=h)
        sent += per_tick
    elapsed = time.perf_counter() - started
    await producer.stop()
    runner_stop.set()
    await task
    await runner.stop()
    await dlq.stop()
    await pool.close()
    return {"target_rate_per_s": rate, "achieved_rate_per_s": sent / elapsed, "events": sent}


async def _rounds(port: int, pid: int, requests: int, clients: int, repeat: int) -> dict[str, Any]:
    """The trivial endpoint and each table, interleaved ``repeat`` times (the machine's load drifts within
    minutes: a ratio is taken within a round, and medians across rounds)."""
    rounds = []
    for _ in range(repeat):
        one: dict[str, Any] = {"trivial_endpoint": await _load(port, pid, "/trivial", requests, clients)}
        for key, path in TABLES.items():
            one[key] = await _load(port, pid, path, requests, clients)
            one[key]["ratio_throughput"] = one[key]["requests_per_s"] / one["trivial_endpoint"]["requests_per_s"]
        rounds.append(one)
    median: dict[str, Any] = {}
    for name in rounds[0]:
        median[name] = {
            m: statistics.median(r[name][m] for r in rounds)
            for m in ("requests_per_s", "p50_ms", "p99_ms", "max_ms", "ratio_throughput")
            if m in rounds[0][name]
        }
        cpu = sum(r[name]["server_cpu_s"] for r in rounds) / sum(r[name]["requests"] for r in rounds)
        median[name]["server_cpu_ms_per_request"] = cpu * 1000
    console.print(f"  medians: {median}")
    return {"median": median, "rounds": rounds}


async def bench_table(
    url: str, schema: str, bootstrap: str, requests: int, clients: int, write_rate: int, repeat: int
) -> dict[str, Any]:
    out: dict[str, Any] = {
        "client": "bench.httpload in its own process: keep-alive HTTP/1.1, closed loop",
        "server": "uvicorn, uvloop + httptools, one process, no access log",
        "computation_uncached": {k: await _computation_ms(url, schema, k) for k in TABLES},
    }
    console.print(f"  uncached computation: {out['computation_uncached']}")
    with _server(url, schema) as (base, port, pid):
        async with httpx.AsyncClient(base_url=base) as check:
            body = (await check.get(TABLES["r06.on_time_rate"])).json()
        assert len(body["rows"]) == len(_communes()), body
        out.update(await _rounds(port, pid, requests, clients, repeat))
        out["one_client"] = await _load(port, pid, TABLES["r06.on_time_rate"], max(500, requests // 20), 1)
        if write_rate:
            stop = asyncio.Event()
            writes = asyncio.create_task(_steady_writes(url, schema, bootstrap, write_rate, stop))
            await asyncio.sleep(5)  # the consumer group joins and the writes are flowing
            during = await _rounds(port, pid, requests, clients, repeat)
            stop.set()
            during["writes"] = await writes
            out["while_projecting"] = during
    return out


async def fill_read_model(url: str, bootstrap: str, dossiers: int) -> str:
    """A dossier read model of ``dossiers`` dossiers for the table phase run on its own."""
    records = dossier_records(dossiers)
    topic = await _topic(bootstrap)
    await _produce(bootstrap, topic, records)
    schema = f"bench_scoring_{uuid.uuid4().hex[:6]}"
    await _timed(url, schema, bootstrap, _views(topic)["dossier indicators (+ dirty keys)"], len(records))
    return schema


async def bench_rebuild(
    url: str, bootstrap: str, dossiers: int, batches: list[int], workers: list[int] | None = None
) -> dict[str, Any]:
    """``chiso scoring rebuild`` as the CLI runs it (every projection of the service, swap) over ``dossiers`` x 2
    canonical dossier events on the real topics of the service, once per batch size (records per projection
    transaction; the first is the baseline the others are compared with, same data, same process): the rate,
    the time it implies for 10 M events (an extrapolation, said so), and the process's peak RSS while it runs.
    ``differing_keys`` is the rebuild's own report: on this fresh database there is no live table, so every
    rebuilt row counts as new."""
    await provision_topics(bootstrap, [topic_spec(t) for t in TOPICS])
    records = dossier_records(dossiers, prefix=f"R{uuid.uuid4().hex[:6]}")
    await _produce(bootstrap, DOSSIERS_EVENTS, records)
    del records
    runs = []
    for batch, processes in [(b, w) for b in batches for w in workers or [1]]:
        measured_peak = _reset_peak_rss()
        report = await rebuild(
            database_url=url,
            schema=f"bench_rebuild_{uuid.uuid4().hex[:6]}",
            kafka=KafkaSettings(bootstrap_servers=bootstrap),
            registry=default_registry(),
            projections=scoring_projections(),
            swap=True,
            batch=batch,
            workers=processes,
        )
        rate = report.events / report.seconds
        runs.append(
            {
                "batch": batch,
                "workers": processes,
                "events": report.events,
                "seconds": round(report.seconds, 1),
                "events_per_s": round(rate),
                "ratio_to_first": round(rate / runs[0]["events_per_s"], 2) if runs else 1.0,
                "extrapolated_10M_minutes": round(10_000_000 / rate / 60, 1),
                "differing_keys": report.differences,
                # this process (with workers: the parent, which waits meanwhile), and each worker process
                "peak_rss_mb": round(_rss_mb("VmHWM"), 1) if measured_peak else None,
                "worker_peak_rss_mb": [round(m, 1) if m else None for m in report.worker_peak_rss_mb],
            }
        )
        console.print(runs[-1])
    return {"runs": runs}


async def main(args: argparse.Namespace) -> dict[str, Any]:
    with ExitStack() as stack:
        url, bootstrap = bench_infra(stack)
        result: dict[str, Any] = {
            "when": datetime.now(UTC).isoformat(timespec="seconds"),
            "machine": {"cpus": os.cpu_count(), "python": platform.python_version(), "platform": platform.platform()},
            "command": " ".join(["python -m bench.scoring", *sys.argv[1:]]),
        }
        phases, filled = set(args.phases.split(",")), ""
        if "throughput" in phases:
            throughput, filled = await bench_throughput(url, bootstrap, args.dossiers, args.repeat, args.processes)
            result["throughput"] = throughput
            console.print(throughput)
        if "freshness" in phases:
            result["freshness"] = await bench_freshness(url, bootstrap, args.rate, args.seconds)
            console.print(result["freshness"])
        if "rebuild" in phases:
            batches = [int(b) for b in args.rebuild_batches.split(",")]
            workers = [int(w) for w in args.rebuild_workers.split(",")]
            result["rebuild"] = await bench_rebuild(url, bootstrap, args.dossiers, batches, workers)
            console.print(result["rebuild"])
        if "table" in phases:
            filled = filled or args.table_schema or await fill_read_model(url, bootstrap, args.dossiers)
            result["province_table"] = await bench_table(
                url, filled, bootstrap, args.requests, args.clients, args.table_write_rate, args.table_repeat
            )
            console.print(result["province_table"])
        return result


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "--serve":
        serve(sys.argv[2], sys.argv[3], int(sys.argv[4]))
        sys.exit(0)
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--dossiers", type=int, default=50_000, help="dossiers (2 events each) for throughput")
    parser.add_argument("--repeat", type=int, default=3, help="runs per projection (median reported)")
    parser.add_argument(
        "--processes",
        type=int,
        default=1,
        help="throughput: also run the dossier projection in N processes of one group",
    )
    parser.add_argument("--rate", type=int, default=1000, help="events/s for the freshness run")
    parser.add_argument("--seconds", type=int, default=20, help="length of the freshness run")
    parser.add_argument("--requests", type=int, default=20_000, help="requests per endpoint for the table run")
    parser.add_argument("--clients", type=int, default=100, help="concurrent clients for the table run")
    parser.add_argument(
        "--phases", default="throughput,freshness,table", help="which phases to run (comma list; also: rebuild)"
    )
    parser.add_argument(
        "--rebuild-batches", default="5000,20000", help="rebuild phase: records per transaction, the first the baseline"
    )
    parser.add_argument(
        "--rebuild-workers", default="1", help="rebuild phase: worker processes to compare (comma list), per batch size"
    )
    parser.add_argument("--table-schema", default="", help="table phase alone: an already filled read model schema")
    parser.add_argument("--table-repeat", type=int, default=3, help="table phase: interleaved rounds (medians)")
    parser.add_argument(
        "--table-write-rate", type=int, default=1000, help="table phase: events/s projected meanwhile (0: skip)"
    )
    result = uvloop.run(main(parser.parse_args()))
    save_result(result, "scoring", console)
