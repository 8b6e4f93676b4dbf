"""End to end on the real broker and database: a dossier fact published by a Kafka client that is not
chiso's code (librdkafka, through confluent-kafka) on the inbound topic is consumed by the dossiers
service, stored in its event store, relayed to the canonical topic, and projected by the scoring service
into a read-model row that the query API serves. The same fact sent twice counts once; a refused fact
becomes a dead letter with its reason."""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import asyncpg
import httpx
import pytest
import pytest_asyncio
import uvicorn
from confluent_kafka import Producer

from contracts.topics import DOSSIERS_INBOUND
from eventkit.deadletter import read_dead_letters
from eventkit.http_server import CoalescingHttpToolsProtocol
from eventkit.service import ServiceSettings
from eventkit.settings import DatabaseSettings, KafkaSettings, LogSettings
from services.dossiers.app import INBOX
from services.dossiers.app import build_app as dossiers_app
from services.plans.app import build_app as plans_app
from services.scoring.app import build_app as scoring_app
from services.surveys.app import build_app as surveys_app
from tests.e2e.serving import free_port

pytestmark = pytest.mark.e2e
EXAMPLES = Path(__file__).resolve().parents[2] / "contracts" / "examples"
EXAMPLE = EXAMPLES / "vn.cchc.dossier.received" / "v1.json"
RESOLVED = EXAMPLES / "vn.cchc.dossier.resolved" / "v1.json"


@pytest_asyncio.fixture
async def system(fresh_database: str, kafka_bootstrap: str) -> AsyncIterator[dict[str, str]]:
    """All four services, started as `chiso run all` starts them, on free ports."""
    kafka = KafkaSettings(bootstrap_servers=kafka_bootstrap)
    database = DatabaseSettings(url=fresh_database)
    log = LogSettings(level="WARNING")
    apps = {
        "dossiers": dossiers_app(shell=ServiceSettings("dossiers", "dossiers", kafka, database, log)),
        "scoring": scoring_app(shell=ServiceSettings("scoring", "scoring", kafka, database, log)),
        "plans": plans_app(shell=ServiceSettings("plans", "plans", kafka, database, log)),
        "surveys": surveys_app(shell=ServiceSettings("surveys", "surveys", kafka, database, log)),
    }
    servers, urls = [], {}
    for name, asgi in apps.items():
        port = free_port()
        server = uvicorn.Server(
            uvicorn.Config(
                asgi, host="127.0.0.1", port=port, log_config=None, lifespan="on", http=CoalescingHttpToolsProtocol
            )
        )
        servers.append((server, asyncio.create_task(server.serve())))
        urls[name] = f"http://127.0.0.1:{port}"
    async with httpx.AsyncClient() as client:
        for url in urls.values():
            for _ in range(300):
                try:
                    if (await client.get(f"{url}/health")).status_code == 200:
                        break
                except httpx.TransportError:
                    pass
                await asyncio.sleep(0.1)
    try:
        yield urls
    finally:
        for server, _ in servers:
            server.should_exit = True
        for _, task in servers:
            await asyncio.wait_for(task, timeout=30)


def _foreign_publish(bootstrap: str, records: list[tuple[bytes, bytes, list[tuple[str, bytes]]]]) -> None:
    """Publish with librdkafka, building the CloudEvents binary-mode headers by hand from the AsyncAPI doc."""
    producer = Producer({"bootstrap.servers": bootstrap, "enable.idempotence": True})
    for key, value, headers in records:
        producer.produce(DOSSIERS_INBOUND, value=value, key=key, headers=headers)
    assert producer.flush(30) == 0


def _random_commune() -> tuple[str, str]:
    """A real 2025 commune (the dossiers service validates unit codes), random so reruns on one broker differ."""
    from tests.e2e.units import pick_communes  # noqa: PLC0415

    province, (commune,) = pick_communes()
    return commune, province


def _cloudevent(
    dossier_id: str, event_id: str, unitcode: str, data: bytes, province: str = "51"
) -> tuple[bytes, bytes, list]:
    subject = f"dossier:{dossier_id}"
    headers = {
        "content-type": "application/json",
        "ce_specversion": "1.0",
        "ce_id": event_id,
        "ce_source": "//motcua.example-province.gov.vn",
        "ce_type": "vn.cchc.dossier.received",
        "ce_subject": subject,
        "ce_time": "2026-02-13T10:00:00+07:00",
        "ce_dataschema": "urn:chiso:schema:vn.cchc.dossier.received:v1",
        "ce_schemaversion": "1",
        "ce_unitcode": unitcode,
        "ce_provincecode": province,
        "ce_partitionkey": subject,
    }
    return subject.encode(), data, [(k, v.encode()) for k, v in headers.items()]


async def _wait_for(check, timeout_s: float = 60.0):
    deadline = asyncio.get_running_loop().time() + timeout_s
    while True:
        result = await check()
        if result or asyncio.get_running_loop().time() > deadline:
            return result
        await asyncio.sleep(0.2)


async def test_a_foreign_dossier_fact_flows_through_store_relay_and_projection(system, kafka_bootstrap, fresh_database):
    unit, province = _random_commune()
    body = json.loads(EXAMPLE.read_text())
    dossier_id = f"000.31.20.H56-260213-{uuid.uuid4().hex[:6]}"
    body["dossier_id"] = dossier_id
    fact = _cloudevent(dossier_id, str(uuid.uuid4()), unit, json.dumps(body).encode(), province)
    other_id = f"{dossier_id}-b"
    second = _cloudevent(
        other_id, str(uuid.uuid4()), unit, json.dumps({**body, "dossier_id": other_id}).encode(), province
    )
    resolved = {**json.loads(RESOLVED.read_text()), "dossier_id": dossier_id}
    derived = _cloudevent(dossier_id, str(uuid.uuid4()), unit, json.dumps(resolved).encode(), province)
    renamed = {"ce_type": b"vn.cchc.dossier.resolved", "ce_dataschema": b"urn:chiso:schema:vn.cchc.dossier.resolved:v1"}
    derived[2][:] = [(k, renamed.get(k, v)) for k, v in derived[2]]
    # the first fact twice (a partner retry), a second dossier, and a fact partners may not send
    await asyncio.to_thread(_foreign_publish, kafka_bootstrap, [fact, fact, second, derived])

    async with httpx.AsyncClient(base_url=system["scoring"]) as scoring:

        async def receipts() -> list:
            # the two dossiers are long overdue by now: the overdue scheduler adds its own verdict events
            rows = (await scoring.get(f"/units/{unit}/activity")).json()
            return [r for r in rows if r["event_type"] == "vn.cchc.dossier.received"]

        async def projected() -> list:
            rows = await receipts()
            return rows if rows and rows[0]["events"] >= 2 else []

        rows = await _wait_for(projected)
        assert rows == [{"unitcode": unit, "day": "2026-02-13", "event_type": "vn.cchc.dossier.received", "events": 2}]
        await asyncio.sleep(2)  # a double count would show up by now
        assert (await receipts())[0]["events"] == 2
        params = {"from": "2026-02-13", "to": "2026-02-13"}
        rollup = (await scoring.get(f"/units/{province}/activity", params=params)).json()
        assert sum(r["events"] for r in rollup) >= 2
        assert (await scoring.get("/units/abc/activity")).status_code == 422

    conn = await asyncpg.connect(fresh_database, server_settings={"search_path": "dossiers"})
    try:
        stored = await conn.fetch(
            "SELECT stream_id, version, type, source FROM es_events WHERE unitcode = $1 AND type = $2",
            unit,
            "vn.cchc.dossier.received",
        )
    finally:
        await conn.close()
    assert sorted(r["stream_id"] for r in stored) == sorted([f"dossier:{dossier_id}", f"dossier:{other_id}"])
    assert {r["source"] for r in stored} == {"urn:chiso:dossiers"}

    letters = await _wait_for(lambda: _letters_for(kafka_bootstrap, derived[0]))
    assert letters, "the derived fact sent by a partner must be dead-lettered"
    assert "derived by chiso" in letters[0].reason

    async with httpx.AsyncClient() as client:
        for url in system.values():
            assert (await client.get(f"{url}/health")).json()["status"] == "ok"
            ready = await client.get(f"{url}/ready")
            assert ready.status_code == 200, ready.text
            assert ready.json()["checks"] == {"database": "ok", "kafka": "ok", "components": "ok"}
        metrics = (await client.get(f"{system['scoring']}/metrics")).text
        assert 'chiso_consumed_records_total{consumer="scoring.unit_activity",outcome="applied"}' in metrics
        lags = [line for line in metrics.splitlines() if line.startswith("chiso_consumer_lag{")]
        assert lags, "consumer lag is exported per partition"
        assert all(line.endswith(" 0.0") for line in lags), lags  # all consumed: no lag, commit markers included
        dossier_metrics = (await client.get(f"{system['dossiers']}/metrics")).text
        assert 'chiso_relay_published_events_total{relay="dossiers"}' in dossier_metrics
        assert 'chiso_dead_letters_total{consumer="dossiers.inbound"}' in dossier_metrics


async def _letters_for(bootstrap: str, key: bytes) -> list:
    return [d for d in await read_dead_letters(bootstrap, INBOX) if d.key == key]
