"""The surveys intake on the real PostgreSQL: racing submissions about one dossier store exactly one
response; the group commit hands each request its own outcome; the same submission twice is a duplicate."""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import AsyncIterator
from datetime import UTC, datetime

import asyncpg
import pytest
import pytest_asyncio

from contracts.registry import default_registry
from eventkit import postgres
from eventkit.pg import apply_migrations, create_pool
from eventkit.postgres import PostgresEventStore
from services.surveys.committer import GroupCommitter
from services.surveys.compose import build_intake
from services.surveys.domain import response_id_for_dossier
from services.surveys.intake import ConcurrencyError, Intake, Submission
from services.surveys.settings import SurveysSettings
from tests.unit.test_surveys_instruments import PROFILE, SIPAS_2023_ANSWERS

pytestmark = pytest.mark.integration
NOW = datetime(2026, 3, 2, 3, 0, tzinfo=UTC)


@pytest_asyncio.fixture
async def pool(fresh_database: str) -> AsyncIterator[asyncpg.Pool]:
    pool = await create_pool(fresh_database, "surveys", min_size=1, max_size=10)
    await apply_migrations(pool, "eventkit.store", postgres.MIGRATIONS)
    try:
        yield pool
    finally:
        await pool.close()


@pytest.fixture
def intake(pool) -> Intake:
    registry = default_registry()
    return build_intake(SurveysSettings(), PostgresEventStore(pool, registry), registry)


def submission(n: int, dossier: str | None = "000.00.01.H26-260302-0001", source: str = "link") -> Submission:
    return Submission(
        source=source,
        submission_id=f"s-{n}",
        unit_code="00004",
        instrument_id="sipas-service",
        instrument_version=None,
        channel="qr" if dossier else "kiosk",
        answers={**SIPAS_2023_ANSWERS, "overall.satisfaction": 1 + n % 5},
        respondent=PROFILE,
        linked_dossier_id=dossier,
    )


async def store_one(pool, intake, item: Submission) -> str:
    for _ in range(10):
        try:
            async with pool.acquire() as conn, conn.transaction():
                [outcome] = await intake.process(conn, [item], NOW)
                return "conflict" if outcome.conflict else outcome.status
        except ConcurrencyError:
            await asyncio.sleep(0.01)
    raise AssertionError("never stored")


async def test_eight_racing_submissions_about_one_dossier_store_exactly_one(pool, intake) -> None:
    results = await asyncio.gather(*(store_one(pool, intake, submission(n)) for n in range(8)))
    assert Counter(results) == {"accepted": 1, "conflict": 7}
    rows = await pool.fetch("SELECT stream_id, version FROM es_events")
    assert [(r["stream_id"], r["version"]) for r in rows] == [(response_id_for_dossier("000.00.01.H26-260302-0001"), 1)]


async def test_a_batch_judges_each_submission_on_its_own(pool, intake) -> None:
    same_twice = submission(1, dossier=None, source="device:k1")
    batch = [same_twice, same_twice, submission(2), submission(3), submission(4, dossier=None, source="device:k2")]
    bad = Submission(**{**submission(5, dossier=None).__dict__, "unit_code": "99999"})
    async with pool.acquire() as conn, conn.transaction():
        outcomes = await intake.process(conn, [*batch, bad], NOW)
    assert [o.status for o in outcomes] == ["accepted", "duplicate", "accepted", "rejected", "accepted", "rejected"]
    assert outcomes[3].conflict
    assert outcomes[5].violations[0].field == "unitcode"
    async with pool.acquire() as conn, conn.transaction():
        again = await intake.process(conn, batch[:1], NOW)
    assert again[0].status == "duplicate"
    assert await pool.fetchval("SELECT count(*) FROM es_events") == 3


async def test_the_group_commit_gives_every_request_its_outcome(pool, intake) -> None:
    committer = GroupCommitter(pool, intake, lambda: NOW, workers=2, max_batch=50)
    stop = asyncio.Event()
    await committer.start()
    runner = asyncio.create_task(committer.run(stop))
    try:
        items = [submission(n, dossier=f"D-{n % 40}") for n in range(200)]
        outcomes = await asyncio.gather(*(committer.submit(item) for item in items))
    finally:
        stop.set()
        await runner
    assert Counter(o.status for o in outcomes) == {"accepted": 40, "rejected": 160}
    assert all(o.conflict for o in outcomes if o.status == "rejected")
    assert await pool.fetchval("SELECT count(DISTINCT stream_id) FROM es_events") == 40
