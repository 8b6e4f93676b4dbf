"""Kafka's default partition of a keyed record, with the key's murmur2 hash computed once per key.

The relay chooses each record's partition itself so it can fill one record batch per partition (see
:mod:`eventkit.relay`). It must choose exactly what the producer's default partitioner would: consumers
rely on a stream staying on the partition Kafka's clients (Java's ``DefaultPartitioner``, aiokafka's)
put it on. aiokafka's murmur2 is pure Python (a few µs per key) and a relay publishes the same stream
ids again and again, so the hash is cached; tests/unit/test_partitioning.py compares the choice with
aiokafka's ``DefaultPartitioner`` for random keys and partition counts.
"""

from __future__ import annotations

from collections.abc import Sequence

from aiokafka.partitioner import murmur2

__all__ = ["KeyPartitioner"]


class KeyPartitioner:
    """``DefaultPartitioner()(key, all_partitions, ...)`` for a non-None key, with a bounded hash cache."""

    def __init__(self, max_keys: int = 200_000) -> None:
        self._hashes: dict[bytes, int] = {}
        self._max_keys = max_keys

    def __call__(self, key: bytes, all_partitions: Sequence[int]) -> int:
        """The partition of ``key`` among ``all_partitions`` (the topic's partitions, as aiokafka lists them)."""
        positive = self._hashes.get(key)
        if positive is None:
            if len(self._hashes) >= self._max_keys:
                self._hashes.clear()  # a bound on memory; re-hashing after a clear only costs time
            positive = self._hashes[key] = murmur2(key) & 0x7FFFFFFF
        return all_partitions[positive % len(all_partitions)]
