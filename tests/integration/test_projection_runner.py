"""The projection runner on the real broker and database: exactly-once effects across crashes, dead letters."""

import asyncio
import contextlib
import dataclasses
import functools
import os
import random
import subprocess
import sys
import uuid
from collections import Counter
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import asyncpg
import pytest
from aiokafka import AIOKafkaProducer
from typer.testing import CliRunner

from contracts.topics import dead_letter_topic
from contracts.wire import encode
from eventkit.deadletter import DeadLetterPublisher, read_dead_letters, replay_dead_letters
from eventkit.kafka import build_producer
from eventkit.pg import apply_migrations, create_pool
from eventkit.projection import MIGRATIONS, BatchConflict, ProjectionRunner
from eventkit.settings import KafkaSettings
from eventkit.testing import POISON, SampleTotalsProjection, sample_event, sample_registry
from services import cli
from tests.kafka_helpers import create_topic, new_topic_name

pytestmark = pytest.mark.integration
ROOT = Path(__file__).resolve().parents[2]
UNITS = ("00004", "00007", "25111")


async def _produce(bootstrap: str, topic: str, records: list[tuple[bytes | None, bytes | None, list]]) -> None:
    producer = build_producer(KafkaSettings(bootstrap_servers=bootstrap), "test-feeder")
    await producer.start()
    try:
        for key, value, headers in records:
            await producer.send(topic, value=value, key=key, headers=headers)
        await producer.flush()
    finally:
        await producer.stop()


def _workload(n: int, duplicates: int, seed: int) -> tuple[list, Counter, Counter]:
    rng = random.Random(seed)
    events = [
        sample_event(f"dossier-{rng.randrange(40)}", str(i), amount=rng.randrange(1, 50), unitcode=rng.choice(UNITS))
        for i in range(n)
    ]
    records = [encode(e) for e in events]
    records += [encode(rng.choice(events)) for _ in range(duplicates)]  # the relay republished some
    counts, totals = Counter(), Counter()
    for e in events:
        counts[e.unitcode] += 1
        totals[e.unitcode] += e.data.amount
    return records, counts, totals


async def _read_model(url: str) -> tuple[Counter, Counter]:
    conn = await asyncpg.connect(url, server_settings={"search_path": "plumbing"})
    try:
        rows = await conn.fetch("SELECT unitcode, events, total FROM sample_totals")
    finally:
        await conn.close()
    return Counter({r["unitcode"]: r["events"] for r in rows}), Counter({r["unitcode"]: r["total"] for r in rows})


def _run_child(url: str, bootstrap: str, topic: str, expect: int, *crash: str, dedupe: bool = True) -> int:
    env = {**os.environ, "EXPECT_OFFSETS_TOTAL": str(expect), "DEDUPE_EVENT_IDS": "1" if dedupe else "0"}
    proc = subprocess.run(
        [sys.executable, "-m", "tests.integration.runner_child", url, bootstrap, topic, *crash],
        cwd=ROOT,
        env=env,
        timeout=180,
        capture_output=True,
        text=True,
        check=False,
    )
    if proc.returncode not in (0, -9):
        pytest.fail(f"runner child failed ({proc.returncode}):\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}")
    return proc.returncode


@contextlib.asynccontextmanager
async def _running_with_dead_letters(
    database: str, bootstrap: str, topic: str, projection: SampleTotalsProjection, producer_name: str, **kw: Any
) -> AsyncIterator[tuple[asyncpg.Pool, AIOKafkaProducer, str]]:
    """A runner of ``projection`` over ``topic``, running, whose dead letters go to a topic of their own:
    yields (its migrated pool, the started dead-letter producer, the consumer name); stops it all after."""
    pool = await create_pool(database, "plumbing", max_size=4)
    await apply_migrations(pool, "eventkit.projection", MIGRATIONS)
    await apply_migrations(pool, projection.name, projection.migrations)
    kafka = KafkaSettings(bootstrap_servers=bootstrap)
    producer = build_producer(kafka, producer_name)
    await producer.start()
    consumer_name = f"sample_totals-{topic[-10:]}"
    await create_topic(bootstrap, dead_letter_topic(consumer_name), partitions=1)
    runner = ProjectionRunner(
        projection=projection,
        pool=pool,
        kafka=kafka,
        registry=sample_registry(),
        dead_letters=DeadLetterPublisher(producer, consumer_name),
        group_id=f"g-{topic}",
        **kw,
    )
    stop = asyncio.Event()
    await runner.start()
    task = asyncio.create_task(runner.run(stop))
    try:
        yield pool, producer, consumer_name
    finally:
        stop.set()
        await task
        await runner.stop()
        await producer.stop()
        await pool.close()


@pytest.mark.parametrize(
    ("point", "nth"),
    [("fetched", 3), ("applied", 3), ("db_committed", 3), ("kafka_committed", 1)],
)
async def test_a_runner_killed_at_any_point_leaves_the_read_model_exactly_right(
    fresh_database, kafka_bootstrap, point, nth
) -> None:
    topic = await create_topic(kafka_bootstrap, new_topic_name(), partitions=3)
    records, counts, totals = _workload(600, duplicates=25, seed=hash(point) & 0xFFFF)
    await _produce(kafka_bootstrap, topic, records)
    expect = len(records)
    crashed = await asyncio.to_thread(_run_child, fresh_database, kafka_bootstrap, topic, expect, point, str(nth))
    assert crashed == -9, f"the child was expected to die at {point}"
    partial_counts, _ = await _read_model(fresh_database)
    assert sum(partial_counts.values()) < sum(counts.values())  # it really died mid-way
    assert await asyncio.to_thread(_run_child, fresh_database, kafka_bootstrap, topic, expect) == 0
    got_counts, got_totals = await _read_model(fresh_database)
    assert got_counts == counts  # nothing lost, nothing counted twice (25 duplicate records ignored)
    assert got_totals == totals


@pytest.mark.parametrize("point", ["applied", "db_committed"])
async def test_offset_gating_alone_is_exactly_once_on_a_topic_without_duplicates(
    fresh_database, kafka_bootstrap, point
) -> None:
    """The configuration canonical topics allow, since the relay publishes them exactly once."""
    topic = await create_topic(kafka_bootstrap, new_topic_name(), partitions=3)
    records, counts, totals = _workload(600, duplicates=0, seed=7)
    await _produce(kafka_bootstrap, topic, records)
    run = functools.partial(_run_child, fresh_database, kafka_bootstrap, topic, len(records), dedupe=False)
    assert await asyncio.to_thread(run, point, "3") == -9
    assert await asyncio.to_thread(run) == 0
    assert await _read_model(fresh_database) == (counts, totals)


async def test_bad_records_are_dead_lettered_with_reason_and_origin_and_the_runner_moves_on(
    fresh_database, kafka_bootstrap
) -> None:
    topic = await create_topic(kafka_bootstrap, new_topic_name(), partitions=2)
    good = [sample_event(f"d{i}", str(i), amount=2, unitcode="00004") for i in range(30)]
    key, _, headers = encode(good[0])
    poison = sample_event("d-poison", POISON, unitcode="00004")
    bad = [
        (key, b"{not json", [(k, str(uuid.uuid4()).encode() if k == "ce_id" else v) for k, v in headers]),
        (b"x", b"{}", []),  # no CloudEvents headers at all
        (key, b"{}", [(k, b"vn.cchc.test.nobody_knows" if k == "ce_type" else v) for k, v in headers]),
        encode(poison),  # valid, but the projection cannot apply it
    ]
    await _produce(kafka_bootstrap, topic, [encode(e) for e in good[:15]] + bad + [encode(e) for e in good[15:]])

    async with _running_with_dead_letters(
        fresh_database, kafka_bootstrap, topic, SampleTotalsProjection((topic,)), "dlq", max_records=100
    ) as (pool, producer, consumer_name):

        async def offsets_total() -> int:
            return await pool.fetchval("SELECT coalesce(sum(next_offset), 0) FROM projection_offsets")

        for _ in range(300):
            if await offsets_total() >= 34:
                break
            await asyncio.sleep(0.1)
        assert await offsets_total() == 34  # every record consumed, bad ones included
        counts, totals = await _read_model(fresh_database)
        assert counts == Counter({"00004": 30})
        assert totals == Counter({"00004": 60})

        letters = await read_dead_letters(kafka_bootstrap, consumer_name)
        assert len(letters) == 4
        reasons = sorted(letter.reason for letter in letters)
        assert any("invalid data" in r for r in reasons)
        assert any("invalid CloudEvents headers" in r for r in reasons)
        assert any("unknown event type" in r for r in reasons)
        assert any("poison event" in r for r in reasons)
        assert {letter.origin_topic for letter in letters} == {topic}
        assert all(letter.consumer == consumer_name for letter in letters)
        broken = next(letter for letter in letters if "invalid data" in letter.reason)
        assert broken.value == b"{not json"  # the original bytes, untouched
        assert broken.origin_offset >= 0

        # replaying: an already-applied event is a no-op (dedupe), a still-bad record is parked again
        key0, value0, headers0 = encode(good[0])
        already_applied = dataclasses.replace(letters[0], key=key0, value=value0, headers=tuple(headers0))
        assert await replay_dead_letters(producer, [already_applied, broken]) == 2
        for _ in range(300):
            if await offsets_total() >= 36:
                break
            await asyncio.sleep(0.1)
        await asyncio.sleep(0.5)
        counts, totals = await _read_model(fresh_database)
        assert counts == Counter({"00004": 30})
        assert len(await read_dead_letters(kafka_bootstrap, consumer_name)) == 5

        # the operators' command line shows the same dead letters and replays one by its offset
        env = {"KAFKA_BOOTSTRAP_SERVERS": kafka_bootstrap, "COLUMNS": "250"}
        listed = await asyncio.to_thread(CliRunner().invoke, cli.app, ["deadletters", "list", consumer_name], env=env)
        assert listed.exit_code == 0, listed.output
        assert f"dead letters of {consumer_name} (5)" in listed.output
        assert "poison event" in listed.output
        replayed = await asyncio.to_thread(
            CliRunner().invoke,
            cli.app,
            ["deadletters", "replay", consumer_name, "--offset", str(broken.dlq_offset)],
            env=env,
        )
        assert replayed.exit_code == 0, replayed.output
        for _ in range(100):
            if len(await read_dead_letters(kafka_bootstrap, consumer_name)) == 6:
                break
            await asyncio.sleep(0.1)
        assert len(await read_dead_letters(kafka_bootstrap, consumer_name)) == 6  # still broken: parked again
        args = ["deadletters", "replay", consumer_name]
        refused = await asyncio.to_thread(CliRunner().invoke, cli.app, args, env=env)
        assert refused.exit_code != 0  # neither --offset nor --all: nothing is replayed by accident
    assert dead_letter_topic(consumer_name).startswith("vn.cchc.deadletters.")


class _LosesRaces(SampleTotalsProjection):
    """Loses its first ``lost`` batches to a concurrent transaction, then applies normally."""

    def __init__(self, topics: tuple[str, ...], lost: int) -> None:
        super().__init__(topics)
        self.lost = lost

    async def apply(self, conn, events):  # type: ignore[no-untyped-def]
        if self.lost > 0:
            self.lost -= 1
            raise BatchConflict("another member wrote this row first")
        return await super().apply(conn, events)


async def test_a_batch_that_keeps_losing_races_is_read_again_and_never_dead_lettered(
    fresh_database, kafka_bootstrap
) -> None:
    topic = await create_topic(kafka_bootstrap, new_topic_name(), partitions=1)
    await _produce(kafka_bootstrap, topic, [encode(sample_event(f"c{i}", str(i), unitcode="00004")) for i in range(20)])
    projection = _LosesRaces((topic,), lost=8)  # more than a batch's retries plus a record's: bisecting would blame
    async with _running_with_dead_letters(fresh_database, kafka_bootstrap, topic, projection, "dlq-conflicts") as (
        pool,
        _,
        consumer_name,
    ):
        for _ in range(300):
            if await pool.fetchval("SELECT coalesce(sum(next_offset), 0) FROM projection_offsets") >= 20:
                break
            await asyncio.sleep(0.1)
        assert projection.lost == 0  # every lost race was retried
        counts, _ = await _read_model(fresh_database)
        assert counts == Counter({"00004": 20})  # every event applied once
        assert await read_dead_letters(kafka_bootstrap, consumer_name) == []  # and none blamed
