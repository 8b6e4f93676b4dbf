"""The surveys service split by role (``SURVEYS_ROLES``), as on a machine with few cores: one process answers
HTTP submissions (and stores them), another runs the Kafka inbox and the relay, on the same schema. A response
stored by the API process reaches ``vn.cchc.surveys.events`` through the other process's relay, once; a
partner's response on the inbound topic is taken by the other process; the API process publishes and consumes
nothing, and the other answers no submission.
"""

from __future__ import annotations

import asyncio
import uuid

import httpx
import pytest

from contracts.surveys import SurveyResponseSubmitted
from contracts.topics import SURVEYS_EVENTS
from eventkit.service import ServiceSettings
from eventkit.settings import DatabaseSettings, KafkaSettings, LogSettings
from services.surveys.app import build_app
from services.surveys.domain import response_id_for_dossier, response_id_for_submission
from services.surveys.settings import SurveysSettings
from tests.e2e.serving import serve
from tests.e2e.test_surveys_ways_in import KEY, PROFILE, kafka_record, link, publish
from tests.kafka_helpers import read_topic
from tests.unit.test_surveys_instruments import SIPAS_2023_ANSWERS

pytestmark = pytest.mark.e2e


def test_roles_are_a_comma_list_of_known_roles() -> None:
    assert SurveysSettings().role_set == {"api", "inbox", "relay"}
    assert SurveysSettings(roles="api").role_set == {"api"}
    assert SurveysSettings(roles="inbox,relay").role_set == {"inbox", "relay"}
    for bad in ("", "api,", "apis", "api;relay"):
        with pytest.raises(ValueError, match="roles"):
            SurveysSettings(roles=bad)


def _shell(database: str, bootstrap: str) -> ServiceSettings:
    return ServiceSettings(
        "surveys", "surveys", KafkaSettings(bootstrap_servers=bootstrap), DatabaseSettings(url=database),
        LogSettings(level="WARNING"),
    )  # fmt: skip


async def _published(bootstrap: str, wanted: set[str], within_s: float = 60) -> list[str]:
    """The response ids on the events topic once all of ``wanted`` are there (each id as often as published)."""
    ids: list[str] = []
    for _ in range(max(1, int(within_s / 2))):
        records = await read_topic(bootstrap, SURVEYS_EVENTS, wait_s=1)
        ids = [SurveyResponseSubmitted.model_validate_json(r.value).response_id for r in records]
        if wanted <= set(ids):
            break
        await asyncio.sleep(1)
    return ids


async def test_an_api_process_and_a_workers_process_share_one_store(fresh_database: str, kafka_bootstrap: str):
    api = build_app(SurveysSettings(token_secret=KEY, roles="api"), _shell(fresh_database, kafka_bootstrap))
    workers = build_app(SurveysSettings(token_secret=KEY, roles="inbox,relay"), _shell(fresh_database, kafka_bootstrap))
    run = uuid.uuid4().hex[:8]
    dossier = f"000.00.01.H26-260302-{run}"
    body = {"answers": SIPAS_2023_ANSWERS, "respondent": PROFILE, "token": link(dossier)}
    async with serve(api) as api_url, httpx.AsyncClient(timeout=30) as client:
        stored = await client.post(f"{api_url}/v1/responses", json=body)
        assert stored.status_code == 201, stored.text
        assert stored.json()["response_id"] == response_id_for_dossier(dossier)
        await asyncio.sleep(2)  # the API process alone: stored, not published
        assert response_id_for_dossier(dossier) not in await _published(kafka_bootstrap, {"none"}, within_s=1)
        api_metrics = (await client.get(f"{api_url}/metrics")).text
        assert 'component="relay:' not in api_metrics
        assert 'consumer="surveys.inbound"' not in api_metrics
        assert 'component="surveys.http-commit"' in api_metrics  # its own batches: the submission above

        async with serve(workers) as workers_url:
            refused = await client.post(f"{workers_url}/v1/responses", json=body)
            assert refused.status_code == 404  # the workers' process answers no submission
            publish(kafka_bootstrap, [kafka_record(run, 1)])
            partner = response_id_for_submission(
                f"//survey-partner.example/{run}", str(uuid.uuid5(uuid.NAMESPACE_URL, f"{run}/1"))
            )
            wanted = {response_id_for_dossier(dossier), partner}
            ids = await _published(kafka_bootstrap, wanted)
            assert wanted <= set(ids), ids
            assert sorted(i for i in ids if i in wanted) == sorted(wanted)  # each exactly once
            workers_metrics = (await client.get(f"{workers_url}/metrics")).text
            assert 'component="relay:' in workers_metrics  # the same names the API process lacks
            assert 'consumer="surveys.inbound"' in workers_metrics
