"""The scoring service split by role (``SCORING_ROLES``), as on a machine with few cores: one process serves the
query API only, another runs the projections and the publisher, both on the same schema. Canonical dossier
events published to the dossiers topic reach the API through the other process's projections; the API process
consumes nothing and the workers' process answers no query; the publisher runs in the workers' process.
"""

from __future__ import annotations

import asyncio
import uuid
from datetime import datetime, timedelta, timezone

import asyncpg
import httpx
import pytest

from services.scoring.app import build_app
from services.scoring.settings import ScoringSettings
from tests.e2e.serving import serve, shell_settings
from tests.e2e.units import pick_communes
from tests.integration.scoring_events import publish_received

pytestmark = pytest.mark.e2e
VN = timezone(timedelta(hours=7))


def test_roles_are_a_comma_list_of_known_roles() -> None:
    assert ScoringSettings().role_set == {"api", "projections", "publisher"}
    assert ScoringSettings(roles="api").role_set == {"api"}
    assert ScoringSettings(roles="projections,publisher").role_set == {"projections", "publisher"}
    for bad in ("", "api,", "apis", "api;projections"):
        with pytest.raises(ValueError, match="roles"):
            ScoringSettings(roles=bad)


async def test_an_api_process_and_a_workers_process_share_one_read_model(fresh_database: str, kafka_bootstrap: str):
    province, (unit,) = pick_communes()
    api = build_app(ScoringSettings(roles="api"), shell_settings("scoring", fresh_database, kafka_bootstrap))
    workers = build_app(
        ScoringSettings(roles="projections,publisher", publish_interval_ms=200),
        shell_settings("scoring", fresh_database, kafka_bootstrap),
    )
    async with serve(api) as api_url, serve(workers) as workers_url, httpx.AsyncClient(timeout=30) as client:
        days = [datetime(2026, 3, 2 + i, 9, tzinfo=VN) for i in range(3)]
        await publish_received(kafka_bootstrap, [(f"ROLES-{uuid.uuid4().hex[:8]}", at, unit, province) for at in days])

        ask = {"period": "month", "start": "2026-03-01"}
        count = None
        for _ in range(300):
            answer = await client.get(f"{api_url}/units/{unit}/indicators", params=ask)
            assert answer.status_code == 200
            count = next(i["value"] for i in answer.json()["report06"] if i["key"] == "r06.received")
            if count == 3:
                break
            await asyncio.sleep(0.2)
        assert count == 3  # projected by the workers' process, read by the API's

        assert (await client.get(f"{workers_url}/units/{unit}/indicators", params=ask)).status_code == 404
        api_metrics = (await client.get(f"{api_url}/metrics")).text
        workers_metrics = (await client.get(f"{workers_url}/metrics")).text
        assert 'chiso_consumer_lag{consumer="scoring.dossier_indicators"' not in api_metrics
        assert 'chiso_consumer_lag{consumer="scoring.dossier_indicators"' in workers_metrics

        published = 0
        for _ in range(150):  # the publisher (workers' process) appends the commune's updates to the store
            published = await _published_for(fresh_database, unit)
            if published:
                break
            await asyncio.sleep(0.2)
        assert published > 0


async def _published_for(url: str, unit: str) -> int:
    conn = await asyncpg.connect(url)
    try:
        return int(await conn.fetchval("SELECT count(*) FROM scoring.es_events WHERE stream_id = $1", unit) or 0)
    finally:
        await conn.close()
