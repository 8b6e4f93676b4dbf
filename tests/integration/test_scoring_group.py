"""Two processes of the scoring dossier projection in one consumer group, one of them killed mid-run, on the real
broker and database: the survivor takes the dead member's partitions over and the read model ends exactly as a
clean single-process run's (the members' transactions share the counter rows and lock them in one order: no
deadlock, nothing dead-lettered, nothing lost, nothing counted twice)."""

from __future__ import annotations

import asyncio
import uuid

import asyncpg
import pytest

from bench.scoring import Record, _produce, dossier_records
from tests.integration.test_scoring_crash import _COUNTERS, _FACTS, _RECOUNT, _fetch, _run
from tests.kafka_helpers import create_topic, new_topic_name

pytestmark = pytest.mark.integration
DOSSIERS = 300


@pytest.fixture(scope="module")
def records() -> list[Record]:
    return dossier_records(DOSSIERS, seed=11, prefix="G")


async def test_two_members_one_killed_end_exactly_as_one_clean_process(
    fresh_database: str, kafka_bootstrap: str, records: list[Record]
) -> None:
    topic = await create_topic(kafka_bootstrap, new_topic_name("scoring-group"), partitions=6)
    await _produce(kafka_bootstrap, topic, records)
    expect = len(records)
    tag = uuid.uuid4().hex[:6]
    clean, shared = f"clean_{tag}", f"group_{tag}"
    conn = await asyncpg.connect(fresh_database)
    try:  # the schema first: two members creating it at the same instant would race in CREATE SCHEMA
        await conn.execute(f"CREATE SCHEMA {shared}")
    finally:
        await conn.close()
    run = asyncio.to_thread
    assert await run(_run, fresh_database, kafka_bootstrap, topic, clean, expect) == 0

    # same schema = same consumer group (the child names it after the schema): the members share the partitions,
    # and one dies at its second batch (unless the other was faster and took everything: any interleaving must
    # end with the same read model, so nothing here depends on timing)
    survivor = run(_run, fresh_database, kafka_bootstrap, topic, shared, expect)
    victim = run(_run, fresh_database, kafka_bootstrap, topic, shared, expect, "applied", "2")
    finished, killed = await asyncio.gather(survivor, victim)
    assert finished == 0  # it reached the end of the topic, with the dead member's partitions if it died
    assert killed in (0, -9)

    facts = await _fetch(fresh_database, shared, _FACTS)
    assert len(facts) == DOSSIERS
    assert facts == await _fetch(fresh_database, clean, _FACTS)
    counters = await _fetch(fresh_database, shared, _COUNTERS)
    assert counters == await _fetch(fresh_database, clean, _COUNTERS)
    assert {r for r in counters if r[1] == "month"} == await _fetch(fresh_database, shared, _RECOUNT)
    months = await _fetch(
        fresh_database,
        shared,
        "SELECT DISTINCT unitcode, date_trunc('month', received_at AT TIME ZONE 'Asia/Ho_Chi_Minh')::date"
        " FROM dossier_facts",
    )
    assert months <= await _fetch(fresh_database, shared, "SELECT DISTINCT unitcode, period_start FROM scoring_dirty")
