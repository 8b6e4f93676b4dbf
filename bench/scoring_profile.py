"""Offline profile of the scoring dossier projection: where a batch's time goes, without a broker.

    python -m bench.scoring_profile --dossiers 20000 [--sql-timers]
    py-spy record --rate 500 -o profile.svg -- python -m bench.scoring_profile --dossiers 30000

The benchmark's own records (``bench.scoring.dossier_records``: canonical ``received`` + ``resolved`` events as
the relay writes them) are cut into batches the way ``getmany`` hands them over (up to 5,000 records, a run of
each of 12 partitions in turn) and given to :meth:`ProjectionRunner.process_batch` of the dossier projection
with the subscriptions' dirty-key hook, as the service runs it: the same transaction, offsets, staging and
merges on a real PostgreSQL (``DATABASE_URL``, else a throw-away local cluster with fsync off). Printed: events
per second, the process's CPU per event (the Python side), and with ``--sql-timers`` the wall time of each
statement per event (the PostgreSQL side, as the client waits for it). Not a test: no assertion on time.
"""

from __future__ import annotations

import argparse
import collections
import os
import time
import uuid
import zlib
from collections.abc import Iterator
from contextlib import ExitStack
from datetime import UTC, datetime
from typing import Any

import uvloop
from aiokafka import TopicPartition
from aiokafka.structs import ConsumerRecord
from asyncpg.connection import Connection

from bench.scoring import Record, _prepared_pool, dossier_records
from contracts.registry import default_registry
from eventkit.deadletter import DeadLetterPublisher
from eventkit.heap import settle_heap_for_batches
from eventkit.projection import Batch, ProjectionRunner
from eventkit.settings import KafkaSettings
from infra.local import LocalPostgres
from services.scoring.app import legacy_district_of
from services.scoring.projections import DossierIndicatorsProjection
from services.scoring.subscriptions import dossier_change_hook

TOPIC = "bench.scoring.profile"
PARTITIONS = 12
RUN = 500  # records of one partition in a row, about what a fetch response holds per partition
BATCH = 5000


def batches(records: list[Record]) -> Iterator[Batch]:
    """The records as ``getmany`` batches: keyed to partitions, offsets in order, a run of each partition in turn."""
    parts: dict[int, list[ConsumerRecord[bytes, bytes]]] = collections.defaultdict(list)
    for key, value, headers in records:
        assert key is not None
        assert value is not None
        p = zlib.crc32(key) % PARTITIONS
        offset = len(parts[p])
        parts[p].append(ConsumerRecord(TOPIC, p, offset, 0, 0, key, value, None, len(key), len(value), headers))
    at = dict.fromkeys(parts, 0)
    while any(at[p] < len(parts[p]) for p in parts):
        batch: Batch = {}
        size = 0
        for p in sorted(parts):
            run = parts[p][at[p] : at[p] + RUN]
            if run and size < BATCH:
                batch[TopicPartition(TOPIC, p)] = run
                at[p] += len(run)
                size += len(run)
        yield batch


SQL: collections.Counter[str] = collections.Counter()


def time_statements() -> None:
    """Wrap asyncpg's statement methods to add each statement's wall time to :data:`SQL`."""
    for method in ("execute", "fetch", "copy_records_to_table"):
        original = getattr(Connection, method)

        async def timed(self: Connection, *args: Any, _original: Any = original, _name: str = method, **kw: Any) -> Any:
            started = time.perf_counter()
            try:
                return await _original(self, *args, **kw)
            finally:
                text = args[0] if args and isinstance(args[0], str) else ""
                SQL[f"{_name}: {' '.join(text.split())[:70]}"] += time.perf_counter() - started

        setattr(Connection, method, timed)


def offline_runner(pool: Any) -> ProjectionRunner:
    """The dossier projection's runner as the service builds it, fed from memory (its consumer never starts)."""
    view = DossierIndicatorsProjection(legacy_district_of, dossier_change_hook(lambda: datetime.now(UTC)))
    view.topics = (TOPIC,)
    return ProjectionRunner(
        projection=view,
        pool=pool,
        kafka=KafkaSettings(bootstrap_servers="127.0.0.1:9"),  # never started: the batches come from memory
        registry=default_registry(),
        dead_letters=DeadLetterPublisher(None, view.name),  # type: ignore[arg-type]  # nothing is dead-lettered
    )


async def profile(url: str, dossiers: int, sql_timers: bool) -> None:
    records = dossier_records(dossiers, prefix="P")
    pool = await _prepared_pool(url, f"bench_profile_{uuid.uuid4().hex[:6]}")
    runner = offline_runner(pool)
    if sql_timers:
        time_statements()
    settle_heap_for_batches()
    wall, cpu = time.perf_counter(), time.process_time()
    for batch in batches(records):
        await runner.process_batch(batch)
    wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    n = len(records)
    print(f"{n:,} events in {wall:.2f} s: {n / wall:,.0f} events/s, {wall / n * 1e6:.1f} µs/event wall")
    await runner.stop()  # (never started: closes the consumer object)
    print(f"this process's CPU: {cpu / n * 1e6:.1f} µs/event")
    for statement, seconds in SQL.most_common():
        print(f"  {seconds / n * 1e6:6.1f} µs/event  {statement}")
    await pool.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--dossiers", type=int, default=20_000, help="dossiers (2 events each)")
    parser.add_argument("--sql-timers", action="store_true", help="time every statement (adds a little overhead)")
    args = parser.parse_args()
    with ExitStack() as stack:
        url = os.environ.get("DATABASE_URL") or stack.enter_context(LocalPostgres(dbname="bench")).url
        uvloop.run(profile(url, args.dossiers, args.sql_timers))


if __name__ == "__main__":
    main()
