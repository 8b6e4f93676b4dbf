"""The relay's partitioning: the same hash and partition as Kafka's default partitioner (Java and aiokafka)."""

from __future__ import annotations

import pytest
from aiokafka.partitioner import DefaultPartitioner
from aiokafka.partitioner import murmur2 as aiokafka_murmur2
from hypothesis import given, settings
from hypothesis import strategies as st

from eventkit.kafka import murmur2, partition_for_key

# org.apache.kafka.common.utils.UtilsTest#testMurmur2 (signed 32-bit results)
JAVA = {
    b"21": -973932308,
    b"foobar": -790332482,
    b"a-little-bit-long-string": -985981536,
    b"a-little-bit-longer-string": -1486304829,
    b"lkjh234lh9fiuh90y23oiuhsafujhadof229phr9h19h89h8": -58897971,
    b"abc": 479470107,
}


@pytest.mark.parametrize(("key", "signed"), JAVA.items())
def test_murmur2_gives_the_java_client_hash(key: bytes, signed: int) -> None:
    assert murmur2(key) == signed & 0xFFFFFFFF


@given(st.binary(max_size=200))
@settings(max_examples=2000)
def test_murmur2_equals_aiokafka(key: bytes) -> None:
    assert murmur2(key) == aiokafka_murmur2(key)


@given(st.text(min_size=1, max_size=80), st.integers(1, 64))
@settings(max_examples=500)
def test_a_key_goes_where_the_default_partitioner_sends_it(stream_id: str, count: int) -> None:
    key = stream_id.encode()
    partitions = list(range(count))
    assert partition_for_key(key, partitions) == DefaultPartitioner()(key, partitions, partitions)
