"""Benchmark of the surveys service's HTTP way in on the real PostgreSQL and Kafka (no assertion on time).

    python -m bench.surveys [--requests N] [--connections C]

- service: the whole surveys service (``services.surveys.app.build_app``: group commit, relay, inbox) in
  its own process under uvicorn, as ``chiso run surveys`` runs it; N ``POST /v1/responses`` with distinct
  QR-link tokens (one dossier each, the full QĐ 1001-2023 answer set), sent over C keep-alive connections
  by a minimal HTTP/1.1 client in this process. Afterwards the store must hold exactly N responses.
- baseline: the same server stack (uvicorn + FastAPI, one process) with one trivial endpoint that parses
  the same body into a pydantic model and answers 201; same client, same requests. The ratio says how
  much of the cost is the service's own work (token check, validation, unit lookup, group commit).

Client, server, PostgreSQL and Kafka share the machine's cores. Uses DATABASE_URL / KAFKA_BOOTSTRAP_SERVERS
(``eval "$(chiso infra env)"``).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import platform
import re
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, cast
from urllib.parse import urlsplit

import asyncpg
import uvloop

from bench.output import save_result

KEY = "bench-surveys-link-key-0123456789"
#: submissions before the timed run: the stack warms up, and the store holds enough rows for PostgreSQL's
#: statistics to choose the index plans a service with history gets (see the ANALYZE in run_one)
WARMUP = 1000
SIPAS_ANSWERS: dict[str, Any] = {
    **dict.fromkeys(
        [
            "access.waiting_area_sufficient",
            "access.equipment_sufficient",
            "access.equipment_modern",
            "access.equipment_easy",
            "procedure.posted_fully",
            "procedure.posted_accurately",
            "procedure.components_lawful",
            "procedure.fees_lawful",
            "procedure.time_limit_lawful",
            "civil_servant.polite",
            "civil_servant.listens",
            "civil_servant.answers_fully",
            "civil_servant.guides_thoroughly",
            "civil_servant.guides_clearly",
            "civil_servant.follows_rules",
            "result.lawful",
            "result.information_complete",
            "result.information_accurate",
        ],
        1,
    ),
    "access.satisfaction": 4,
    "procedure.satisfaction": 4,
    "civil_servant.satisfaction": 5,
    "result.satisfaction": 4,
    "overall.satisfaction": 4,
    "integrity.harassed": "no",
    "integrity.bribe_asked": "no",
    "expectations": ["staff_attitude", "shorter_processing_time"],
}


def service_app() -> Any:
    """The surveys service as ``chiso run surveys`` builds it (an app factory: uvicorn workers import it)."""
    from eventkit.service import ServiceSettings  # noqa: PLC0415
    from eventkit.settings import DatabaseSettings, KafkaSettings, LogSettings  # noqa: PLC0415
    from services.surveys.app import build_app  # noqa: PLC0415
    from services.surveys.settings import SurveysSettings  # noqa: PLC0415

    schema = os.environ["BENCH_SURVEYS_SCHEMA"]
    shell = ServiceSettings(
        "surveys",
        schema,
        KafkaSettings(),
        DatabaseSettings(url=os.environ["DATABASE_URL"]),
        LogSettings(level="WARNING", access=False),  # as a busy deployment runs (README: LOG_ACCESS)
    )
    roles = os.environ.get("BENCH_SURVEYS_ROLES", "api,inbox,relay")
    return build_app(SurveysSettings(token_secret=KEY, db_schema=schema, roles=roles), shell)


def serve(kind: str, port: int, schema: str, workers: int, roles: str = "api,inbox,relay") -> None:
    """The server process: the surveys service (``workers`` processes, with ``roles``), or the baseline app."""
    import uvicorn  # noqa: PLC0415

    from eventkit.http_server import CoalescingHttpToolsProtocol  # noqa: PLC0415

    os.environ["BENCH_SURVEYS_SCHEMA"] = schema
    os.environ["BENCH_SURVEYS_ROLES"] = roles
    if kind == "baseline":
        uvicorn.run(
            _baseline_app(),
            host="127.0.0.1",
            port=port,
            log_level="warning",
            access_log=False,
            http=CoalescingHttpToolsProtocol,
        )
        return
    uvicorn.run(
        "bench.surveys:service_app",
        factory=True,
        workers=workers,
        host="127.0.0.1",
        port=port,
        log_level="warning",
        access_log=False,
        http=CoalescingHttpToolsProtocol,
    )


def _baseline_app() -> Any:
    """Same stack, trivial work: the request body parsed into the API's model, a constant answer."""
    from fastapi import FastAPI  # noqa: PLC0415
    from fastapi.responses import JSONResponse  # noqa: PLC0415

    from services.surveys.submissions import ResponseRequest  # noqa: PLC0415

    app = FastAPI()

    async def accept(request: ResponseRequest) -> JSONResponse:
        return JSONResponse({"status": "accepted", "response_id": str(uuid.uuid4())}, status_code=201)

    async def ready() -> dict[str, str]:
        return {"status": "ok"}

    # annotations given as objects: this module's `from __future__ import annotations` would leave a name
    # FastAPI cannot resolve (the model is imported here, not at module level)
    accept.__annotations__ = {"request": ResponseRequest, "return": JSONResponse}
    ready.__annotations__ = {"return": dict[str, str]}
    app.post("/v1/responses", status_code=201)(accept)
    app.get("/ready")(ready)
    return app


def _requests(n: int) -> list[bytes]:
    from services.surveys.tokens import LinkClaims, LinkSigner  # noqa: PLC0415

    signer = LinkSigner(KEY.encode())
    expires = datetime.now(UTC) + timedelta(days=1)
    run = uuid.uuid4().hex[:8]
    out = []
    for i in range(n):
        token = signer.issue(LinkClaims(f"BENCH-{run}-{i:07d}", "00004", "qr", expires, None, "1.001776"))
        body = json.dumps(
            {
                "token": token,
                "answers": SIPAS_ANSWERS,
                "respondent": {"type": "citizen", "age_band": "30-39", "sex": "male"},
            }
        ).encode()
        head = (
            f"POST /v1/responses HTTP/1.1\r\nHost: bench\r\nContent-Type: application/json\r\n"
            f"Content-Length: {len(body)}\r\n\r\n"
        ).encode()
        out.append(head + body)
    return out


class _KeepAlive(asyncio.Protocol):
    """One keep-alive HTTP/1.1 connection sending one request at a time (no pipelining: latency per request).

    A protocol rather than streams: the client shares the 2 cores with the server, PostgreSQL and Kafka, so
    it must cost as little as it can (its CPU seconds are reported next to theirs).
    """

    def __init__(self, queue: Iterator[bytes], statuses: dict[int, int], latencies: list[float]) -> None:
        self._queue = queue
        self._statuses = statuses
        self._latencies = latencies
        self._buffer = b""
        self._need = -1  # bytes of the whole response once its head is read
        self._started = 0.0
        self._transport: asyncio.Transport | None = None
        self.done: asyncio.Future[None] = asyncio.get_running_loop().create_future()

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self._transport = cast("asyncio.Transport", transport)  # uvloop's transports do not subclass it
        self._send_next()

    def _send_next(self) -> None:
        assert self._transport is not None
        request = next(self._queue, None)
        if request is None:
            self._transport.close()
            return
        self._started = time.perf_counter()
        self._transport.write(request)

    def data_received(self, data: bytes) -> None:
        self._buffer += data
        if self._need < 0:
            end = self._buffer.find(b"\r\n\r\n")
            if end < 0:
                return
            found = _CONTENT_LENGTH.search(self._buffer, 0, end + 2)
            if found is None:
                self.done.set_exception(RuntimeError("response without Content-Length"))
                return
            self._need = end + 4 + int(found.group(1))
        if len(self._buffer) < self._need:
            return
        self._latencies.append(time.perf_counter() - self._started)
        status = int(self._buffer[9:12])
        self._statuses[status] = self._statuses.get(status, 0) + 1
        self._buffer = self._buffer[self._need :]
        self._need = -1
        self._send_next()

    def connection_lost(self, exc: Exception | None) -> None:
        if not self.done.done():
            if exc is None:
                self.done.set_result(None)
            else:
                self.done.set_exception(exc)


_CONTENT_LENGTH = re.compile(rb"\r\n[Cc]ontent-[Ll]ength:[ \t]*(\d+)")


async def _client(port: int, requests: list[bytes], connections: int) -> tuple[float, dict[int, int], list[float]]:
    """Send every request over ``connections`` keep-alive connections; (seconds, status counts, latencies)."""
    queue = iter(requests)
    statuses: dict[int, int] = {}
    latencies: list[float] = []
    loop = asyncio.get_running_loop()
    started = time.perf_counter()
    opened = [
        await loop.create_connection(lambda: _KeepAlive(queue, statuses, latencies), "127.0.0.1", port)
        for _ in range(connections)
    ]
    await asyncio.gather(*(protocol.done for _, protocol in opened))
    return time.perf_counter() - started, statuses, latencies


async def _wait_ready(port: int, within_s: float = 60) -> None:
    deadline = time.monotonic() + within_s
    while time.monotonic() < deadline:
        try:
            reader, writer = await asyncio.open_connection("127.0.0.1", port)
            writer.write(b"GET /ready HTTP/1.1\r\nHost: bench\r\n\r\n")
            head = await reader.readuntil(b"\r\n\r\n")
            writer.close()
            if head[9:12] == b"200":
                return
        except OSError:
            pass
        await asyncio.sleep(0.2)
    raise RuntimeError("server not ready")


async def _batches(port: int) -> dict[str, float]:
    """Batches so far per component (``chiso_batch_seconds_count`` of /metrics): group commits, relay batches."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        writer.write(b"GET /metrics HTTP/1.1\r\nHost: bench\r\nConnection: close\r\n\r\n")
        text = (await reader.read()).decode()
    finally:
        writer.close()
    found = re.findall(r'^chiso_batch_seconds_count\{component="([^"]+)"\} ([0-9.e+]+)$', text, re.MULTILINE)
    return {component: float(count) for component, count in found}


async def _all_batches(ports: list[int]) -> dict[str, float]:
    totals: dict[str, float] = {}
    for port in ports:
        for component, count in (await _batches(port)).items():
            totals[component] = totals.get(component, 0) + count
    return totals


def _cpu_seconds(pid: int, *, reaped_children: bool = False) -> float:
    """User + system CPU seconds of a process (Linux /proc); with its reaped children's when asked."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    ticks = int(fields[11]) + int(fields[12])
    if reaped_children:  # e.g. PostgreSQL backends that ended during the run
        ticks += int(fields[13]) + int(fields[14])
    return ticks / os.sysconf("SC_CLK_TCK")


def _tree_cpu_seconds(pid: int) -> float:
    """CPU seconds of a process and its children (uvicorn's workers; the postmaster's backends)."""
    try:
        total = _cpu_seconds(pid, reaped_children=True)
        children = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
    except OSError:  # ended meanwhile
        return 0.0
    return total + sum(_tree_cpu_seconds(int(child)) for child in children)


def _listener_pid(port: int) -> int | None:
    """The process listening on 127.0.0.1:``port`` (this run's PostgreSQL or Kafka, not another one's).

    The machine may run other engineers' brokers and databases: counting every ``postgres`` process would
    add their CPU to ours.
    """
    inodes: set[str] = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        with contextlib.suppress(OSError):
            for line in Path(table).read_text().splitlines()[1:]:
                fields = line.split()
                if fields[3] == "0A" and int(fields[1].rsplit(":", 1)[1], 16) == port:
                    inodes.add(f"socket:[{fields[9]}]")
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        with contextlib.suppress(OSError):
            for fd in (entry / "fd").iterdir():
                if str(fd.readlink()) in inodes:
                    return int(entry.name)
    return None


def _infra_pids() -> dict[str, int]:
    """PostgreSQL's postmaster and the Kafka broker this run uses (from DATABASE_URL / KAFKA_BOOTSTRAP_SERVERS)."""
    database = urlsplit(os.environ.get("DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/chiso"))
    broker = os.environ.get("KAFKA_BOOTSTRAP_SERVERS", "127.0.0.1:9092").split(",")[0]
    found = {"postgres": _listener_pid(database.port or 5432), "kafka": _listener_pid(int(broker.rsplit(":", 1)[1]))}
    return {name: pid for name, pid in found.items() if pid is not None}


def _infra_cpu(pids: dict[str, int]) -> dict[str, float]:
    return {name: _tree_cpu_seconds(pid) for name, pid in pids.items()}


def _free_port() -> int:
    import socket  # noqa: PLC0415

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _start_server(kind: str, port: int, schema: str, workers: int, roles: str) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [
            sys.executable,
            "-m",
            "bench.surveys",
            "--serve",
            kind,
            "--port",
            str(port),
            "--schema",
            schema,
            "--workers",
            str(workers),
            "--roles",
            roles,
        ],
        env=os.environ.copy(),
    )


async def run_one(
    kind: str,
    n: int,
    connections: int,
    database_url: str,
    workers: int = 1,
    warmup_requests: int = WARMUP,
    *,
    split: bool = False,
) -> dict[str, Any]:
    schema = f"bench_surveys_{uuid.uuid4().hex[:6]}"
    port = _free_port()
    # --split: the API in one process (SURVEYS_ROLES=api), the inbox and the relay in another
    split = split and kind == "service"
    server = _start_server(kind, port, schema, workers, "api" if split else "api,inbox,relay")
    others_port = _free_port() if split else None
    others = _start_server(kind, others_port, schema, 1, "inbox,relay") if others_port else None
    try:
        await _wait_ready(port)
        if others_port:
            await _wait_ready(others_port)
        warmup = _requests(warmup_requests)
        await _client(port, warmup, connections)
        if kind == "service":
            # a running service's tables have statistics (autovacuum analyzes them after the first few dozen
            # rows); a schema created for this run has none until then, and the plans PostgreSQL caches for the
            # service's prepared statements meanwhile scan whole tables (measured: a sequential scan of
            # es_events and es_streams per group commit, growing with the table). Analyze as autovacuum would.
            conn = await asyncpg.connect(database_url)
            try:
                await conn.execute(f"ANALYZE {schema}.es_events, {schema}.es_streams")
            finally:
                await conn.close()
        requests = _requests(n)
        infra = _infra_pids()
        ports = [port] if others_port is None else [port, others_port]
        batches_before = await _all_batches(ports) if kind == "service" else {}

        def others_cpu() -> float:
            return _tree_cpu_seconds(others.pid) if others else 0.0

        before = (_tree_cpu_seconds(server.pid), _cpu_seconds(os.getpid()), _infra_cpu(infra), others_cpu())
        seconds, statuses, latencies = await _client(port, requests, connections)
        after = (_tree_cpu_seconds(server.pid), _cpu_seconds(os.getpid()), _infra_cpu(infra), others_cpu())
        if kind == "service":
            await asyncio.sleep(1)  # the relay's last batch
            batches = {k: v - batches_before.get(k, 0) for k, v in (await _all_batches(ports)).items()}
    finally:
        for process in (server, others):
            if process is not None:
                process.terminate()
                process.wait(30)
    latencies.sort()
    result: dict[str, Any] = {
        "kind": kind,
        "server_processes": workers + (1 if others else 0),
        "roles": "api | inbox,relay" if others else "api,inbox,relay",
        "requests": n,
        "connections": connections,
        "seconds": round(seconds, 3),
        "requests_per_s": round(n / seconds, 1),
        "statuses": statuses,
        "latency_ms_p50": round(latencies[len(latencies) // 2] * 1000, 2),
        "latency_ms_p99": round(latencies[int(len(latencies) * 0.99)] * 1000, 2),
        # where the machine's cores went during the timed run (CPU seconds; wall seconds x cores is the budget)
        "cpu_s": {
            "server": round(after[0] - before[0], 2),
            **({"inbox_and_relay_process": round(after[3] - before[3], 2)} if others else {}),
            "client": round(after[1] - before[1], 2),
            **{name: round(after[2][name] - before[2][name], 2) for name in infra},
        },
    }
    if kind == "service":
        conn = await asyncpg.connect(database_url)
        try:
            # only the benchmark's own: the service's inbox also reads whatever is on the shared inbound topic
            stored = await conn.fetchval(
                f"SELECT count(*) FROM {schema}.es_events WHERE data->>'linked_dossier_id' LIKE 'BENCH-%'"
            )
            scans = await conn.fetch(
                "SELECT relname, seq_scan, idx_scan FROM pg_stat_user_tables WHERE schemaname = $1"
                " AND relname IN ('es_events', 'es_streams')",
                schema,
            )
            await conn.execute(f"DROP SCHEMA {schema} CASCADE")
        finally:
            await conn.close()
        result["responses_stored"] = stored
        # transactions during the timed run: group commits (HTTP) and relay batches (Kafka transactions)
        result["batches"] = {k: int(v) for k, v in batches.items() if v}
        # whole-table scans would make the database's cost grow with the table (see the ANALYZE above)
        result["table_scans"] = {r["relname"]: {"seq": r["seq_scan"], "index": r["idx_scan"]} for r in scans}
        assert stored == n + warmup_requests, f"stored {stored}, expected {n + warmup_requests}"
    return result


async def main_async(
    n: int, connections: int, workers: int, warmup: int = WARMUP, *, split: bool = False
) -> dict[str, Any]:
    database_url = os.environ.get("DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/chiso")
    service = await run_one("service", n, connections, database_url, workers, warmup, split=split)
    baseline = await run_one("baseline", n, connections, database_url, warmup_requests=warmup)
    return {
        "benchmark": "surveys.http",
        "when": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version(), "platform": platform.platform()},
        "warmup_submissions": warmup,
        "service": service,
        "baseline_same_stack_trivial_endpoint": baseline,
        "ratio_service_to_baseline": round(service["requests_per_s"] / baseline["requests_per_s"], 3),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=10_000)
    parser.add_argument("--connections", type=int, default=64)
    parser.add_argument(
        "--warmup",
        type=int,
        default=WARMUP,
        help="submissions before the timed run (a freshly started broker's JVM compiles its hot paths meanwhile)",
    )
    parser.add_argument("--serve", choices=["service", "baseline"])
    parser.add_argument("--port", type=int)
    parser.add_argument("--schema", default="bench_surveys")
    parser.add_argument("--workers", type=int, default=1, help="service processes (uvicorn workers)")
    parser.add_argument("--roles", default="api,inbox,relay", help=argparse.SUPPRESS)  # of a --serve process
    parser.add_argument(
        "--split",
        action="store_true",
        help="the API in one process (SURVEYS_ROLES=api), the Kafka inbox and the relay in another",
    )
    args = parser.parse_args()
    if args.serve:
        serve(args.serve, args.port, args.schema, args.workers, args.roles)
        return
    # the services run under uvicorn with uvloop (a dependency); the client too: it is cheaper than asyncio's loop
    result = uvloop.run(main_async(args.requests, args.connections, args.workers, args.warmup, split=args.split))
    print(json.dumps(result, indent=2))
    save_result(result, "surveys")


if __name__ == "__main__":
    main()
