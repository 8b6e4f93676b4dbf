"""Subscriptions end to end: the commune month (test_scoring_month's file) goes through the dossiers and scoring
services on the real broker and database, and ``examples/subscriber.py``, run as a separate process with
aiokafka, prints the ``indicator updated`` events of that commune and its province (filtered on the
``ce_unitcode`` / ``ce_provincecode`` headers): the last value per indicator equals the query API's, a value
is only republished when it changed, and the burst of dossier events was coalesced into a few updates.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import subprocess
import sys
import uuid
from collections import defaultdict
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
import pytest_asyncio

from services.scoring.settings import ScoringSettings
from tests.e2e.serving import dossiers_and_scoring
from tests.e2e.test_scoring_month import MARCH, _publish, _records
from tests.e2e.units import pick_communes

pytestmark = pytest.mark.e2e
SUBSCRIBER = Path(__file__).resolve().parents[2] / "examples" / "subscriber.py"


@pytest_asyncio.fixture
async def services(fresh_database: str, kafka_bootstrap: str) -> AsyncIterator[dict[str, str]]:
    async with dossiers_and_scoring(
        fresh_database,
        kafka_bootstrap,
        pseudonym_secret="e2e-subscriptions-key-0123456789",
        scoring=ScoringSettings(publish_interval_ms=300, publish_range_interval_ms=1000),
    ) as urls:
        yield urls


def _subscribe(bootstrap: str, *args: str) -> list[dict]:
    """Run the example subscriber over the retained history; it exits by itself once the topic is idle."""
    done = subprocess.run(
        [sys.executable, str(SUBSCRIBER), "--bootstrap", bootstrap, "--from-beginning", "--idle-exit", "4", *args],
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    return [json.loads(line) for line in done.stdout.splitlines() if line.strip()]


async def test_the_example_subscriber_follows_a_commune_and_its_province(services, kafka_bootstrap) -> None:
    province, (unit,) = pick_communes()
    records = _records(unit, province, uuid.uuid4().hex[:8])
    await asyncio.to_thread(_publish, kafka_bootstrap, records + records)

    async with httpx.AsyncClient(base_url=services["scoring"], timeout=10) as api:
        for _ in range(120):
            body = (await api.get(f"/units/{unit}/indicators", params=MARCH)).json()
            r06 = {i["key"]: i for i in body["report06"]}
            if r06["r06.received"]["value"] == 29 and r06["apology.rate"]["denominator"] == 4:
                break
            await asyncio.sleep(0.5)
        api_values = {i["key"]: i["value"] for i in body["report06"]}
        assert api_values["r06.received"] == 29

        march = "month:2026-03-01"
        lines: list[dict] = []
        province_received = None
        for _ in range(30):  # the publisher runs every 300 ms and the relay follows: read until it caught up
            # the province's value moves on after the commune's settles whenever other tests' dossiers of the
            # same province are on the topic (a fresh read model reads it from the beginning): asked each round
            province_body = (await api.get(f"/units/{province}/indicators", params=MARCH)).json()
            province_received = next(i["value"] for i in province_body["report06"] if i["key"] == "r06.received")
            lines = await asyncio.to_thread(
                _subscribe,
                kafka_bootstrap,
                "--province",
                province,
                "--unit-prefix",
                unit,
                "--unit-prefix",
                province,
            )
            last = {(x["unit"], x["period"], x["indicator"]): x for x in lines}
            if (
                (unit, march, "apology.rate") in last
                and last[(unit, march, "apology.rate")]["denominator"] == 4
                and (last.get((unit, march, "r06.received"), {}).get("value") == 29)
                and (last.get((unit, "reporting:2025-12-15:2026-12-14", "r06.received"), {}).get("value") == 29)
                and last.get((province, march, "r06.received"), {}).get("value") == province_received
            ):
                break
            await asyncio.sleep(1)

    assert {x["unit"] for x in lines} == {unit, province}  # the filter kept this commune and the rollup only
    assert {x["province"] for x in lines} == {province}
    last = {(x["unit"], x["period"], x["indicator"]): x for x in lines}
    for key, value in api_values.items():
        assert last[(unit, march, key)]["value"] == value, key  # the last update is the value the API serves
    assert last[(unit, march, "r06.received")]["value"] == 29
    assert last[(province, march, "r06.received")]["value"] == province_received
    series: dict[tuple[str, str, str], list[object]] = defaultdict(list)
    for x in lines:
        series[(x["unit"], x["period"], x["indicator"])].append((x["value"], x["numerator"], x["denominator"]))
    for key, values in series.items():
        if key[0] != unit:
            continue  # a kept broker may hold other runs' rollups of the province; the commune is this run's
        assert all(a != b for a, b in itertools.pairwise(values)), key  # only changes are published
    # coalesced: 29 receipts (sent twice) moved r06.received in far fewer updates than events
    assert len(series[(unit, march, "r06.received")]) < 29
    # quarter and year periods are published too
    assert last[(unit, "quarter:2026-01-01", "r06.received")]["value"] == 29
    assert last[(unit, "year:2026-01-01", "r06.received")]["value"] == 29
    # and the reporting periods: the year report of the province's scheme (15/12/2025-14/12/2026 in both
    # shipped schemes) holds the March dossiers; its updates come every SCORING_PUBLISH_RANGE_INTERVAL_MS
    assert last[(unit, "reporting:2025-12-15:2026-12-14", "r06.received")]["value"] == 29
