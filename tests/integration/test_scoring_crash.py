"""kill -9 the scoring dossier projection mid-run on the real broker and database: after a restart, the read
model equals a clean run's, the counters equal a recount of the stored dossiers, and no changed key was lost
for the subscriptions."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import uuid
from pathlib import Path

import asyncpg
import pytest

from bench.scoring import Record, _produce, dossier_records
from tests.kafka_helpers import create_topic, new_topic_name

pytestmark = pytest.mark.integration
ROOT = Path(__file__).resolve().parents[2]
DOSSIERS = 300
CHILD = "tests.integration.scoring_crash_child"


def _run(url: str, bootstrap: str, topic: str, schema: str, expect: int, *crash: str) -> int:
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "tests.integration.scoring_crash_child",
            url,
            bootstrap,
            topic,
            schema,
            str(expect),
            *crash,
        ],
        cwd=ROOT,
        env=dict(os.environ),
        timeout=240,
        capture_output=True,
        text=True,
        check=False,
    )
    if proc.returncode not in (0, -9):
        pytest.fail(f"scoring child failed ({proc.returncode}):\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}")
    return proc.returncode


async def _fetch(url: str, schema: str, query: str) -> set[tuple[object, ...]]:
    conn = await asyncpg.connect(url, server_settings={"search_path": schema})
    try:
        return {tuple(tuple(x) if isinstance(x, list) else x for x in r) for r in await conn.fetch(query)}
    finally:
        await conn.close()


_FACTS = (
    "SELECT dossier_id, unitcode, received_at, resolved_at, state::text, contrib_keys, contrib_values"
    " FROM dossier_facts"
)
_COUNTERS = (
    "SELECT unitcode, period_kind, period_start, counter, round(value::numeric, 6) FROM indicator_counters"
    " WHERE abs(value) > 1e-9"
)
_RECOUNT = """SELECT d.unitcode, 'month', date_trunc('month', c.day)::date, c.k, round(sum(c.v)::numeric, 6)
              FROM dossier_facts d, unnest(d.contrib_keys, d.contrib_days, d.contrib_values) AS c(k, day, v)
              GROUP BY 1, 2, 3, 4 HAVING abs(sum(c.v)) > 1e-9"""


@pytest.fixture(scope="module")
def records() -> list[Record]:
    return dossier_records(DOSSIERS, seed=5, prefix="K")


@pytest.mark.parametrize(("point", "nth"), [("applied", 4), ("db_committed", 4), ("kafka_committed", 1)])
async def test_a_killed_scoring_projection_ends_exactly_as_a_clean_run(
    fresh_database: str, kafka_bootstrap: str, records: list[Record], point: str, nth: int
) -> None:
    topic = await create_topic(kafka_bootstrap, new_topic_name("scoring-crash"), partitions=3)
    await _produce(kafka_bootstrap, topic, records)
    expect = len(records)
    tag = uuid.uuid4().hex[:6]
    clean, crashed = f"clean_{tag}", f"crashed_{tag}"
    run = asyncio.to_thread
    assert await run(_run, fresh_database, kafka_bootstrap, topic, clean, expect) == 0
    assert await run(_run, fresh_database, kafka_bootstrap, topic, crashed, expect, point, str(nth)) == -9
    partial = await _fetch(fresh_database, crashed, "SELECT dossier_id FROM dossier_facts")
    assert len(partial) < DOSSIERS  # it really died mid-way
    assert await run(_run, fresh_database, kafka_bootstrap, topic, crashed, expect) == 0

    facts = await _fetch(fresh_database, crashed, _FACTS)
    assert len(facts) == DOSSIERS
    assert facts == await _fetch(fresh_database, clean, _FACTS)
    counters = await _fetch(fresh_database, crashed, _COUNTERS)
    assert counters == await _fetch(fresh_database, clean, _COUNTERS)  # nothing lost, nothing counted twice
    monthly = {r for r in counters if r[1] == "month"}
    assert monthly == await _fetch(fresh_database, crashed, _RECOUNT)  # the sums equal a recount
    received = sum(float(str(r[4])) for r in monthly if r[3] == "r06.received")
    assert received == DOSSIERS
    # every (commune, month) a dossier moved is still marked for the publisher: the kill lost no key
    dirty = await _fetch(fresh_database, crashed, "SELECT DISTINCT unitcode, period_start FROM scoring_dirty")
    months = await _fetch(
        fresh_database,
        crashed,
        "SELECT DISTINCT unitcode, date_trunc('month', received_at AT TIME ZONE 'Asia/Ho_Chi_Minh')::date"
        " FROM dossier_facts",
    )
    assert months <= dirty
