"""Group commit for the HTTP way in: concurrent requests share one intake transaction.

Each HTTP submission alone would cost a PostgreSQL transaction of its own; at a busy province's peak (a
survey campaign, hundreds of kiosks) the database round trips, not the checks, would bound the throughput.
Requests therefore queue their submission and wait; a few workers each take what is queued (up to
``max_batch``), run the intake once (one read, then one write that is a transaction of its own: two round
trips per batch), and hand every request its own outcome. A lone request waits for nothing: a worker takes
it as soon as it is queued. The answer is sent only after the write committed, so an accepted response is
never lost.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Callable
from datetime import datetime

import asyncpg
from asyncpg.pool import PoolConnectionProxy

from eventkit.logging import get_logger
from eventkit.metrics import PlumbingMetrics
from services.surveys.intake import ConcurrencyError, Intake, Outcome, Submission

__all__ = ["GroupCommitter", "Unavailable"]

_log = get_logger("surveys.committer")
_RETRIES = 5


class Unavailable(Exception):
    """The submission could not be stored now (database unreachable, contention): retry later (HTTP 503)."""


class GroupCommitter:
    """A service component: workers that store queued submissions in shared transactions."""

    name = "surveys.http-commit"

    def __init__(
        self,
        pool: asyncpg.Pool,
        intake: Intake,
        clock: Callable[[], datetime],
        *,
        workers: int = 2,
        max_batch: int = 200,
        metrics: PlumbingMetrics | None = None,
    ) -> None:
        self._pool = pool
        self._intake = intake
        self._clock = clock
        self._workers = workers
        self._max_batch = max_batch
        self._metrics = metrics
        self._queue: asyncio.Queue[tuple[Submission, asyncio.Future[Outcome]]] = asyncio.Queue()
        self._running = False

    async def submit(self, submission: Submission) -> Outcome:
        """Queue ``submission`` and wait for its outcome (raises :class:`Unavailable`)."""
        if not self._running:
            msg = "the service is starting or stopping"
            raise Unavailable(msg)
        future: asyncio.Future[Outcome] = asyncio.get_running_loop().create_future()
        await self._queue.put((submission, future))
        return await future

    async def start(self) -> None:
        """Accept submissions from now on."""
        self._running = True

    async def run(self, stop: asyncio.Event) -> None:
        """Run the workers until ``stop``; then fail what is still queued (its requests get 503)."""
        workers = [asyncio.create_task(self._work(), name=f"{self.name}.{n}") for n in range(self._workers)]
        try:
            await stop.wait()
        finally:
            self._running = False
            for worker in workers:
                worker.cancel()
            for worker in workers:
                with contextlib.suppress(asyncio.CancelledError):
                    await worker
            while not self._queue.empty():
                _, future = self._queue.get_nowait()
                if not future.done():
                    future.set_exception(Unavailable("the service is stopping"))

    async def stop(self) -> None:
        """Nothing to close: the pool belongs to the runtime."""

    async def _work(self) -> None:
        # a worker keeps its connection between batches: handing it back to the pool costs a reset round
        # trip per batch (asyncpg's RESET ALL / UNLISTEN / CLOSE ALL); after a failure it takes a fresh one
        conn: PoolConnectionProxy | None = None
        try:
            while True:
                batch = [await self._queue.get()]
                while len(batch) < self._max_batch and not self._queue.empty():
                    batch.append(self._queue.get_nowait())
                started = time.perf_counter()
                try:
                    if conn is None:
                        conn = await self._pool.acquire()
                    outcomes = await self._commit(conn, [s for s, _ in batch])
                except asyncio.CancelledError:
                    _fail(batch, Unavailable("the service is stopping"))
                    raise
                except Exception as exc:  # the database, not the submissions: every request of the batch gets 503
                    _log.warning("survey batch not stored", error=repr(exc), size=len(batch))
                    _fail(batch, Unavailable(f"not stored, retry: {type(exc).__name__}"))
                    if conn is not None:
                        await self._release(conn)
                        conn = None
                    continue
                if self._metrics:
                    self._metrics.batch_seconds.labels(self.name).observe(time.perf_counter() - started)
                for (_, future), outcome in zip(batch, outcomes, strict=True):
                    if not future.done():  # the request may have gone (client disconnected)
                        future.set_result(outcome)
        finally:
            if conn is not None:
                await self._release(conn)

    async def _release(self, conn: PoolConnectionProxy) -> None:
        with contextlib.suppress(Exception):  # a broken connection is discarded by the pool
            await self._pool.release(conn)

    async def _commit(self, conn: PoolConnectionProxy, submissions: list[Submission]) -> list[Outcome]:
        for attempt in range(_RETRIES):
            try:
                # no BEGIN/COMMIT: the intake's write is one statement, committed (durably: synchronous_commit
                # is the server's) when it returns, and it refuses what changed since its read (see
                # Intake.process); two round trips per batch instead of nine
                return await self._intake.process(conn, submissions, self._clock())
            except ConcurrencyError:
                # another transaction wrote one of these streams first: re-judge against what it stored
                if attempt == _RETRIES - 1:
                    raise
                await asyncio.sleep(0.005 * (attempt + 1))
        raise AssertionError  # pragma: no cover


def _fail(batch: list[tuple[Submission, asyncio.Future[Outcome]]], error: Unavailable) -> None:
    for _, future in batch:
        if not future.done():
            future.set_exception(error)
