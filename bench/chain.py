"""Freshness of the whole chain: a partner's inbound fact → the dossiers service → the scoring read model.

    python -m bench.chain [--rate R] [--seconds S]

Not a test (no assertion on time). ``chiso run dossiers`` and ``chiso run scoring`` run as child processes
on a real broker and PostgreSQL (nothing mocked); the benchmark publishes generated dossiers' inbound facts
(``bench.dossiers``: Hà Nội's communes, ≈ 3.6 facts per dossier, a dossier's facts in a row) to
``vn.cchc.dossiers.inbound`` at a steady ``--rate`` facts/s, as a one-stop-shop system would, and measures
for every ``dossier received`` fact, from handing it to the producer:

- **dossiers hop**: until its canonical event is readable on ``vn.cchc.dossiers.events`` by a
  ``read_committed`` consumer (validated, judged, stored, relayed in a committed Kafka transaction);
- **chain**: until the scoring service has committed the dossier into its read model (``dossier_facts``),
  i.e. until the unit, series and explain endpoints answer with it (they read the read model; the province
  table adds its cache, never more than 1 s old).

Uses KAFKA_BOOTSTRAP_SERVERS / DATABASE_URL when set, else its own throw-away broker and PostgreSQL.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import sys
import time
import uuid
from contextlib import ExitStack
from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg
import uvloop
from aiokafka import AIOKafkaConsumer

from bench.dossiers import SECRET, _committed_count, inbound_records
from bench.output import save_result
from bench.run import bench_infra, console
from bench.services import free_port, start_service, status_mb, wait_ready
from contracts.topics import DOSSIERS_EVENTS, DOSSIERS_INBOUND, TOPICS
from eventkit.kafka import build_producer
from eventkit.settings import KafkaSettings
from infra.topics import provision_topics, topic_spec

RECEIVED = "vn.cchc.dossier.received"


def _pct(ordered: list[float], q: float) -> float:
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def _summary(sent: dict[str, float], seen: dict[str, float]) -> dict[str, Any]:
    ms = sorted((seen[d] - sent[d]) * 1000 for d in sent if d in seen)
    if not ms:
        return {"n": 0, "missing": len(sent)}
    return {
        "n": len(ms),
        "missing": len(sent) - len(ms),
        "p50_ms": round(_pct(ms, 0.5), 1),
        "p90_ms": round(_pct(ms, 0.9), 1),
        "p99_ms": round(_pct(ms, 0.99), 1),
        "max_ms": round(ms[-1], 1),
    }


async def _watch_topic(bootstrap: str, seen: dict[str, float], stop: asyncio.Event) -> None:
    """First instant each dossier's ``received`` event is readable on the canonical topic."""
    consumer = AIOKafkaConsumer(
        DOSSIERS_EVENTS, bootstrap_servers=bootstrap, isolation_level="read_committed",
        auto_offset_reset="earliest", enable_auto_commit=False, group_id=None, fetch_max_wait_ms=20,
    )  # fmt: skip
    await consumer.start()
    try:
        while not stop.is_set():
            batches = await consumer.getmany(timeout_ms=50)
            now = time.perf_counter()
            for records in batches.values():
                for r in records:
                    if dict(r.headers).get("ce_type") == RECEIVED.encode():
                        seen.setdefault(json.loads(r.value)["dossier_id"], now)
    finally:
        await consumer.stop()


async def _watch_read_model(
    url: str, schema: str, sent: dict[str, float], seen: dict[str, float], stop: asyncio.Event
) -> None:
    """First instant each sent dossier is in scoring's read model (polled every 10 ms)."""
    conn = await asyncpg.connect(url)
    try:
        while not stop.is_set():
            pending = [d for d in sent if d not in seen]
            if pending:
                with_table = await conn.fetchval("SELECT to_regclass($1)", f"{schema}.dossier_facts")
                if with_table is not None:
                    rows = await conn.fetch(
                        f"SELECT dossier_id FROM {schema}.dossier_facts WHERE dossier_id = ANY($1::text[])", pending
                    )
                    now = time.perf_counter()
                    for row in rows:
                        seen.setdefault(row["dossier_id"], now)
            await asyncio.sleep(0.01)
    finally:
        await conn.close()


async def _publish(bootstrap: str, rate: int, facts: list[tuple[str, str, Any]], sent: dict[str, float]) -> float:
    """``facts`` at ``rate``/s in ticks of 10 ms; the send instant of every ``received`` fact in ``sent``."""
    producer = build_producer(KafkaSettings(bootstrap_servers=bootstrap), "bench-one-stop-shop")
    await producer.start()
    per_tick = max(1, rate // 100)
    tick = per_tick / rate  # 10 ms ticks, longer below 100/s
    started = time.perf_counter()
    try:
        for i in range(0, len(facts), per_tick):
            if (wait := started + (i // per_tick) * tick - time.perf_counter()) > 0:
                await asyncio.sleep(wait)
            for dossier_id, event_type, (key, value, headers) in facts[i : i + per_tick]:
                if event_type == RECEIVED:
                    sent[dossier_id] = time.perf_counter()
                await producer.send(DOSSIERS_INBOUND, value=value, key=key, headers=headers)
        await producer.flush()
    finally:
        await producer.stop()
    return len(facts) / (time.perf_counter() - started)


async def _drain(sent: dict[str, float], seen: dict[str, float], timeout_s: float) -> None:
    for _ in range(int(timeout_s * 10)):
        if all(d in seen for d in sent):
            return
        await asyncio.sleep(0.1)


def _facts(dossiers: int, *, live: bool) -> list[tuple[str, str, Any]]:
    """The inbound facts of ``dossiers`` generated dossiers.

    Default (a backlog replayed through the live path): March 2026 dossiers, each dossier's facts in a row,
    so a dossier opens and closes within moments, months after its period. ``live``: dossiers received over
    the last ten weeks, the facts in the order they happened and only those already past — an open dossier
    stays open until its next fact, as in a province's live stream (compressed in time).
    """
    if not live:
        return list(inbound_records(dossiers, seed=11))
    now = datetime.now(UTC)
    dated = []
    for fact in inbound_records(dossiers, seed=11, start=now - timedelta(weeks=10)):
        at = datetime.fromisoformat(dict(fact[2][2])["ce_time"].decode())
        if at < now - timedelta(minutes=1):
            dated.append((at, fact))
    dated.sort(key=lambda pair: pair[0])
    return [fact for _, fact in dated]


async def main(args: argparse.Namespace) -> dict[str, Any]:
    with ExitStack() as stack:
        url, bootstrap = bench_infra(stack)
        result: dict[str, Any] = {
            "when": datetime.now(UTC).isoformat(timespec="seconds"),
            "machine": {"cpus": os.cpu_count(), "python": platform.python_version(), "platform": platform.platform()},
            "command": " ".join(["python -m bench.chain", *sys.argv[1:]]),
            "data": "live" if args.live else "backlog",
        }
        await provision_topics(bootstrap, [topic_spec(t) for t in TOPICS])
        if await _committed_count(bootstrap, DOSSIERS_INBOUND) != 0:
            raise RuntimeError(f"{DOSSIERS_INBOUND} already holds facts: run on a fresh broker (unset the env vars)")
        # enough dossiers for the run at ≈ 3.6 facts each, plus a warm-up
        facts = _facts(int(args.rate * args.seconds / 3.3) + 200, live=args.live)
        warmup = next(i for i, f in enumerate(facts) if i >= 200 * 3 and f[1] == RECEIVED)
        suffix = uuid.uuid4().hex[:6]
        procs = {}
        for name, extra in (("dossiers", {"DOSSIERS_PSEUDONYM_SECRET": SECRET}), ("scoring", {})):
            port = free_port()
            extra["LOG_LEVEL"] = args.service_log_level
            proc = start_service(name, url, bootstrap, f"{name}_chain_{suffix}", port, **extra)
            stack.callback(proc.wait, timeout=60)
            stack.callback(proc.terminate)
            procs[name] = (proc, f"http://127.0.0.1:{port}")
        for proc, base in procs.values():
            await wait_ready(base, proc)

        stop = asyncio.Event()
        topic_seen: dict[str, float] = {}
        model_seen: dict[str, float] = {}
        sent: dict[str, float] = {}
        watchers = [
            asyncio.create_task(_watch_topic(bootstrap, topic_seen, stop)),
            asyncio.create_task(_watch_read_model(url, f"scoring_chain_{suffix}", sent, model_seen, stop)),
        ]
        # warm-up: consumer groups joined, caches and connections warm; not measured
        await _publish(bootstrap, args.rate, facts[:warmup], sent)
        await _drain(sent, model_seen, 120)
        if any(d not in model_seen for d in sent):
            raise RuntimeError("the warm-up dossiers never reached the scoring read model")
        sent.clear()
        console.print(f"publishing {len(facts) - warmup:,} facts at {args.rate}/s")
        achieved = await _publish(bootstrap, args.rate, facts[warmup:], sent)
        await _drain(sent, model_seen, 60)
        stop.set()
        await asyncio.gather(*watchers)
        result["facts"] = {
            "published": len(facts) - warmup,
            "target_per_s": args.rate,
            "achieved_per_s": round(achieved),
        }
        result["dossiers_hop"] = _summary(sent, topic_seen)
        result["chain"] = _summary(sent, model_seen)
        result["peak_rss_mb"] = {name: round(status_mb(proc.pid, "VmHWM"), 1) for name, (proc, _) in procs.items()}
        console.print(result)
        return result


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rate", type=int, default=500, help="inbound facts/s")
    parser.add_argument("--seconds", type=int, default=30, help="length of the measured run")
    parser.add_argument("--live", action="store_true", help="recent dossiers, facts in time order (see _facts)")
    parser.add_argument("--service-log-level", default="WARNING", help="LOG_LEVEL of the services (their stderr)")
    result = uvloop.run(main(parser.parse_args()))
    save_result(result, "chain", console)
