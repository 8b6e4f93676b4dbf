"""CPU-heavy loops that share the event loop politely.

The scoring service runs its projections, its indicator publisher and its HTTP API in one event loop. A
publisher round computes every indicator of hundreds of (unit, period) keys — ≈ 0.5 ms of CPU each for the
whole 766 score — and builds an event per changed value; done in one go, a round held the loop for a second
at a time, so a projection batch that was ready waited behind it and an event took seconds instead of a
fraction of one to reach the query API (``bench/chain.py``). :func:`gently` gives the loop back every few
milliseconds of such work.
"""

from __future__ import annotations

import asyncio
import os
import time
import uuid
from collections.abc import AsyncIterator, Hashable, Iterable, Mapping
from typing import TypeVar

from services.scoring.domain.indicators import SPECS, IndicatorValue, OpenCounts, compute

__all__ = ["SLICE_S", "compute_values", "gently", "random_ids"]

K = TypeVar("K", bound=Hashable)
T = TypeVar("T")

#: the longest stretch of work between two chances for the rest of the loop to run
SLICE_S = 0.005

# the version and variant bits of a version 4 UUID (RFC 4122 §4.4), as uuid.uuid4 sets them
_CLEAR = ~((0xF000 << 64) | (0xC000 << 48))
_SET = (4 << 76) | (0x8000 << 48)


async def gently(items: Iterable[T], slice_s: float = SLICE_S) -> AsyncIterator[T]:
    """``items``, pausing for the event loop whenever ``slice_s`` seconds passed since the last pause (the
    time the caller spent on the items included)."""
    since = time.perf_counter()
    for item in items:
        yield item
        if time.perf_counter() - since >= slice_s:
            await asyncio.sleep(0)
            since = time.perf_counter()


async def compute_values(
    inputs: Iterable[tuple[K, Mapping[str, float], OpenCounts]],
) -> dict[K, dict[str, IndicatorValue]]:
    """Every spec'd indicator of each key from its counters and open counts (exactly ``compute``'s values),
    pausing for the event loop every :data:`SLICE_S` of work."""
    keys = list(SPECS)
    return {key: compute(keys, sums, opened) async for key, sums, opened in gently(inputs)}


def random_ids(n: int) -> list[uuid.UUID]:
    """``n`` random version 4 UUIDs, as ``uuid.uuid4()`` makes them (one ``os.urandom`` call for all of them
    instead of one each, and no argument checks: a publisher round makes thousands)."""
    pool = os.urandom(16 * n)
    ids = []
    for i in range(n):
        value = object.__new__(uuid.UUID)
        object.__setattr__(value, "int", (int.from_bytes(pool[16 * i : 16 * i + 16]) & _CLEAR) | _SET)
        object.__setattr__(value, "is_safe", uuid.SafeUUID.unknown)
        ids.append(value)
    return ids
