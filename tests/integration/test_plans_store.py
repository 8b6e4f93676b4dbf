"""The plans handler and overdue watch on the real PostgreSQL event store: racing writers of one command
store it once, and the watch flags an open task past its deadline exactly once."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from pathlib import Path

import pytest

from contracts.plans import TaskBecameOverdue, TaskCompleted
from contracts.registry import default_registry
from eventkit.postgres import PostgresEventStore
from services.plans.config import build_rules
from services.plans.domain import VN_TZ, CompleteTask
from services.plans.handler import OutcomeStatus, PlansHandler
from services.plans.importer import import_plan, read_plan_file
from services.plans.overdue import OverdueWatch

pytestmark = pytest.mark.integration
SEED_003 = Path(__file__).resolve().parents[2] / "examples" / "plans" / "003_ba-nam-2024.yaml"
PLAN = "QD-193-2023-BANAM"


async def test_racing_writers_store_a_command_once_and_the_watch_flags_once(pg_pool):
    store = PostgresEventStore(pg_pool, default_registry())
    clock = {"now": datetime(2024, 12, 30, tzinfo=UTC)}
    handler = PlansHandler(store, build_rules(), lambda: clock["now"])
    summary = await import_plan(handler, read_plan_file(SEED_003))
    assert (summary.recorded, summary.refused) == (37, [])

    done = CompleteTask(task_id=f"{PLAN}.1.1-b", done_at=datetime(2024, 12, 20, 10, tzinfo=VN_TZ))
    outcomes = await asyncio.gather(*(handler.handle(done) for _ in range(8)))
    assert sorted(o.status for o in outcomes).count(OutcomeStatus.RECORDED) == 1
    assert all(o.status in (OutcomeStatus.RECORDED, OutcomeStatus.UNCHANGED) for o in outcomes)
    stream = await store.read_stream(f"task:{PLAN}.1.1-b")
    assert [type(e.envelope.data) for e in stream][1:] == [TaskCompleted]

    watch = OverdueWatch(store=store, handler=handler, clock=lambda: clock["now"], interval_s=0.1)
    assert await watch.tick() == []  # 30/12/2024: nothing is due yet
    clock["now"] = datetime(2025, 1, 2, 3, tzinfo=UTC)
    flagged = await watch.tick()
    # the two open tasks due 31/12/2024 (1.1-b is done)
    assert sorted(flagged) == [f"{PLAN}.1.2-a", f"{PLAN}.1.8-a"]
    assert await watch.tick() == []
    again = OverdueWatch(store=store, handler=handler, clock=lambda: clock["now"])  # a restarted instance
    assert await again.tick() == []
    overdue = [e for e in await store.read_all(limit=1000) if isinstance(e.envelope.data, TaskBecameOverdue)]
    assert len(overdue) == 2
