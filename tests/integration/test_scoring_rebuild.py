"""Rebuild and verify on the real broker and database, with the live projections running the whole time:
the rebuild replays the topics into fresh tables and swaps them in with no difference from the live read
models, the live runners carry on exactly once in the swapped-in tables, verify reports zero differences on
a healthy model, and both verify and ``chiso scoring verify`` (exit code 1) catch a tampered counter."""

from __future__ import annotations

import asyncio
import random
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, date, datetime, timedelta, timezone

import asyncpg
import pytest
import pytest_asyncio
from aiokafka import AIOKafkaProducer
from typer.testing import CliRunner

from contracts.dossiers import TimelinessClass
from contracts.envelope import make_envelope
from contracts.registry import default_registry
from contracts.topics import DOSSIERS_EVENTS, TOPICS, dead_letter_topic
from contracts.wire import encode
from eventkit import projection as plumbing
from eventkit.deadletter import DeadLetterPublisher
from eventkit.pg import apply_migrations, create_pool
from eventkit.projection import ProjectionRunner
from eventkit.settings import KafkaSettings
from infra.topics import TopicSpec, provision_topics, topic_spec
from services.cli import app as chiso
from services.scoring.app import scoring_projections
from services.scoring.rebuild import rebuild
from services.scoring.subscriptions import MIGRATIONS as SUBSCRIPTIONS
from services.scoring.subscriptions import dossier_change_hook
from tests.integration.test_scoring_projection import received, resolved

pytestmark = pytest.mark.integration
VN = timezone(timedelta(hours=7))
REGISTRY = default_registry()


@pytest_asyncio.fixture
async def live(fresh_database: str, kafka_bootstrap: str) -> AsyncIterator[asyncpg.Pool]:
    """The scoring projections running against the real topics into schema ``scoring`` (as the service does)."""
    projections = scoring_projections(dossier_change_hook(lambda: datetime.now(UTC)))
    await provision_topics(
        kafka_bootstrap,
        [topic_spec(t) for t in TOPICS]
        + [TopicSpec(name=dead_letter_topic(p.name), partitions=1, retention_ms=None) for p in projections],
    )
    pool = await create_pool(fresh_database, "scoring", min_size=1, max_size=8)
    await apply_migrations(pool, "eventkit.projection", plumbing.MIGRATIONS)
    await apply_migrations(pool, "scoring.subscriptions", SUBSCRIPTIONS)
    producer = AIOKafkaProducer(bootstrap_servers=kafka_bootstrap)
    await producer.start()
    runners = []
    for p in projections:
        await apply_migrations(pool, p.name, p.migrations)
        runners.append(
            ProjectionRunner(
                projection=p,
                pool=pool,
                kafka=KafkaSettings(bootstrap_servers=kafka_bootstrap),
                registry=REGISTRY,
                dead_letters=DeadLetterPublisher(producer, p.name),
                group_id=f"test.{p.name}.{uuid.uuid4().hex[:8]}",
            )
        )
    stop = asyncio.Event()
    for r in runners:
        await r.start()
    tasks = [asyncio.create_task(r.run(stop)) for r in runners]
    try:
        yield pool
    finally:
        stop.set()
        await asyncio.gather(*tasks)
        for r in runners:
            await r.stop()
        await producer.stop()
        await pool.close()


async def _publish(bootstrap: str, unit: str, province: str, dossiers: range, *, resolve: bool) -> None:
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, enable_idempotence=True)
    await producer.start()
    try:
        at = datetime(2026, 3, 10, 9, tzinfo=VN)
        for i in dossiers:
            payloads = [received(f"{unit}-D{i}", at)]
            if resolve and i % 2 == 0:
                klass = TimelinessClass.LATE if i % 4 == 0 else TimelinessClass.EARLY
                payloads.append(resolved(f"{unit}-D{i}", at, at + timedelta(days=2), klass))
            for payload in payloads:
                envelope = make_envelope(
                    payload,
                    id=uuid.uuid4(),
                    source="urn:chiso:dossiers",
                    subject=f"dossier:{payload.dossier_id}",
                    time=at,
                    unitcode=unit,
                    provincecode=province,
                )
                key, value, headers = encode(envelope)
                await producer.send(DOSSIERS_EVENTS, value=value, key=key, headers=headers)
        await producer.flush()
    finally:
        await producer.stop()


async def _received(pool: asyncpg.Pool, unit: str) -> float:
    value = await pool.fetchval(
        "SELECT sum(value) FROM indicator_counters WHERE unitcode = $1 AND counter = 'r06.received'"
        " AND period_kind = 'month' AND period_start = '2026-03-01'",
        unit,
    )
    return float(value or 0)


async def _wait_for(pool: asyncpg.Pool, unit: str, count: int) -> None:
    for _ in range(240):
        if await _received(pool, unit) == count:
            return
        await asyncio.sleep(0.25)
    assert await _received(pool, unit) == count


async def _month(pool: asyncpg.Pool, unit: str) -> dict[str, float]:
    rows = await pool.fetch(
        "SELECT counter, sum(value) AS v FROM indicator_counters WHERE unitcode = $1 AND period_kind = 'month'"
        " AND period_start = '2026-03-01' GROUP BY 1",
        unit,
    )
    return {r["counter"]: round(r["v"], 6) for r in rows if round(r["v"], 6) != 0}


async def test_rebuild_swaps_in_the_same_read_models_and_verify_catches_tampering(
    live: asyncpg.Pool, fresh_database: str, kafka_bootstrap: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    unit, province = f"{random.randint(10000, 99999)}", "01"
    await _publish(kafka_bootstrap, unit, province, range(20), resolve=True)
    await _wait_for(live, unit, 20)
    before = await _month(live, unit)
    assert before["r06.received"] == 20
    assert before["r06.resolved.late"] == 5

    await live.execute("DELETE FROM scoring_dirty")  # what the swap marks is checked below, not the live hook's
    kafka = KafkaSettings(bootstrap_servers=kafka_bootstrap)
    progress: list[tuple[int, int]] = []
    report = await rebuild(
        database_url=fresh_database,
        schema="scoring",
        kafka=kafka,
        registry=REGISTRY,
        projections=scoring_projections(),
        swap=True,
        progress=lambda done, total: progress.append((done, total)),
    )
    assert report.swapped
    assert report.differences == 0, report.tables
    by_table = {t.table: t for t in report.tables}
    assert {"unit_activity", "dossier_facts", "indicator_counters"} <= set(by_table)  # every projection's tables
    assert by_table["dossier_facts"].live_rows == by_table["dossier_facts"].rebuilt_rows >= 20
    assert report.events >= 30
    assert progress
    assert progress[-1][0] == report.events

    # the swapped-in tables serve the same indicators, and the old ones were kept aside
    assert await _month(live, unit) == before
    conn = await asyncpg.connect(fresh_database)
    try:
        assert await conn.fetchval("SELECT count(*) FROM pg_namespace WHERE nspname = $1", report.old_schema) == 1
        # the non-replayed tables (subscription state) moved into the live schema with the swap
        assert await conn.fetchval("SELECT to_regclass('scoring.scoring_dirty') IS NOT NULL")
        # every period the rebuilt counters feed is marked for the publisher: the month, and the quarter and year
        # summed from it (only months are stored), for the commune and its province
        dirty = {
            tuple(r) for r in await conn.fetch("SELECT unitcode, period_kind, period_start FROM scoring.scoring_dirty")
        }
        march, first = date(2026, 3, 1), date(2026, 1, 1)
        for code in (unit, province):
            assert {(code, "month", march), (code, "quarter", first), (code, "year", first)} <= dirty
    finally:
        await conn.close()

    # the live runners carry on in the swapped-in tables, exactly once
    await _publish(kafka_bootstrap, unit, province, range(20, 23), resolve=False)
    await _wait_for(live, unit, 23)
    await asyncio.sleep(1)
    assert await _received(live, unit) == 23
    old = await live.fetchval(
        f"SELECT sum(value) FROM {report.old_schema}.indicator_counters WHERE unitcode = $1"
        " AND counter = 'r06.received' AND period_kind = 'month'",
        unit,
    )
    assert old == 20  # the new events went to the swapped-in tables only

    healthy = await rebuild(  # replayed by two worker processes, each with half the partitions
        database_url=fresh_database,
        schema="scoring",
        kafka=kafka,
        registry=REGISTRY,
        projections=scoring_projections(),
        swap=False,
        workers=2,
    )
    assert not healthy.swapped
    assert healthy.differences == 0, healthy.tables
    assert len(healthy.worker_peak_rss_mb) == 2  # each worker measured its own memory (Linux)
    assert all(m is not None and m < 500 for m in healthy.worker_peak_rss_mb), healthy.worker_peak_rss_mb

    await live.execute(
        "UPDATE indicator_counters SET value = value + 1 WHERE unitcode = $1 AND counter = 'r06.received'"
        " AND period_kind = 'month'",
        unit,
    )
    tampered = await rebuild(
        database_url=fresh_database,
        schema="scoring",
        kafka=kafka,
        registry=REGISTRY,
        projections=scoring_projections(),
        swap=False,
    )
    counters = {t.table: t for t in tampered.tables}["indicator_counters"]
    assert counters.differing_keys == 1
    assert unit in counters.examples[0]
    assert "r06.received" in counters.examples[0]

    monkeypatch.setenv("DATABASE_URL", fresh_database)
    monkeypatch.setenv("KAFKA_BOOTSTRAP_SERVERS", kafka_bootstrap)
    result = await asyncio.to_thread(CliRunner().invoke, chiso, ["scoring", "verify"])
    assert result.exit_code == 1, result.output
    assert "r06.received" in result.output


async def test_rebuild_on_a_database_the_service_never_ran_on_creates_the_live_schema(
    fresh_database: str, kafka_bootstrap: str
) -> None:
    """First install from history: no live schema yet; the rebuilt one becomes it (no comparison to make)."""
    await provision_topics(kafka_bootstrap, [topic_spec(t) for t in TOPICS])
    unit = f"{random.randint(10000, 99999)}"
    await _publish(kafka_bootstrap, unit, "01", range(4), resolve=True)
    schema = f"scoring_first_{uuid.uuid4().hex[:6]}"
    report = await rebuild(
        database_url=fresh_database,
        schema=schema,
        kafka=KafkaSettings(bootstrap_servers=kafka_bootstrap),
        registry=REGISTRY,
        projections=scoring_projections(),
        swap=True,
    )
    assert report.swapped
    assert {t.examples[0] for t in report.tables} == {"(no live table)"}
    pool = await create_pool(fresh_database, schema, max_size=2)
    try:
        assert await _received(pool, unit) == 4
        # the migrations are recorded, so the service starting on it later applies nothing twice
        assert await pool.fetchval("SELECT count(*) FROM schema_migrations WHERE component = 'eventkit.projection'")
    finally:
        await pool.close()
