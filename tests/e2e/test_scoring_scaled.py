"""The scoring service's projections scaled by partitions: two processes run them (``SCORING_ROLES=projections``
in one, ``projections,publisher`` in the other), each a member of every projection's consumer group, on the same
schema, next to an API process. Every dossier event is counted once: every dossier is in the read model and the
API's answer (none dead-lettered, none lost), and the counters equal a recount of the stored dossiers."""

from __future__ import annotations

import asyncio
import uuid
from datetime import datetime, timedelta, timezone

import asyncpg
import httpx
import pytest

from contracts.registry import default_registry
from contracts.topics import DOSSIERS_EVENTS
from services.scoring.app import build_app
from services.scoring.projections import EVENT_TYPES
from services.scoring.settings import ScoringSettings
from tests.e2e.serving import serve, shell_settings
from tests.e2e.units import pick_communes
from tests.integration.scoring_events import publish_received
from tests.kafka_helpers import read_topic

pytestmark = pytest.mark.e2e
VN = timezone(timedelta(hours=7))
PER_UNIT = 8


async def _publish(bootstrap: str, units: list[str], province: str, day: int, run: str) -> None:
    # a stream (key) each: every partition gets some
    receipts = [
        (f"SCALED-{run}-{uuid.uuid4().hex[:10]}", datetime(2026, 3, day, 8 + i, tzinfo=VN), unit, province)
        for unit in units
        for i in range(PER_UNIT)
    ]
    await publish_received(bootstrap, receipts)


async def _received_counts(client: httpx.AsyncClient, api_url: str, units: list[str], expect: int) -> list[float]:
    ask = {"period": "month", "start": "2026-03-01"}
    counts: list[float] = []
    for _ in range(300):
        counts = []
        for unit in units:
            answer = await client.get(f"{api_url}/units/{unit}/indicators", params=ask)
            assert answer.status_code == 200
            counts.append(next(i["value"] for i in answer.json()["report06"] if i["key"] == "r06.received"))
        if all(c == expect for c in counts):
            break
        await asyncio.sleep(0.2)
    return counts


async def _taken(client: httpx.AsyncClient, url: str) -> float:
    """Records a member committed as applied or dead-lettered (not skipped: unwanted types, or seen already)."""
    metrics = (await client.get(f"{url}/metrics")).text
    lines = [
        f'chiso_consumed_records_total{{consumer="scoring.dossier_indicators",outcome="{outcome}"}} '
        for outcome in ("applied", "dead_lettered")
    ]
    return sum(float(m.removeprefix(line)) for m in metrics.splitlines() for line in lines if m.startswith(line))


async def _wanted_on_topic(bootstrap: str) -> int:
    """Records on the dossiers topic the projection takes (applies, or dead-letters: a bad record, an unknown
    type) rather than skips (a known type it does not project): ours and those earlier tests published (the
    group of a fresh schema reads the topic from its beginning)."""
    known = {cls.event_type for cls in default_registry().types()}
    records = await read_topic(bootstrap, DOSSIERS_EVENTS, wait_s=10)
    types = [dict(r.headers).get("ce_type", b"").decode(errors="replace") for r in records]
    return sum(1 for t in types if t in EVENT_TYPES or t not in known)


async def test_two_projection_processes_count_every_dossier_once(fresh_database: str, kafka_bootstrap: str) -> None:
    province, units = pick_communes(4)
    run = uuid.uuid4().hex[:8]  # this run's dossiers: the topic keeps earlier runs' and tests'
    settings = shell_settings("scoring", fresh_database, kafka_bootstrap)
    api = build_app(ScoringSettings(roles="api"), settings)
    first = build_app(ScoringSettings(roles="projections,publisher", publish_interval_ms=200), settings)
    second = build_app(ScoringSettings(roles="projections"), settings)
    async with (
        serve(api) as api_url,
        serve(first) as first_url,
        serve(second) as second_url,
        httpx.AsyncClient(timeout=30) as client,
    ):
        # two waves: the second once the group has surely settled with both members (any split must count once)
        await _publish(kafka_bootstrap, units, province, 2, run)
        assert await _received_counts(client, api_url, units, PER_UNIT) == [PER_UNIT] * len(units)
        await _publish(kafka_bootstrap, units, province, 3, run)
        assert await _received_counts(client, api_url, units, 2 * PER_UNIT) == [2 * PER_UNIT] * len(units)
        wanted = await _wanted_on_topic(kafka_bootstrap)
        assert wanted >= 2 * PER_UNIT * len(units)
        taken = [await _taken(client, url) for url in (first_url, second_url)]
        assert sum(taken) == wanted  # each record taken by exactly one member, once
        assert all(taken)  # both took part: two live members split the partitions, and 64 keys fall in both halves

    conn = await asyncpg.connect(fresh_database, server_settings={"search_path": "scoring"})
    try:
        ours = await conn.fetchval("SELECT count(*) FROM dossier_facts WHERE dossier_id LIKE $1", f"SCALED-{run}-%")
        assert ours == 2 * PER_UNIT * len(units)
        # counters are stored per unit *and* legacy district (a merged ward's pre-2025 dossiers, e.g. those of
        # test_scoring_merger_history on the same topic, keep their old district), so the recount groups so too
        off = await conn.fetchval(
            """WITH stored AS (
                 SELECT unitcode, legacy_district, period_start, counter, round(value::numeric, 6) AS value
                 FROM indicator_counters WHERE abs(value) > 1e-9
               ), recounted AS (
                 SELECT d.unitcode, coalesce(d.legacy_district, ''), date_trunc('month', c.day)::date, c.k,
                        round(sum(c.v)::numeric, 6)
                 FROM dossier_facts d, unnest(d.contrib_keys, d.contrib_days, d.contrib_values) AS c(k, day, v)
                 GROUP BY 1, 2, 3, 4 HAVING abs(sum(c.v)) > 1e-9
               )
               SELECT count(*) FROM ((TABLE stored EXCEPT TABLE recounted)
                                     UNION ALL (TABLE recounted EXCEPT TABLE stored)) AS x"""
        )
        assert off == 0  # the counters equal a recount: nothing counted twice, nothing lost
    finally:
        await conn.close()
