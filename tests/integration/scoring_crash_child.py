"""The scoring dossier projection in its own process, killed with SIGKILL at a chosen point (crash tests).

python -m tests.integration.scoring_crash_child DATABASE_URL BOOTSTRAP TOPIC SCHEMA EXPECT [POINT NTH]
Runs the projection as the service does (with the subscriptions' dirty-key hook) until its stored offsets
reach EXPECT, then exits 0; or dies at the NTH passage of POINT.
"""

from __future__ import annotations

import asyncio
import os
import signal
import sys
from datetime import UTC, datetime

from contracts.registry import default_registry
from eventkit.deadletter import DeadLetterPublisher
from eventkit.kafka import build_producer
from eventkit.pg import apply_migrations, create_pool
from eventkit.projection import MIGRATIONS, ProjectionRunner
from eventkit.settings import KafkaSettings
from services.scoring.projections import DossierIndicatorsProjection
from services.scoring.subscriptions import MIGRATIONS as SUBSCRIPTION_MIGRATIONS
from services.scoring.subscriptions import dossier_change_hook


async def main(url: str, bootstrap: str, topic: str, schema: str, expect: int, point: str | None, nth: int) -> None:
    pool = await create_pool(url, schema, max_size=4)
    projection = DossierIndicatorsProjection(None, dossier_change_hook(lambda: datetime(2026, 4, 30, tzinfo=UTC)))
    projection.topics = (topic,)
    await apply_migrations(pool, "eventkit.projection", MIGRATIONS)
    await apply_migrations(pool, "scoring.subscriptions", SUBSCRIPTION_MIGRATIONS)
    await apply_migrations(pool, projection.name, projection.migrations)
    kafka = KafkaSettings(bootstrap_servers=bootstrap)
    producer = build_producer(kafka, "dlq")
    await producer.start()
    seen = {"n": 0}

    def fault(at: str) -> None:
        if at == point:
            seen["n"] += 1
            if seen["n"] >= nth:
                os.kill(os.getpid(), signal.SIGKILL)  # no cleanup, no leave-group: a real crash

    runner = ProjectionRunner(
        projection=projection,
        pool=pool,
        kafka=kafka,
        registry=default_registry(),
        dead_letters=DeadLetterPublisher(producer, projection.name),
        group_id=f"scoring-crash-{schema}",
        max_records=40,
        session_timeout_ms=6000,
        fault=fault,
    )
    await runner.start()
    stop = asyncio.Event()
    task = asyncio.create_task(runner.run(stop))
    while True:
        total = await pool.fetchval(
            "SELECT coalesce(sum(next_offset), 0) FROM projection_offsets WHERE projection = $1", projection.name
        )
        if total >= expect:
            break
        await asyncio.sleep(0.1)
    stop.set()
    await task
    await runner.stop()
    await producer.stop()
    await pool.close()


if __name__ == "__main__":
    a = sys.argv[1:]
    asyncio.run(main(a[0], a[1], a[2], a[3], int(a[4]), a[5] if len(a) > 5 else None, int(a[6]) if len(a) > 6 else 1))
