"""A projection runner in its own process, killed with SIGKILL at a chosen point (for crash tests).

python -m tests.integration.runner_child DATABASE_URL BOOTSTRAP TOPIC [CRASH_POINT CRASH_ON_NTH]
Runs until the read model has seen the topic's end, then exits 0; or dies at the crash point.
"""

from __future__ import annotations

import asyncio
import os
import signal
import sys

from eventkit.deadletter import DeadLetterPublisher
from eventkit.kafka import build_producer
from eventkit.pg import apply_migrations, create_pool
from eventkit.projection import MIGRATIONS, ProjectionRunner
from eventkit.settings import KafkaSettings
from eventkit.testing import SampleTotalsProjection, sample_registry


async def main(url: str, bootstrap: str, topic: str, crash_point: str | None, nth: int) -> None:
    pool = await create_pool(url, "plumbing", max_size=4)
    projection = SampleTotalsProjection((topic,))
    # offset gating alone (no event-id table) is exactly once on topics without duplicate records
    projection.dedupe_event_ids = os.environ.get("DEDUPE_EVENT_IDS", "1") == "1"
    await apply_migrations(pool, "eventkit.projection", MIGRATIONS)
    await apply_migrations(pool, projection.name, projection.migrations)
    kafka = KafkaSettings(bootstrap_servers=bootstrap)
    producer = build_producer(kafka, "dlq")
    await producer.start()
    seen = {"n": 0}

    def fault(point: str) -> None:
        if point == crash_point:
            seen["n"] += 1
            if seen["n"] >= nth:
                os.kill(os.getpid(), signal.SIGKILL)  # no cleanup, no leave-group: a real crash

    runner = ProjectionRunner(
        projection=projection,
        pool=pool,
        kafka=kafka,
        registry=sample_registry(),
        dead_letters=DeadLetterPublisher(producer, projection.name),
        max_records=50,
        session_timeout_ms=6000,
        fault=fault,
    )
    await runner.start()
    stop = asyncio.Event()
    task = asyncio.create_task(runner.run(stop))
    target = int(os.environ["EXPECT_OFFSETS_TOTAL"])
    while True:
        total = await pool.fetchval(
            "SELECT coalesce(sum(next_offset), 0) FROM projection_offsets WHERE projection = $1", projection.name
        )
        if total >= target:
            break
        await asyncio.sleep(0.1)
    stop.set()
    await task
    await runner.stop()
    await producer.stop()
    await pool.close()


if __name__ == "__main__":
    args = sys.argv[1:]
    crash_point = args[3] if len(args) > 3 else None
    asyncio.run(main(args[0], args[1], args[2], crash_point, int(args[4]) if len(args) > 4 else 1))
