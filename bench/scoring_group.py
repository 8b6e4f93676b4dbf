"""The scoring dossier projection run by several processes in one consumer group (``bench.scoring --processes``).

Each member is a process of its own (spawned: nothing shared but the broker and the database), with its own
pool and a :class:`~eventkit.projection.ProjectionRunner` of the dossier projection (+ the subscriptions' dirty
keys) in the same consumer group, on the same schema, as several ``SCORING_ROLES=projections`` processes of
the service would run. The members join, wait until the group's partitions are all assigned, then start
together; the time is from the first batch any member begins to the end of the batch after which the offsets
stored with the read model cover the whole topic (read from the database, as ``bench.run._TimedRunner`` does).
"""

from __future__ import annotations

import asyncio
import multiprocessing
import os
import queue
import time
import uuid
from datetime import UTC, datetime
from multiprocessing.synchronize import Event as MpEvent
from typing import Any

import uvloop

from bench.run import _TimedRunner
from contracts.registry import default_registry
from eventkit.deadletter import DeadLetterPublisher
from eventkit.heap import settle_heap_for_batches
from eventkit.kafka import build_producer
from eventkit.pg import create_pool
from eventkit.projection import Batch
from eventkit.settings import KafkaSettings
from services.scoring.app import legacy_district_of
from services.scoring.projections import DossierIndicatorsProjection
from services.scoring.subscriptions import dossier_change_hook

__all__ = ["timed_group"]

_POLL_S = 0.02


class _Member(_TimedRunner):
    """A runner that also notes when its last batch ended (the group's end is the latest of its members')."""

    def __init__(self, n: int, pool: Any, **kwargs: Any) -> None:
        super().__init__(n, pool, **kwargs)
        self.last_end: float | None = None
        self.records = self.batches = 0

    async def process_batch(self, batch: Batch) -> None:
        await super().process_batch(batch)
        self.last_end = time.perf_counter()  # CLOCK_MONOTONIC: comparable between processes of one machine
        self.records += sum(len(records) for records in batch.values())
        self.batches += 1

    def assigned(self) -> int:
        return len(self._consumer.assignment())


async def _member(url: str, schema: str, bootstrap: str, topic: str, group: str, n: int, out: Any, go: MpEvent) -> None:
    pool = await create_pool(url, schema, max_size=4)
    producer = build_producer(KafkaSettings(bootstrap_servers=bootstrap), "bench-dlq")
    await producer.start()
    view = DossierIndicatorsProjection(legacy_district_of, dossier_change_hook(lambda: datetime.now(UTC)))
    view.topics = (topic,)
    runner = _Member(
        n,
        pool,
        projection=view,
        kafka=KafkaSettings(bootstrap_servers=bootstrap),
        registry=default_registry(),
        dead_letters=DeadLetterPublisher(producer, view.name),
        group_id=group,
        max_records=5000,
    )
    settle_heap_for_batches()
    await runner.start()
    while not go.is_set():  # report the assignment until every member has its share (rebalances move it)
        out.put(("assigned", (os.getpid(), runner.assigned())))
        await asyncio.sleep(0.2)
    stop = asyncio.Event()
    task = asyncio.create_task(runner.run(stop))
    while True:  # a member whose partitions are done early sees the end in the database, not in its batches
        total = await pool.fetchval(
            "SELECT coalesce(sum(next_offset), 0) FROM projection_offsets WHERE projection = $1", view.name
        )
        if total >= n:
            break
        await asyncio.sleep(_POLL_S)
    stop.set()
    await task
    await runner.stop()
    await producer.stop()
    await pool.close()
    out.put(("done", (runner.started, runner.last_end, runner.records, runner.batches)))


def _child(url: str, schema: str, bootstrap: str, topic: str, group: str, n: int, out: Any, go: MpEvent) -> None:
    uvloop.run(_member(url, schema, bootstrap, topic, group, n, out, go))


async def timed_group(
    url: str, schema: str, bootstrap: str, topic: str, n: int, processes: int, partitions: int
) -> tuple[float, list[dict[str, float]]]:
    """Seconds the group of ``processes`` members takes to project the ``n`` records of ``topic`` into ``schema``
    (migrations already applied), and what each member did."""
    ctx = multiprocessing.get_context("spawn")
    out: Any = ctx.Queue()
    go = ctx.Event()
    group = f"bench-group-{uuid.uuid4().hex[:6]}"
    members = [
        ctx.Process(target=_child, args=(url, schema, bootstrap, topic, group, n, out, go), daemon=True)
        for _ in range(processes)
    ]
    for p in members:
        p.start()
    assigned: dict[int, int] = {}
    reports: list[tuple[float | None, float | None, int, int]] = []
    deadline = time.monotonic() + 120
    while len(reports) < processes:
        if time.monotonic() > deadline:
            msg = f"the group did not finish in time (assigned {assigned}, reports {reports})"
            raise RuntimeError(msg)
        try:
            kind, value = await asyncio.to_thread(out.get, True, 1.0)
        except queue.Empty:
            continue
        if kind == "done":
            reports.append(value)
            deadline = time.monotonic() + 600
            continue
        pid, size = value
        assigned[pid] = size  # each member's latest size (repeated every 0.2 s until the start)
        everyone = len(assigned) == processes and all(assigned.values())
        if not go.is_set() and everyone and sum(assigned.values()) == partitions:
            go.set()
            deadline = time.monotonic() + 600
    for p in members:
        p.join(timeout=30)
    starts = [r[0] for r in reports if r[0] is not None]
    ends = [r[1] for r in reports if r[1] is not None]
    elapsed = max(ends) - min(starts)
    # per member: its share of the records fetched (re-fetches after a rebalance included) and of the time
    members_seen = [
        {"records": r[2], "batches": r[3], "busy_s": (r[1] - r[0]) if r[0] is not None and r[1] is not None else 0.0}
        for r in reports
    ]
    return elapsed, members_seen
