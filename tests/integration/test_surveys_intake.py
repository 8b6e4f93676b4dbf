"""The surveys intake on the real PostgreSQL: racing submissions about one dossier store exactly one
response; the group commit hands each request its own outcome; the same submission twice is a duplicate."""

from __future__ import annotations

import asyncio
import random
from collections import Counter
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Any

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


async def test_a_batch_of_new_responses_takes_one_statement_and_ends_as_the_long_way(fresh_database: str) -> None:
    """Seeded random batches (new, repeated, answered dossiers, invalid, twins in a batch) through two intakes on
    two schemas, one of them never taking the one-statement way: the same outcomes, the same stored events."""
    registry = default_registry()
    pools = [await create_pool(fresh_database, schema, min_size=1, max_size=2) for schema in ("fast", "long")]
    try:
        for p in pools:
            await apply_migrations(p, "eventkit.store", postgres.MIGRATIONS)
        fast, long = (build_intake(SurveysSettings(), PostgresEventStore(p, registry), registry) for p in pools)
        short_way = fast._store_if_all_new
        taken: list[bool] = []

        async def counted(*args: Any) -> Any:
            result = await short_way(*args)
            taken.append(result is not None)
            return result

        async def never(*_: Any) -> None:
            return None

        fast._store_if_all_new = counted  # type: ignore[method-assign]
        long._store_if_all_new = never  # type: ignore[method-assign]
        rng = random.Random(20261123)
        sent: list[Submission] = []
        for round_ in range(60):
            batch: list[Submission] = []
            for k in range(rng.randint(1, 10)):
                n, roll = 1000 * round_ + k, rng.random()
                if round_ % 3 == 0 or roll < 0.55 or not sent:  # every third round: only new, valid responses
                    dossier = f"D-{n}" if round_ % 3 == 0 or rng.random() < 0.8 else None
                    batch.append(submission(n, dossier=dossier, source=f"src-{k % 3}"))
                elif roll < 0.7:
                    batch.append(rng.choice(sent))  # the same submission again: a duplicate
                elif roll < 0.8:  # another submission about an answered dossier (or another kiosk response)
                    batch.append(Submission(**{**rng.choice(sent).__dict__, "submission_id": f"again-{n}"}))
                elif roll < 0.9:
                    bad = {**SIPAS_2023_ANSWERS, "overall.satisfaction": 9}
                    about = submission(n, dossier=f"D-{n}") if rng.random() < 0.5 else rng.choice(sent)
                    batch.append(Submission(**{**about.__dict__, "submission_id": f"bad-{n}", "answers": bad}))
                else:
                    batch.append(batch[-1] if batch else rng.choice(sent))  # twins in one batch
            sent.extend(batch)
            results = []
            for intake, p in zip((fast, long), pools, strict=True):
                async with p.acquire() as conn:
                    outcomes = await intake.process(conn, batch, NOW)
                results.append([(o.status, o.response_id, o.conflict, o.violations, o.event_id) for o in outcomes])
            assert results[0] == results[1], round_
        assert sum(taken) >= 20  # the one-statement way was taken (every third round at least) ...
        assert not all(taken)  # ... and refused where it must be
        query = "SELECT stream_id, version, event_id::text, data FROM es_events ORDER BY stream_id, version"
        stored = [[tuple(r) for r in await p.fetch(query)] for p in pools]
        assert len(stored[0]) > 100
        assert stored[0] == stored[1]
    finally:
        for p in pools:
            await p.close()
