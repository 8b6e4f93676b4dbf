"""The event store's batch append on a real PostgreSQL (not a test: no assertion on time).

    python -m bench.event_store [--events 5000] [--repeat 12]

``PostgresEventStore.append_many`` of one batch (``--events`` events, one new stream per two events, payloads
of about the size of a dossier event) in its own transaction, two ways alternating in the same process on
the same table: the batch bound as ``unnest`` arrays in one statement (the baseline) and staged by binary COPY
into a temporary table (what batches from ``eventkit.postgres._STAGE_FROM`` events use). Per way: the median
wall time and the median CPU time of this process (the client: building and encoding the batch) per event.

Uses DATABASE_URL when set, else a throw-away local PostgreSQL (fsync=off).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import platform
import statistics
import time
import uuid
from contextlib import ExitStack
from datetime import UTC, datetime, timedelta

from rich.console import Console

from bench.output import save_result
from bench.run import bench_database
from contracts.envelope import make_envelope
from eventkit import postgres
from eventkit.pg import apply_migrations, create_pool
from eventkit.postgres import PostgresEventStore
from eventkit.store import NO_STREAM
from eventkit.testing import SampleHappened, sample_registry

console = Console()
WAYS = {"unnest": 10**9, "staged": 1}  # stage_from of each way


def _batch(events: int, tag: str) -> list:
    at = datetime(2026, 3, 2, 8, 0, tzinfo=UTC)
    note = "Cấp giấy phép xây dựng nhà ở riêng lẻ; " * 8  # ≈ 350 bytes of JSON, as a dossier event
    appends = []
    for k in range(events // 2):
        stream = f"dossier:{tag}-{k}"
        appends.append(
            (
                stream,
                NO_STREAM,
                [
                    make_envelope(
                        SampleHappened(note=note, amount=k + i),
                        id=uuid.uuid4(),
                        source="urn:chiso:dossiers",
                        subject=stream,
                        time=at + timedelta(minutes=k + i),
                        unitcode="26734",
                        provincecode="79",
                        causationid=str(uuid.uuid4()),
                    )
                    for i in range(2)
                ],
            )
        )
    return appends


async def main(args: argparse.Namespace) -> dict:
    with ExitStack() as stack:
        url = bench_database(stack)
        schema = f"bench_store_{uuid.uuid4().hex[:6]}"
        pool = await create_pool(url, schema, max_size=2)
        await apply_migrations(pool, "eventkit.store", postgres.MIGRATIONS)
        stores = {way: PostgresEventStore(pool, sample_registry(), stage_from=f) for way, f in WAYS.items()}
        wall: dict[str, list[float]] = {way: [] for way in WAYS}
        cpu: dict[str, list[float]] = {way: [] for way in WAYS}
        for round_ in range(args.repeat):
            order = list(WAYS) if round_ % 2 == 0 else list(reversed(WAYS))
            for way in order:
                appends = _batch(args.events, f"{way}{round_}")
                cpu_0, wall_0 = time.process_time(), time.perf_counter()
                async with pool.acquire() as conn, conn.transaction():
                    await stores[way].append_many(conn, appends)
                wall[way].append(time.perf_counter() - wall_0)
                cpu[way].append(time.process_time() - cpu_0)
        await pool.close()
        per_event = {
            way: {
                "wall_us_per_event": statistics.median(wall[way]) / args.events * 1e6,
                "client_cpu_us_per_event": statistics.median(cpu[way]) / args.events * 1e6,
            }
            for way in WAYS
        }
        return {
            "when": datetime.now(UTC).isoformat(timespec="seconds"),
            "machine": {"cpus": os.cpu_count(), "python": platform.python_version(), "platform": platform.platform()},
            "postgres": "local, fsync=off" if "DATABASE_URL" not in os.environ else "external",
            "events_per_batch": args.events,
            "rounds": args.repeat,
            "ways": per_event,
            "staged_vs_unnest": {
                "wall": per_event["staged"]["wall_us_per_event"] / per_event["unnest"]["wall_us_per_event"],
                "client_cpu": per_event["staged"]["client_cpu_us_per_event"]
                / per_event["unnest"]["client_cpu_us_per_event"],
            },
        }


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--events", type=int, default=5000, help="events per batch")
    parser.add_argument("--repeat", type=int, default=12, help="batches per way (medians reported)")
    result = asyncio.run(main(parser.parse_args()))
    save_result(result, "event-store", console, show=True)
