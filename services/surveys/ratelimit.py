"""Per-device rate limit of kiosk and tablet submissions (token bucket, in memory).

A kiosk at the one-stop shop is used by one respondent at a time, and a questionnaire takes minutes: a
device that submits faster than a person can answer is being gamed (a stuck key, a script, someone
ballot-stuffing). Each device gets ``burst`` submissions at once and ``per_minute`` more each minute; the
next one is answered 429 with the seconds to wait. The buckets live in the process: several replicas each
allow the rate (a deployment behind a load balancer pins a device to a replica or divides the rate).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

__all__ = ["DeviceRateLimiter"]

#: buckets kept at most; the idlest are forgotten first (a forgotten device starts with a full bucket)
_MAX_DEVICES = 100_000


@dataclass
class _Bucket:
    tokens: float
    at: float


class DeviceRateLimiter:
    """``acquire(device)`` -> 0 when a submission may go ahead, else the seconds until it may."""

    def __init__(self, per_minute: float, burst: int, clock: Callable[[], float] = time.monotonic) -> None:
        if per_minute <= 0 or burst < 1:
            msg = "per_minute must be > 0 and burst >= 1"
            raise ValueError(msg)
        self._rate = per_minute / 60.0
        self._burst = float(burst)
        self._clock = clock
        self._buckets: dict[str, _Bucket] = {}

    def acquire(self, device: str) -> float:
        """Take one submission from ``device``'s bucket; the wait in seconds when it is empty (nothing taken)."""
        now = self._clock()
        bucket = self._buckets.pop(device, None) or _Bucket(self._burst, now)
        bucket.tokens = min(self._burst, bucket.tokens + (now - bucket.at) * self._rate)
        bucket.at = now
        self._buckets[device] = bucket  # re-inserted: dict order is least recently used first
        if len(self._buckets) > _MAX_DEVICES:
            del self._buckets[next(iter(self._buckets))]
        if bucket.tokens >= 1.0:
            bucket.tokens -= 1.0
            return 0.0
        return (1.0 - bucket.tokens) / self._rate
