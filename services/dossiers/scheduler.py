"""The overdue scheduler: turns "the due date passed while the dossier was open" into an event.

Consumers then know a dossier is open and overdue (đang xử lý quá hạn) the moment it happens, without
polling. The scheduler itself looks at an index of the next due instant per open dossier: it sleeps until
the earliest one (at most ``interval``), so a quiet system costs one cheap query per interval.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable
from datetime import datetime, timedelta

import asyncpg

from eventkit.logging import get_logger
from services.dossiers.intake import Intake

__all__ = ["OverdueScheduler"]

_log = get_logger("dossiers.overdue")


class OverdueScheduler:
    """A service component: emits ``became overdue`` for every open dossier whose due instant passed."""

    name = "dossiers.overdue"

    def __init__(
        self,
        pool: asyncpg.Pool,
        intake: Intake,
        clock: Callable[[], datetime],
        *,
        interval: float = 5.0,
        settle: float = 10.0,
    ) -> None:
        self._pool = pool
        self._intake = intake
        self._clock = clock
        self._interval = interval
        self._settle = timedelta(seconds=settle)

    async def start(self) -> None:
        """Nothing to connect (the pool is the service's)."""

    async def stop(self) -> None:
        """Nothing to close."""

    async def tick(self) -> int:
        """One pass: emit what is due now; returns how many dossiers became overdue."""
        total = 0
        while True:
            async with self._pool.acquire() as conn, conn.transaction():
                emitted = await self._intake.check_overdue(conn, self._clock(), settle=self._settle)
            total += emitted
            if emitted < 500:
                return total

    async def run(self, stop: asyncio.Event) -> None:
        """Tick until ``stop``; a failed tick is logged and retried (the database may be restarting)."""
        while not stop.is_set():
            try:
                emitted = await self.tick()
                if emitted:
                    _log.info("dossiers became overdue", count=emitted)
                wait = await self._until_next()
            except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError) as exc:
                _log.warning("overdue tick failed; retrying", error=repr(exc))
                wait = self._interval
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), timeout=wait)

    async def _until_next(self) -> float:
        next_at: datetime | None = await self._pool.fetchval(
            "SELECT min(greatest(overdue_watch_at, updated_at + $1)) FROM dossier_state"
            " WHERE overdue_watch_at IS NOT NULL",
            self._settle,
        )
        if next_at is None:
            return self._interval
        return max(0.05, min(self._interval, (next_at - self._clock()).total_seconds()))
