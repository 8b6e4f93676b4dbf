"""The relay's partition choice is aiokafka's default partitioner's, key by key (and so Kafka's)."""

from __future__ import annotations

import pytest
from aiokafka.partitioner import DefaultPartitioner, murmur2
from hypothesis import given, settings
from hypothesis import strategies as st

from eventkit.partitioning import KeyPartitioner


@settings(max_examples=2000)
@given(key=st.binary(max_size=80), count=st.integers(min_value=1, max_value=64))
def test_the_partition_of_any_key_is_the_default_partitioners(key: bytes, count: int) -> None:
    partitions = list(range(count))
    chosen = KeyPartitioner()
    assert chosen(key, partitions) == DefaultPartitioner()(key, partitions, partitions)
    assert chosen(key, partitions) == DefaultPartitioner()(key, partitions, [])  # cached: the same again


@settings(max_examples=300)
@given(keys=st.lists(st.text(max_size=40).map(str.encode), max_size=50), count=st.integers(1, 24))
def test_a_small_cache_that_is_cleared_still_chooses_the_same(keys: list[bytes], count: int) -> None:
    partitions = list(range(count))
    chosen = KeyPartitioner(max_keys=3)
    for key in keys * 2:
        assert chosen(key, partitions) == DefaultPartitioner()(key, partitions, partitions)
    assert len(chosen._hashes) <= 3


@pytest.mark.parametrize(
    ("key", "expected"),
    [
        # murmur2 of Kafka's Java client (org.apache.kafka.common.utils.Utils.murmur2), its published vectors
        (b"21", -973932308),
        (b"foobar", -790332482),
        (b"a-little-bit-long-string", -985981536),
        (b"a-little-bit-longer-string", -1486304829),
        (b"lkjh234lh9fiuh90y23oiuhsafujhadof229phr9h19h89h8", -58897971),
        (b"abc", 479470107),
    ],
)
def test_the_hash_is_kafkas_murmur2(key: bytes, expected: int) -> None:
    # aiokafka's murmur2 returns the Java int as an unsigned 32-bit value
    assert murmur2(key) == expected & 0xFFFFFFFF
    assert KeyPartitioner()(key, range(1 << 30)) == (expected & 0x7FFFFFFF) % (1 << 30)


def test_the_partition_is_taken_from_the_list_as_given() -> None:
    # aiokafka indexes list(set of partition ids): the relay passes the same list, whatever its order
    partitions = [5, 3, 9]
    assert KeyPartitioner()(b"dossier:1", partitions) == DefaultPartitioner()(b"dossier:1", partitions, [])
