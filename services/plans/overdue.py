"""The scheduled fact: a task still open when its deadline's working time ends gets ``task became overdue``.

A background component (start/run/stop, like the relay). It tails the event store in its gap-safe order to
keep the open tasks with a deadline in memory (a commune has tens of tasks a year; a province thousands),
and every ``interval`` asks the domain to flag those whose deadline has passed. The flag is decided like
any command (fresh state, expected version), so a task completed meanwhile, or flagged by another
instance, is left alone.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable
from datetime import date, datetime

from contracts.plans import TaskAssigned, TaskBecameOverdue, TaskCancelled, TaskCompleted
from eventkit.logging import get_logger
from eventkit.store import Checkpoint, EventStore
from services.plans.domain import MarkTaskOverdue, deadline_passed
from services.plans.handler import OutcomeStatus, PlansHandler

__all__ = ["OverdueWatch"]

_log = get_logger("plans.overdue")


class OverdueWatch:
    """Emits ``vn.cchc.task.became_overdue`` for open tasks past their deadline."""

    name = "plans.overdue"

    def __init__(
        self,
        *,
        store: EventStore,
        handler: PlansHandler,
        clock: Callable[[], datetime],
        interval_s: float = 60.0,
        batch: int = 1000,
    ) -> None:
        self._store = store
        self._handler = handler
        self._clock = clock
        self._interval_s = interval_s
        self._batch = batch
        self._after = Checkpoint()
        self._open: dict[str, date] = {}

    async def start(self) -> None:
        """Nothing to connect: the store's pool is the service's."""

    async def stop(self) -> None:
        """Nothing to close."""

    async def run(self, stop: asyncio.Event) -> None:
        """Catch up with the store, flag what is overdue, sleep ``interval``; until ``stop``."""
        while not stop.is_set():
            await self.tick()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), timeout=self._interval_s)

    async def tick(self) -> list[str]:
        """One round: returns the ids of the tasks flagged overdue by it."""
        await self._catch_up()
        now = self._clock()
        calendar = self._handler.rules.calendar
        flagged = []
        for task_id, due in sorted(self._open.items()):
            if not deadline_passed(calendar, due, now):
                continue
            outcome = await self._handler.handle(MarkTaskOverdue(task_id=task_id))
            if outcome.status is OutcomeStatus.RECORDED:
                flagged.append(task_id)
                _log.info("task became overdue", task_id=task_id, due_date=due.isoformat())
            self._open.pop(task_id, None)
        return flagged

    async def _catch_up(self) -> None:
        while True:
            events = await self._store.read_all(self._after, self._batch)
            for stored in events:
                data = stored.envelope.data
                if isinstance(data, TaskAssigned) and data.due_date is not None:
                    self._open[data.task_id] = data.due_date
                elif isinstance(data, TaskCompleted | TaskCancelled | TaskBecameOverdue):
                    self._open.pop(data.task_id, None)
            if events:
                self._after = events[-1].checkpoint
            if len(events) < self._batch:
                return
