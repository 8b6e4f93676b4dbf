"""The publisher's cooperative helpers: same results as the straightforward code, and the loop gets turns."""

from __future__ import annotations

import asyncio
import uuid

from services.scoring.cooperative import compute_values, gently, random_ids
from services.scoring.domain.indicators import SPECS, OpenCounts, compute
from services.scoring.subscriptions import rest_s


def test_random_ids_are_version_4_uuids_like_the_stdlib_makes() -> None:
    ids = random_ids(2000)
    assert len(set(ids)) == 2000
    for value in ids:
        assert value.version == 4
        assert value.variant == uuid.RFC_4122
        again = uuid.UUID(str(value))  # the stdlib's own parse of the spelling gives an equal, hashable UUID
        assert again == value
        assert hash(again) == hash(value)
        assert again.bytes == value.bytes
    assert random_ids(0) == []


async def test_gently_gives_every_item_in_order_and_lets_other_tasks_run() -> None:
    ticks = 0

    async def other() -> None:
        nonlocal ticks
        while True:
            ticks += 1
            await asyncio.sleep(0)

    task = asyncio.create_task(other())
    await asyncio.sleep(0)
    seen_ticks = []
    items = [item async for item in gently(range(50), slice_s=0.0)]  # a pause after every item
    async for _ in gently(range(3), slice_s=0.0):
        seen_ticks.append(ticks)
    task.cancel()
    assert items == list(range(50))
    assert seen_ticks[0] < seen_ticks[1] < seen_ticks[2]


async def test_gently_without_time_passing_never_pauses() -> None:
    ticks = 0

    async def other() -> None:
        nonlocal ticks
        ticks += 1

    asyncio.get_running_loop().call_soon(lambda: None)
    task = asyncio.create_task(other())
    items = [item async for item in gently(range(100), slice_s=3600.0)]
    assert items == list(range(100))
    assert ticks == 0  # the other task only ran once we awaited something else
    await task
    assert ticks == 1


async def test_compute_values_are_computes_values() -> None:
    counters = {"received": 12.0, "resolved": 9.0, "resolved_on_time": 7.0, "resolved_early": 1.0, "resolved_late": 1.0}
    inputs = [
        (("00004", 1), counters, OpenCounts(2, 1, 3)),
        (("00007", 1), {}, OpenCounts()),
        (("79", 1), {k: v * 3 for k, v in counters.items()}, OpenCounts(0, 4, 1)),
    ]
    got = await compute_values(iter(inputs))
    assert list(got) == [k for k, _, _ in inputs]
    for key, sums, opened in inputs:
        assert got[key] == compute(list(SPECS), sums, opened)


def test_the_publisher_rests_so_that_its_rounds_take_at_most_their_share_of_the_time() -> None:
    assert rest_s(0.5, 0.01, 0.25) == 0.5  # quick rounds: the configured interval
    assert rest_s(0.5, 4.0, 0.25) == 12.0  # 4 s of work, then 12 s of rest: a quarter of the time
    assert rest_s(0.5, 4.0, 0.5) == 4.0
    assert rest_s(0.5, 4.0, 1.0) == 0.5  # share 1: never longer than the interval
    for took in (0.6, 1.0, 3.3, 40.0):
        rest = rest_s(0.5, took, 0.2)
        assert took / (took + rest) <= 0.2 + 1e-9
