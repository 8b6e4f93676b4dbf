"""The dossiers intake on the real PostgreSQL: idempotency, atomic groups, snapshots, overdue, HTTP API."""

from __future__ import annotations

import json
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

import asyncpg
import httpx
import pytest
import pytest_asyncio
from fastapi import FastAPI

from contracts.dossiers import DossierReceived, ResultIssued, SupplementRequested
from contracts.registry import default_registry
from eventkit import postgres
from eventkit.pg import apply_migrations, create_pool
from eventkit.postgres import PostgresEventStore
from eventkit.worktime import VN_TZ
from services.dossiers import api, intake
from services.dossiers.compose import build_intake, judges
from services.dossiers.inbound import InboundFact
from services.dossiers.privacy import applicant_digest
from services.dossiers.settings import DossiersSettings

pytestmark = pytest.mark.integration

NOW = datetime(2026, 11, 23, 2, 0, tzinfo=UTC)
UNIT = "00004"  # Phường Ba Đình, Hà Nội (2025 code)


def at(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=VN_TZ)


@pytest_asyncio.fixture
async def pool(fresh_database: str) -> AsyncIterator[asyncpg.Pool]:
    pool = await create_pool(fresh_database, "dossiers", min_size=1, max_size=4)
    await apply_migrations(pool, "eventkit.store", postgres.MIGRATIONS)
    await apply_migrations(pool, "dossiers.intake", intake.MIGRATIONS)
    await apply_migrations(pool, "dossiers.api", api.MIGRATIONS)
    try:
        yield pool
    finally:
        await pool.close()


@pytest.fixture
def settings() -> DossiersSettings:
    return DossiersSettings(pseudonym_secret="integration-test-key-0123456789")


@pytest.fixture
def the_intake(pool, settings):
    return build_intake(settings, PostgresEventStore(pool, default_registry()))


def received(dossier: str, when: str = "2026-03-02 08:00", due: str = "2026-03-05 08:00") -> DossierReceived:
    return DossierReceived(
        dossier_id=dossier,
        agency_code="000.00.01.H26",
        channel="online",
        ma_tthc="1.001776",
        procedure_version="v",
        applicant_type="individual",
        applicant_ref=applicant_digest("001099012345"),
        received_at=at(when),
        due_at=at(due),
        statutory_time={"value": 3, "unit": "working_days"},
        components=[],
    )


def fact(payload, event_id: str | None = None, unit: str = UNIT) -> InboundFact:
    return InboundFact(
        source="urn:test:motcua",
        event_id=event_id or str(uuid.uuid4()),
        time=NOW,
        unit_code=unit,
        payload=payload,
    )


async def process(pool, the_intake, *groups, now: datetime = NOW):
    async with pool.acquire() as conn, conn.transaction():
        return await the_intake.process(conn, list(groups), now)


async def test_a_fact_is_stored_once_with_its_verdicts_and_a_rekeyed_pseudonym(pool, the_intake) -> None:
    receipt = fact(received("D-1"))
    result = fact(
        ResultIssued(dossier_id="D-1", agency_code="000.00.01.H26", finished_at=at("2026-03-04 09:00"), result_docs=[])
    )
    [first] = await process(pool, the_intake, [receipt])
    assert first.status == "accepted"
    [again, done] = await process(pool, the_intake, [receipt], [result])
    assert again.status == "duplicate"
    assert [e.type for e in done.events] == ["vn.cchc.dossier.result_issued", "vn.cchc.dossier.resolved"]
    rows = await pool.fetch("SELECT type, version, unitcode, provincecode, data FROM es_events ORDER BY version")
    assert [(r["type"], r["version"]) for r in rows] == [
        ("vn.cchc.dossier.received", 1),
        ("vn.cchc.dossier.result_issued", 2),
        ("vn.cchc.dossier.resolved", 3),
    ]
    assert {(r["unitcode"], r["provincecode"]) for r in rows} == {(UNIT, "01")}
    stored_ref = json.loads(rows[0]["data"])["applicant_ref"]
    assert stored_ref != applicant_digest("001099012345")  # re-keyed: the partner's plain hash never leaves
    assert len(stored_ref) == 64
    snapshot = await pool.fetchrow(
        "SELECT version, overdue_watch_at FROM dossier_state WHERE stream_id = 'dossier:D-1'"
    )
    assert snapshot["version"] == 3
    assert snapshot["overdue_watch_at"] is None  # finished: nothing to watch


async def test_a_group_is_all_or_nothing_and_says_which_fact_failed(pool, the_intake) -> None:
    good = fact(received("D-2"))
    impossible = fact(
        ResultIssued(dossier_id="D-2", agency_code="000.00.01.H26", finished_at=at("2026-03-01 09:00"), result_docs=[])
    )
    [outcome] = await process(pool, the_intake, [good, impossible])
    assert outcome.status == "rejected"
    assert outcome.reason.startswith("fact 2 (vn.cchc.dossier.result_issued)")
    assert "before the dossier was received" in outcome.reason
    assert await pool.fetchval("SELECT count(*) FROM es_events") == 0
    assert await pool.fetchval("SELECT count(*) FROM dossier_state") == 0


async def test_units_are_validated_and_legacy_codes_are_mapped_and_kept(pool, the_intake) -> None:
    [unknown] = await process(pool, the_intake, [fact(received("D-3"), unit="99999")])
    assert unknown.status == "rejected"
    assert "99999" in unknown.reason
    legacy = fact(received("D-4", "2025-03-03 08:00", "2025-03-06 08:00"), unit="00001")  # Phúc Xá, pre-2025
    [mapped] = await process(pool, the_intake, [legacy])
    assert mapped.status == "accepted"
    envelope = mapped.events[0].to_envelope()  # the row the intake built is a valid CloudEvent
    assert envelope.legacyunitcode == "00001"
    assert envelope.unitcode != "00001"
    assert envelope.provincecode == "01"
    row = await pool.fetchrow("SELECT unitcode, legacy_unitcode FROM es_events WHERE stream_id = 'dossier:D-4'")
    assert (row["unitcode"], row["legacy_unitcode"]) == (envelope.unitcode, "00001")


async def test_the_scheduler_command_reports_an_open_dossier_overdue_once(pool, the_intake) -> None:
    await process(pool, the_intake, [fact(received("D-5"))], now=at("2026-03-02 08:01"))
    watch = await pool.fetchval("SELECT overdue_watch_at FROM dossier_state WHERE stream_id = 'dossier:D-5'")
    assert watch == at("2026-03-05 08:00")
    async with pool.acquire() as conn, conn.transaction():
        assert await the_intake.check_overdue(conn, at("2026-03-05 07:00")) == 0
        assert await the_intake.check_overdue(conn, at("2026-03-05 09:00")) == 1
    async with pool.acquire() as conn, conn.transaction():
        assert await the_intake.check_overdue(conn, at("2026-03-06 09:00")) == 0
    # a dossier that just received a fact is left to settle (its history may still be arriving)
    await process(pool, the_intake, [fact(received("D-6"))], now=at("2026-03-05 08:59"))
    async with pool.acquire() as conn, conn.transaction():
        assert await the_intake.check_overdue(conn, at("2026-03-05 09:00"), settle=timedelta(seconds=90)) == 0
        assert await the_intake.check_overdue(conn, at("2026-03-05 09:01"), settle=timedelta(seconds=30)) == 1
    types = [
        r["type"]
        for r in await pool.fetch("SELECT type FROM es_events WHERE stream_id = 'dossier:D-5' ORDER BY version")
    ]
    assert types == ["vn.cchc.dossier.received", "vn.cchc.dossier.became_overdue", "vn.cchc.dossier.apology_assessed"]
    # waiting for the applicant pauses the clock: nothing to watch until the supplement is back
    ask = SupplementRequested(
        dossier_id="D-5",
        agency_code="000.00.01.H26",
        supplement_id="b1",
        requested_at=at("2026-03-06 10:00"),
        stage="processing",
        content="x",
    )
    await process(pool, the_intake, [fact(ask)], now=at("2026-03-06 10:01"))
    assert await pool.fetchval("SELECT overdue_watch_at FROM dossier_state WHERE stream_id = 'dossier:D-5'") is None


@pytest_asyncio.fixture
async def client(pool, the_intake, settings) -> AsyncIterator[httpx.AsyncClient]:
    app = FastAPI()
    app.include_router(
        api.api_router(
            pool=pool, intake=the_intake, registry=default_registry(), clock=lambda: NOW, judge_of=judges(settings)
        )
    )
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://test") as client:
        yield client


def body(payload, unit: str = UNIT) -> dict:
    return {
        "source": "urn:test:web",
        "type": payload.event_type,
        "unitcode": unit,
        "data": json.loads(payload.model_dump_json()),
    }


async def test_http_facts_are_idempotent_per_key(client) -> None:
    request = body(received("H-1"))
    first = await client.post("/v1/facts", json=request, headers={"Idempotency-Key": "k-1"})
    assert first.status_code == 201, first.text
    assert first.json()["events"][0]["type"] == "vn.cchc.dossier.received"
    again = await client.post("/v1/facts", json=request, headers={"Idempotency-Key": "k-1"})
    assert again.status_code == 200
    assert again.headers["Idempotent-Replayed"] == "true"
    assert again.json() == first.json()
    changed = {**request, "data": {**request["data"], "ma_tthc": "2.000635"}}
    conflict = await client.post("/v1/facts", json=changed, headers={"Idempotency-Key": "k-1"})
    assert conflict.status_code == 409
    assert conflict.json()["detail"][0]["field"] == "Idempotency-Key"
    state = (await client.get("/v1/dossiers/H-1")).json()
    assert state["status"] == "received"
    assert state["version"] == 1
    assert (await client.get("/v1/dossiers/nope")).status_code == 404


async def test_http_bad_input_is_a_4xx_naming_field_value_and_rule(client) -> None:
    request = body(received("H-2"))
    request["data"]["ma_tthc"] = "1.1"
    bad = await client.post("/v1/facts", json=request, headers={"Idempotency-Key": "k-2"})
    assert bad.status_code == 422
    [problem] = bad.json()["detail"]
    assert problem["field"] == "data.ma_tthc"
    assert problem["value"] == "1.1"
    assert "pattern" in problem["rule"]
    missing = await client.post("/v1/facts", json=body(received("H-3")))
    assert missing.status_code == 422  # no Idempotency-Key
    refused = await client.post(
        "/v1/facts",
        json=body(ResultIssued(dossier_id="H-9", agency_code="x", finished_at=at("2026-03-04 09:00"), result_docs=[])),
        headers={"Idempotency-Key": "k-3"},
    )
    assert refused.status_code == 422
    assert "needs a dossier in processing" in refused.json()["detail"][0]["rule"]
    unit = await client.post("/v1/facts", json=body(received("H-4"), unit="99999"), headers={"Idempotency-Key": "k-4"})
    assert unit.status_code == 422
    assert "99999" in unit.json()["detail"][0]["rule"]


async def test_http_due_date_matches_the_domain_vectors(client) -> None:
    answer = await client.get("/v1/due-date", params={"received": "2026-04-30T09:00:00+07:00", "working_days": 5})
    assert answer.status_code == 200
    assert answer.json()["due_at"] == "2026-05-08T17:00:00+07:00"
    assert answer.json()["normalized_start"] == "2026-05-04T07:00:00+07:00"
    hours = await client.get("/v1/due-date", params={"received": "2026-03-10T16:30:00+07:00", "working_hours": 4})
    assert hours.json()["due_at"] == "2026-03-11T10:30:00+07:00"
    both = await client.get(
        "/v1/due-date", params={"received": "2026-03-10T16:30:00", "working_hours": 4, "working_days": 1}
    )
    assert both.status_code == 422
