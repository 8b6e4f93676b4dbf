"""The whole scoring service under load, as `chiso run scoring` runs it: memory, catch-up and queries.

    python -m bench.scoring_service [--dossiers N] [--rate R] [--seconds S] [--requests N] [--clients C]

Not a test (no assertion on time). What it does, on a real Kafka broker and PostgreSQL:

1. produces ``N`` dossiers' canonical events (``dossier received`` + ``dossier resolved``, the data of
   ``bench.scoring``: TP.HCM's 168 communes, March 2026) to ``vn.cchc.dossiers.events``, provisioned as the
   system provisions it;
2. starts ``chiso run scoring`` as a child process (every projection, the indicator publisher, its relay, the
   HTTP API — nothing mocked) and times how long it takes until every projection on the dossier topic has
   stored offsets at the topic's end (the service catching up on a backlog: a whole-service rate);
3. asks every question a dashboard asks: the province table for every indicator key the unit endpoint lists
   (month, quarter, year), every commune's indicators, a series and an explain page per commune;
4. runs ``bench.httpload`` against the province table while a steady ``--rate`` of new events flows in;
5. reports the service's peak resident set (the kernel's ``VmHWM`` of the child, which started fresh) after
   each step, and its RSS at the end; the target is ≤ 500 MB.

Uses KAFKA_BOOTSTRAP_SERVERS / DATABASE_URL when set, else its own throw-away broker and PostgreSQL.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import platform
import subprocess
import sys
import time
import uuid
from contextlib import ExitStack
from datetime import UTC, datetime
from typing import Any

import asyncpg
import httpx
import uvloop

from bench.dossiers import _committed_count
from bench.output import save_result
from bench.run import bench_infra, console
from bench.scoring import PROVINCE, _communes, _load, _produce, dossier_records
from bench.services import free_port, start_service, status_mb, wait_ready
from contracts.topics import DOSSIERS_EVENTS, TOPICS
from eventkit.kafka import build_producer
from eventkit.settings import KafkaSettings
from infra.topics import provision_topics, topic_spec

MONTH = "2026-03-01"


async def _caught_up(url: str, schema: str, produced: int, proc: subprocess.Popen[bytes]) -> dict[str, int]:
    """Wait until every projection reading the dossier topic has stored offsets summing to what was produced
    (the feeder is not transactional, so offsets are 0..n-1 per partition with no markers)."""
    conn = await asyncpg.connect(url)
    try:
        while True:
            if proc.poll() is not None:
                raise RuntimeError(f"chiso run scoring exited with {proc.returncode}")
            rows = await conn.fetch(
                f"SELECT projection, sum(next_offset)::bigint AS n FROM {schema}.projection_offsets"
                " WHERE topic = $1 GROUP BY projection",
                DOSSIERS_EVENTS,
            )  # fmt: skip
            done = {r["projection"]: int(r["n"]) for r in rows}
            if len(done) >= 3 and all(n >= produced for n in done.values()):
                return done
            await asyncio.sleep(0.25)
    except asyncpg.UndefinedTableError:
        await asyncio.sleep(0.5)
        return await _caught_up(url, schema, produced, proc)
    finally:
        await conn.close()


async def _dashboard_questions(base: str, communes: list[str]) -> dict[str, Any]:
    """Every question a dashboard asks, once: tables by every key and period, each commune's page, series and
    explain. Checks the answers are 200 and that the province's received count is what was produced."""
    started = time.perf_counter()
    asked = 0
    async with httpx.AsyncClient(base_url=base, timeout=60) as client:
        province = await client.get(f"/units/{PROVINCE}/indicators", params={"period": "month", "start": MONTH})
        province.raise_for_status()
        body = province.json()
        keys = [i["key"] for i in body["report06"]] + ["d766.total"]
        received = next(i for i in body["report06"] if i["key"] == "r06.received")["value"]
        for key in keys:
            for period in ("month", "quarter", "year"):
                r = await client.get(
                    f"/provinces/{PROVINCE}/communes", params={"indicator": key, "period": period, "start": MONTH}
                )
                r.raise_for_status()
                asked += 1
        for code in communes:
            for path, params in (
                (f"/units/{code}/indicators", {"period": "month", "start": MONTH}),
                (f"/units/{code}/series", {"indicator": "r06.on_time_rate", "period": "month", "from": "2026-01-01",
                                           "to": "2026-06-30"}),
                (f"/units/{code}/explain", {"indicator": "r06.resolved_late", "period": "month", "start": MONTH}),
            ):  # fmt: skip
                r = await client.get(path, params=params)
                r.raise_for_status()
                asked += 1
    return {"requests": asked, "seconds": round(time.perf_counter() - started, 2), "keys": len(keys),
            "province_received": received}  # fmt: skip


async def _steady(bootstrap: str, rate: int, seconds: int, stop: asyncio.Event) -> int:
    """New dossiers at ``rate`` events/s (ids unlike the backlog's) until ``stop`` or ``seconds``."""
    records = dossier_records(rate * seconds // 2, seed=7, prefix="L")
    producer = build_producer(KafkaSettings(bootstrap_servers=bootstrap), "bench-steady")
    await producer.start()
    per_tick, sent = max(1, rate // 100), 0
    tick = per_tick / rate  # 10 ms ticks, longer below 100/s
    started = time.perf_counter()
    try:
        while not stop.is_set() and sent < len(records):
            if (wait := started + (sent // per_tick) * tick - time.perf_counter()) > 0:
                await asyncio.sleep(wait)
            for k, v, h in records[sent : sent + per_tick]:
                await producer.send(DOSSIERS_EVENTS, value=v, key=k, headers=h)
            sent += per_tick
    finally:
        await producer.stop()
    return sent


async def main(args: argparse.Namespace) -> dict[str, Any]:
    with ExitStack() as stack:
        url, bootstrap = bench_infra(stack)
        schema = f"scoring_bench_{uuid.uuid4().hex[:6]}"
        result: dict[str, Any] = {
            "when": datetime.now(UTC).isoformat(timespec="seconds"),
            "machine": {"cpus": os.cpu_count(), "python": platform.python_version(), "platform": platform.platform()},
            "command": " ".join(["python -m bench.scoring_service", *sys.argv[1:]]),
            "dossiers": args.dossiers,
        }
        await provision_topics(bootstrap, [topic_spec(t) for t in TOPICS])
        if await _committed_count(bootstrap, DOSSIERS_EVENTS) != 0:
            raise RuntimeError(f"{DOSSIERS_EVENTS} already holds events: run on a fresh broker (unset the env vars)")
        records = dossier_records(args.dossiers)
        console.print(f"producing {len(records):,} events to {DOSSIERS_EVENTS}")
        await _produce(bootstrap, DOSSIERS_EVENTS, records)

        # one process with every role (as `chiso run scoring` by default), or --split: the API alone in one
        # process and the projections + publisher in another (SCORING_ROLES)
        roles = {"api": "api", "workers": "projections,publisher"} if args.split else {"all": ""}
        procs: dict[str, subprocess.Popen[bytes]] = {}
        bases: dict[str, str] = {}
        for name, role in roles.items():
            port = free_port()
            procs[name] = start_service(
                "scoring", url, bootstrap, schema, port, **({"SCORING_ROLES": role} if role else {})
            )
            bases[name] = f"http://127.0.0.1:{port}"
            stack.callback(procs[name].wait, timeout=60)
            stack.callback(procs[name].terminate)
        api = "api" if args.split else "all"
        port = int(bases[api].rsplit(":", 1)[1])
        proc = procs[api]
        result["processes"] = roles
        memory: dict[str, dict[str, float]] = {name: {} for name in procs}

        def peak(step: str) -> None:
            for name, p in procs.items():
                memory[name][step] = status_mb(p.pid, "VmHWM")

        try:
            started = time.perf_counter()
            for name, p in procs.items():
                await wait_ready(bases[name], p)
            peak("ready")
            offsets = await _caught_up(url, schema, len(records), procs["workers" if args.split else "all"])
            catch_up = time.perf_counter() - started
            peak("caught_up")
            result["catch_up"] = {"events": len(records), "seconds": round(catch_up, 1),
                                  "events_per_s": round(len(records) / catch_up), "offsets": offsets}  # fmt: skip
            console.print(result["catch_up"])

            result["questions"] = await _dashboard_questions(bases[api], _communes())
            if result["questions"]["province_received"] != args.dossiers:
                raise RuntimeError(f"province received {result['questions']['province_received']} != {args.dossiers}")
            peak("questions")
            console.print(result["questions"])

            stop = asyncio.Event()
            writes = asyncio.create_task(_steady(bootstrap, args.rate, args.seconds, stop))
            path = f"/provinces/{PROVINCE}/communes?indicator=d766.total&period=month&start={MONTH}"
            result["table_under_writes"] = await _load(port, proc.pid, path, args.requests, args.clients)
            stop.set()
            result["table_under_writes"]["events_written"] = await writes
            peak("under_writes")
            await asyncio.sleep(7)  # a range-publisher round (5 s) over what was just written
            peak("end_peak")
            for name, p in procs.items():
                memory[name]["end_rss"] = status_mb(p.pid, "VmRSS")
        finally:
            result["memory_mb"] = {n: {k: round(v, 1) for k, v in m.items()} for n, m in memory.items()}
            console.print(result["memory_mb"])
        return result


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--dossiers", type=int, default=100_000, help="backlog of dossiers (2 events each)")
    parser.add_argument("--rate", type=int, default=1000, help="events/s written during the query load")
    parser.add_argument("--seconds", type=int, default=20, help="most seconds of writes during the query load")
    parser.add_argument("--requests", type=int, default=20_000, help="province-table requests under writes")
    parser.add_argument("--clients", type=int, default=100, help="concurrent clients")
    parser.add_argument(
        "--split",
        action="store_true",
        help="the API in one process, the projections and publisher in another",
    )
    result = uvloop.run(main(parser.parse_args()))
    save_result(result, "scoring-service", console)
