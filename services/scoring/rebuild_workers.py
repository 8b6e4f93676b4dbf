"""Rebuild with several worker processes: each replays a share of the partitions into the same fresh tables.

Why: one replaying process is bound by one core (Python folds every event); the projections are per partition
(a dossier's events share its key, so its partition), and what several partitions add to the same row — the
counters, the unit-activity counts — is a sum, applied by ``INSERT ... ON CONFLICT DO UPDATE`` in the primary
key's order (two workers wait on a row, never deadlock). Each worker runs the projections' own runners, so every
batch is still one transaction with its own partitions' offsets: a worker that dies leaves the fresh tables at
its last committed batch, and the rebuild fails (the fresh schema is dropped) rather than swapping in a partial
replay. The parent then catches the fresh tables up to the live offsets and compares or swaps, as with one
process (:func:`services.scoring.rebuild.rebuild`).
"""

from __future__ import annotations

import asyncio
import multiprocessing
from collections.abc import Callable, Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import asyncpg
from aiokafka import TopicPartition

from contracts.registry import Registry
from eventkit.heap import settle_heap_for_batches
from eventkit.pg import create_pool
from eventkit.settings import KafkaSettings

__all__ = ["ShareJob", "replay_in_workers", "shares"]

#: (done, total) as the progress bar takes it
Progress = Callable[[int, int], None]
#: projection name -> partition -> the offset to replay up to (exclusive)
Targets = dict[str, dict[TopicPartition, int]]


@dataclass(frozen=True)
class ShareJob:
    """What one worker replays: its partitions, up to each projection's target offsets."""

    database_url: str
    fresh_schema: str  # quoted, as the pool's search path
    kafka: KafkaSettings
    registry: Callable[[], Registry]  # a module-level factory (a registry itself does not pickle)
    projections: Sequence[str]  # names: the worker builds the service's projections itself (they hold locks)
    partitions: Sequence[TopicPartition]
    targets: Targets
    batch: int


def shares(partitions: Sequence[TopicPartition], workers: int) -> list[list[TopicPartition]]:
    """``partitions`` dealt round-robin to ``workers`` (a topic's partitions spread over every worker)."""
    return [s for s in (list(partitions[k::workers]) for k in range(workers)) if s]


def _run_share(job: ShareJob) -> tuple[int, float | None]:
    """Worker process entry point: replay the share; the records consumed and the worker's peak RSS in MB."""
    settle_heap_for_batches()
    return asyncio.run(_replay_share(job)), _peak_rss_mb()


def _peak_rss_mb() -> float | None:
    """The process's peak resident set (Linux ``VmHWM``), None where /proc is not there."""
    try:
        status = Path("/proc/self/status").read_text()
    except OSError:
        return None
    line = next((x for x in status.splitlines() if x.startswith("VmHWM:")), None)
    return int(line.split()[1]) / 1024 if line else None


async def _replay_share(job: ShareJob) -> int:
    from services.scoring.app import scoring_projections  # noqa: PLC0415 - the service's, as the CLI replays them
    from services.scoring.rebuild import Replay, replay_consumer, replay_runners  # noqa: PLC0415 - import cycle

    projections = [p for p in scoring_projections() if p.name in job.projections]
    pool = await create_pool(job.database_url, job.fresh_schema, min_size=1, max_size=max(4, len(projections)))
    runners = replay_runners(projections, pool, job.kafka, job.registry(), job.batch)
    consumer = replay_consumer(job.kafka, "share")
    try:
        await consumer.start()
        consumer.assign(list(job.partitions))
        await consumer.seek_to_beginning(*job.partitions)
        replay = Replay(consumer, runners, job.batch)
        own = {name: {tp: o for tp, o in per.items() if tp in set(job.partitions)} for name, per in job.targets.items()}
        return await replay.run_to(own, None, 0, 0)
    finally:
        await consumer.stop()
        for runner in runners:
            await runner.stop()
        await pool.close()


async def _offsets_done(pool: asyncpg.Pool) -> int:
    """How far the workers are: per partition the furthest projection's stored offset, summed."""
    value = await pool.fetchval(
        "SELECT coalesce(sum(m), 0) FROM (SELECT max(next_offset) AS m FROM projection_offsets"
        " GROUP BY topic, partition) x"
    )
    return int(value or 0)


async def replay_in_workers(
    jobs: Sequence[ShareJob], pool: asyncpg.Pool, progress: Progress | None, total: int
) -> tuple[int, list[float | None]]:
    """Run every job in its own process (spawned: nothing of this process's state is shared); the records
    consumed in all, and each worker's peak RSS in MB. Raises if a worker fails."""
    loop = asyncio.get_running_loop()
    with ProcessPoolExecutor(max_workers=len(jobs), mp_context=multiprocessing.get_context("spawn")) as executor:
        futures = [loop.run_in_executor(executor, _run_share, job) for job in jobs]
        pending = set(futures)
        while pending:
            _, pending = await asyncio.wait(pending, timeout=0.5)
            if progress is not None:
                progress(min(await _offsets_done(pool), total), total)
        results = [f.result() for f in futures]
        return sum(events for events, _ in results), [peak for _, peak in results]
