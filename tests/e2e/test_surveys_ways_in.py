"""The surveys service on the real broker and database: a response sent over HTTP, over Kafka (by a client
that is not chiso's code) and from a file each lands on ``vn.cchc.surveys.events`` exactly once; a second
response for a dossier is refused with its reason, whichever way it came in; bad input is a 4xx or a dead
letter with the reason, never silence."""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest
import pytest_asyncio
from confluent_kafka import Producer

from contracts.surveys import SurveyResponseSubmitted
from contracts.topics import SURVEYS_EVENTS, SURVEYS_INBOUND, dead_letter_topic
from eventkit.service import ServiceSettings
from eventkit.settings import DatabaseSettings, KafkaSettings, LogSettings
from services.surveys.app import build_app
from services.surveys.domain import response_id_for_dossier, response_id_for_submission
from services.surveys.importer import run_import
from services.surveys.settings import SurveysSettings
from services.surveys.tokens import LinkClaims, LinkSigner
from tests.e2e.serving import serve
from tests.kafka_helpers import read_topic
from tests.unit.test_surveys_instruments import CITIZEN_ANSWERS, SIPAS_2023_ANSWERS

pytestmark = pytest.mark.e2e
KEY = "e2e-surveys-link-key-0123456789"
UNIT = "00004"  # Phường Ba Đình, Hà Nội
PROFILE = {"type": "citizen", "age_band": "30-39", "sex": "female"}


@pytest_asyncio.fixture
async def service(fresh_database: str, kafka_bootstrap: str) -> AsyncIterator[tuple[str, SurveysSettings]]:
    shell = ServiceSettings(
        "surveys",
        "surveys",
        KafkaSettings(bootstrap_servers=kafka_bootstrap),
        DatabaseSettings(url=fresh_database),
        LogSettings(level="WARNING"),
    )
    own = SurveysSettings(token_secret=KEY, kiosk_rate_per_minute=1, kiosk_burst=2)
    async with serve(build_app(own, shell)) as url:
        yield url, own


def link(dossier: str, channel: str = "qr") -> str:
    claims = LinkClaims(dossier, UNIT, channel, datetime.now(UTC) + timedelta(days=7), None, "1.001776")
    return LinkSigner(KEY.encode()).issue(claims)


def kafka_record(run: str, number: int, **changes) -> tuple[bytes, bytes, list[tuple[str, bytes]]]:
    """A partner's response as librdkafka publishes it: the v1 payload, CloudEvents headers by hand."""
    payload = {
        "response_id": f"partner-{run}-{number}",
        "survey_id": "SIPAS-XA-2026",
        "instrument_id": "citizen-experience",
        "instrument_version": "chiso-2025.1",
        "channel": "online",
        "respondent": PROFILE,
        "answers": [{"item_id": k, "value": v} for k, v in CITIZEN_ANSWERS.items()],
        "submitted_at": (datetime.now(UTC) - timedelta(hours=1)).isoformat(),
        **changes,
    }
    SurveyResponseSubmitted.model_validate(payload)  # the partner speaks the contract
    headers = {
        "content-type": "application/json",
        "ce_specversion": "1.0",
        "ce_id": str(uuid.uuid5(uuid.NAMESPACE_URL, f"{run}/{number}")),
        "ce_source": f"//survey-partner.example/{run}",
        "ce_type": SurveyResponseSubmitted.event_type,
        "ce_subject": payload["response_id"],
        "ce_time": payload["submitted_at"],
        "ce_dataschema": SurveyResponseSubmitted.schema_id(),
        "ce_schemaversion": "1",
        "ce_unitcode": UNIT,
        "ce_provincecode": "01",
        "ce_partitionkey": payload["response_id"],
    }
    return payload["response_id"].encode(), json.dumps(payload).encode(), [(k, v.encode()) for k, v in headers.items()]


def publish(bootstrap: str, records) -> None:
    producer = Producer({"bootstrap.servers": bootstrap, "enable.idempotence": True})
    for key, value, headers in records:
        producer.produce(SURVEYS_INBOUND, value=value, key=key, headers=headers)
    assert producer.flush(30) == 0


async def test_http_kafka_and_file_each_land_exactly_once(service, kafka_bootstrap, fresh_database, tmp_path) -> None:
    url, settings = service
    run = uuid.uuid4().hex[:8]
    dossier = f"000.00.01.H26-260302-{run}"
    body = {"answers": SIPAS_2023_ANSWERS, "respondent": PROFILE}
    expected: set[str] = set()
    async with httpx.AsyncClient(base_url=url, timeout=30) as client:
        # --- HTTP: the QR link of a dossier ------------------------------------------------------------
        first = await client.post("/v1/responses", json={**body, "token": link(dossier)})
        assert first.status_code == 201, first.text
        assert first.json()["response_id"] == response_id_for_dossier(dossier)
        expected.add(first.json()["response_id"])
        second = await client.post("/v1/responses", json={**body, "token": link(dossier, "sms")})
        assert second.status_code == 409
        [problem] = second.json()["detail"]
        assert problem["field"] == "linked_dossier_id"
        assert "already has a response" in problem["rule"]
        assert "not overwritten" in problem["rule"]
        # a retry with its Idempotency-Key stores nothing again and says so
        keyed = {**body, "token": link(f"{dossier}-k")}
        headers = {"Idempotency-Key": f"retry-{run}"}
        stored = await client.post("/v1/responses", json=keyed, headers=headers)
        again = await client.post("/v1/responses", json=keyed, headers=headers)
        assert (stored.status_code, again.status_code) == (201, 200)
        assert again.headers["Idempotent-Replayed"] == "true"
        assert again.json()["response_id"] == stored.json()["response_id"]
        expected.add(stored.json()["response_id"])
        # the page of an answered dossier says so instead of offering the form again
        page = await client.get(f"/s/{link(dossier)}")
        assert page.status_code == 200
        assert "đã được đánh giá" in page.text
        # --- HTTP: a kiosk, rate-limited per device -------------------------------------------------------
        kiosk = {
            **body,
            "unitcode": UNIT,
            "instrument_id": "citizen-experience",
            "channel": "kiosk",
            "answers": CITIZEN_ANSWERS,
        }
        device = {"X-Device-Id": f"kiosk-{run}"}
        answers = [await client.post("/v1/responses", json=kiosk, headers=device) for _ in range(3)]
        assert [a.status_code for a in answers] == [201, 201, 429]
        assert int(answers[2].headers["Retry-After"]) >= 1
        expected.update(a.json()["response_id"] for a in answers[:2])
        # --- HTTP: bad input, each with its precise reason -------------------------------------------------
        bad = await client.post(
            "/v1/responses",
            json={**kiosk, "answers": {**CITIZEN_ANSWERS, "procedures.satisfaction": 6}},
            headers={"X-Device-Id": f"other-{run}"},
        )
        assert bad.status_code == 422
        assert bad.json()["detail"][0]["field"] == "answers.procedures.satisfaction"
        forged = await client.post("/v1/responses", json={**body, "token": link(dossier)[:-4] + "AAAA"})
        assert forged.status_code == 401
        no_device = await client.post("/v1/responses", json=kiosk)
        assert no_device.status_code == 422
        assert no_device.json()["detail"][0]["field"] == "X-Device-Id"

    # --- Kafka: a partner survey system -------------------------------------------------------------------
    valid = kafka_record(run, 1)
    linked_twice = kafka_record(run, 2, linked_dossier_id=dossier, channel="sms")
    out_of_scale = kafka_record(run, 3)
    payload = json.loads(out_of_scale[1])
    payload["answers"][4]["value"] = 9  # procedures.satisfaction
    out_of_scale = (out_of_scale[0], json.dumps(payload).encode(), out_of_scale[2])
    await asyncio.to_thread(publish, kafka_bootstrap, [valid, valid, linked_twice, out_of_scale])  # valid one twice
    expected.add(
        response_id_for_submission(f"//survey-partner.example/{run}", str(uuid.uuid5(uuid.NAMESPACE_URL, f"{run}/1")))
    )

    # --- file: paper results, imported twice ------------------------------------------------------------
    paper = tmp_path / "paper.jsonl"
    records = [
        {
            "id": f"{run}-{n}",
            "unitcode": UNIT,
            "instrument_id": "sipas-service",
            "channel": "paper",
            "submitted_at": "2026-03-02T09:00:00+07:00",
            "respondent": PROFILE,
            "answers": SIPAS_2023_ANSWERS,
        }
        for n in (1, 2)
    ]
    records.append({**records[0], "id": f"{run}-3", "linked_dossier_id": dossier})  # the dossier answered already
    paper.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in records), encoding="utf-8")
    imported = await run_import(paper, settings=settings, database_url=fresh_database)
    reimported = await run_import(paper, settings=settings, database_url=fresh_database)
    assert (imported.accepted, imported.duplicates, imported.rejected) == (2, 0, 1)
    assert (reimported.accepted, reimported.duplicates, reimported.rejected) == (0, 2, 1)
    assert "already has a response" in imported.examples[0][1]
    text = await asyncio.to_thread(Path(imported.rejects_path or "").read_text)
    rejects = [json.loads(line) for line in text.splitlines()]
    assert rejects[0]["original"]["id"] == f"{run}-3"
    expected.update(response_id_for_submission("urn:chiso:surveys:paper", f"{run}-{n}") for n in (1, 2))

    # --- what came out: every expected response once, nothing else of this run ----------------------------
    assert len(expected) == 7
    mine: list = []
    for _ in range(60):
        every = await read_topic(kafka_bootstrap, SURVEYS_EVENTS, wait_s=3)
        mine = [r for r in every if r.key is not None and r.key.decode() in expected]
        if len(mine) >= len(expected):
            break
        await asyncio.sleep(1)
    await asyncio.sleep(2)  # the relay had time to publish anything extra by now
    every = await read_topic(kafka_bootstrap, SURVEYS_EVENTS, wait_s=3)
    mine = [r for r in every if r.key is not None and r.key.decode() in expected]
    assert sorted(r.key.decode() for r in mine) == sorted(expected)  # each exactly once
    for record in mine:
        headers = dict(record.headers)
        assert headers["ce_type"] == b"vn.cchc.survey.response_submitted"
        assert headers["ce_unitcode"] == UNIT.encode()
        assert headers["ce_source"] == b"urn:chiso:surveys"
        event = SurveyResponseSubmitted.model_validate_json(record.value)
        assert event.response_id == record.key.decode()
    linked = [
        SurveyResponseSubmitted.model_validate_json(r.value) for r in mine if r.key.decode() == expected_first(dossier)
    ]
    assert [e.channel.value for e in linked] == ["qr"]  # the first one stands

    # --- refused Kafka records are dead letters with the reason and the original bytes ---------------------
    letters = []
    for _ in range(30):
        parked = await read_topic(kafka_bootstrap, dead_letter_topic("surveys.inbound"), wait_s=2)
        letters = [r for r in parked if r.key is not None and r.key.decode().startswith(f"partner-{run}-")]
        if len(letters) >= 2:
            break
        await asyncio.sleep(1)
    reasons = {r.key.decode(): dict(r.headers)["dlq_reason"].decode() for r in letters}
    assert set(reasons) == {f"partner-{run}-2", f"partner-{run}-3"}
    assert "already has a response" in reasons[f"partner-{run}-2"]
    assert "answers.procedures.satisfaction: 9: out of the scale" in reasons[f"partner-{run}-3"]
    assert {r.value for r in letters} == {linked_twice[1], out_of_scale[1]}


def expected_first(dossier: str) -> str:
    return response_id_for_dossier(dossier)
