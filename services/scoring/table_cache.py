"""Rendered answers kept per question, at most ``max_age_s`` old, recomputed once at a time, LRU-bounded.

Made for the province table: a dashboard wall of 100 clients asks the same question all the time, the
answer costs a database round trip and the scoring of 168 communes, and the product promises "live within
a second". So each question (a hashable key) keeps its rendered bytes and the instant its computation
*started* (the data it read is at least that recent):

- an answer younger than its refresh point is served as it is;
- an answer between its refresh point and ``max_age_s`` old is still served, and one refresh starts in
  the background — so while the refresh reads the database, nobody waits for it. The refresh point is as
  late as is safe: ``max_age_s`` minus a lead of three times the last computation's duration (at least
  ``min_lead_s``), but never earlier than ``refresh_after_s`` — a table computed in 15 ms is refreshed
  about every 0.8 s rather than every 0.5 s, one computed in 150 ms at about 0.55 s;
- an answer ``max_age_s`` old or older is never served: the request waits for the running (or a new)
  computation. Hence every answer served reflects the read model as of less than ``max_age_s`` before it
  was served, as long as one computation takes less than ``max_age_s - refresh_after_s``; a slower one is
  still shared (single flight), never run twice at once for one key.

A failed computation is not remembered: its waiters get the error, and the next request tries again (a
failed background refresh leaves the previous answer in place until it expires). At most ``max_entries``
questions are kept; the least recently asked one goes first.
"""

from __future__ import annotations

import asyncio
import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Hashable
from dataclasses import dataclass
from typing import Generic, TypeVar

import structlog

__all__ = ["FreshCache"]

K = TypeVar("K", bound=Hashable)
_log = structlog.get_logger(__name__)


@dataclass(slots=True)
class _Entry:
    value: bytes | None = None
    as_of: float = 0.0  # clock() when the computation that produced ``value`` started
    duration: float = 0.0  # how long that computation took
    pending: asyncio.Task[bytes] | None = None


class FreshCache(Generic[K]):
    """See the module docstring. ``compute(key)`` renders the answer to one question."""

    def __init__(
        self,
        compute: Callable[[K], Awaitable[bytes]],
        *,
        max_age_s: float = 1.0,
        refresh_after_s: float | None = None,
        min_lead_s: float | None = None,
        max_entries: int = 256,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if max_entries < 1:
            msg = "max_entries must be at least 1"
            raise ValueError(msg)
        self._compute = compute
        self.max_age_s = max_age_s
        self.refresh_after_s = max_age_s / 2 if refresh_after_s is None else min(refresh_after_s, max_age_s)
        self.min_lead_s = max_age_s / 5 if min_lead_s is None else min_lead_s
        self.max_entries = max_entries
        self._clock = clock
        self._entries: OrderedDict[K, _Entry] = OrderedDict()

    def __len__(self) -> int:
        return len(self._entries)

    async def get(self, key: K) -> bytes:
        """The answer to ``key``: cached if young enough, else from the (single) running computation."""
        now = self._clock()
        entry = self._entries.get(key)
        if entry is None:
            entry = self._entries[key] = _Entry()
            while len(self._entries) > self.max_entries:
                self._entries.popitem(last=False)
        else:
            self._entries.move_to_end(key)
        age = now - entry.as_of
        if entry.value is not None and age < self.max_age_s:
            lead = max(self.min_lead_s, 3 * entry.duration)
            if age >= max(self.refresh_after_s, self.max_age_s - lead) and entry.pending is None:
                self._start(key, entry, now)  # the answer stays served while the refresh runs
            return entry.value
        task = entry.pending or self._start(key, entry, now)
        # shielded: a client going away cancels its own wait, never the computation the others share
        return await asyncio.shield(task)

    def _start(self, key: K, entry: _Entry, now: float) -> asyncio.Task[bytes]:
        task = asyncio.ensure_future(self._compute(key))
        entry.pending = task

        def done(t: asyncio.Task[bytes]) -> None:
            if entry.pending is t:
                entry.pending = None
            if t.cancelled():
                return
            if (error := t.exception()) is not None:  # retrieved here, so a refresh nobody awaits logs no warning
                if entry.value is not None:
                    _log.warning("table_refresh_failed", key=str(key), error=repr(error))
                return
            if now >= entry.as_of:  # a slower, older computation never replaces a newer answer
                entry.value, entry.as_of, entry.duration = t.result(), now, self._clock() - now

        task.add_done_callback(done)
        return task
