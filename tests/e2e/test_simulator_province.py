"""A slice of a province simulated into the running dossiers and surveys services on the real broker and
database: the simulator publishes on the inbound topics as a one-stop-shop system and a survey partner
would (twice: a retrying partner), and every fact comes out as exactly one canonical event, every dossier
that ended gets exactly one verdict, and every survey response is stored exactly once."""

from __future__ import annotations

import asyncio
import json
import random
from collections import Counter
from collections.abc import AsyncIterator
from datetime import date, datetime, timedelta

import pytest
import pytest_asyncio

from contracts.topics import DOSSIERS_EVENTS, SURVEYS_EVENTS
from eventkit.service import ServiceSettings
from eventkit.settings import DatabaseSettings, KafkaSettings, LogSettings
from eventkit.units import UnitRegistry
from eventkit.worktime import VN_TZ, WorkingCalendar
from services.dossiers.app import build_app as build_dossiers
from services.dossiers.settings import DossiersSettings
from services.simulator.cli import _instrument
from services.simulator.send import Targets, send_all
from services.simulator.traffic import DossierFact, Scenario, generate
from services.surveys.app import build_app as build_surveys
from services.surveys.settings import SurveysSettings
from tests.e2e.serving import serve
from tests.kafka_helpers import read_topic

pytestmark = pytest.mark.e2e

_ENDS = {"vn.cchc.dossier.result_issued", "vn.cchc.dossier.withdrawn", "vn.cchc.dossier.processing_stopped"}


def _shell(name: str, database: str, kafka: str) -> ServiceSettings:
    return ServiceSettings(
        name, name, KafkaSettings(bootstrap_servers=kafka), DatabaseSettings(url=database), LogSettings(level="WARNING")
    )


@pytest_asyncio.fixture
async def services(fresh_database: str, kafka_bootstrap: str) -> AsyncIterator[str]:
    """The dossiers and surveys services, as ``chiso run`` runs them; yields the surveys URL."""
    dossiers = build_dossiers(
        DossiersSettings(pseudonym_secret="e2e-simulator-key-0123456789", overdue_interval_s=1, overdue_settle_s=3),
        _shell("dossiers", fresh_database, kafka_bootstrap),
    )
    surveys = build_surveys(
        SurveysSettings(token_secret="e2e-simulator-link-key-0123456789"),
        _shell("surveys", fresh_database, kafka_bootstrap),
    )
    async with serve(dossiers), serve(surveys) as surveys_url:
        yield surveys_url


async def test_a_simulated_province_slice_arrives_exactly_once(services: str, kafka_bootstrap: str) -> None:
    seed = random.SystemRandom().randrange(10**6, 10**9)  # fresh ids on a broker that keeps history
    start = datetime.now(VN_TZ).date() - timedelta(days=12)
    # asked from the running surveys service, as the command does (a blocking client: off the event loop)
    instrument = await asyncio.to_thread(_instrument, None, services, start, fallback=False)
    scenario = Scenario(
        province="01", days=6, start=start, seed=seed, communes=2, plans=False, cutoff=datetime.now(VN_TZ)
    )
    communes = UnitRegistry.load().communes_of("01")
    items = list(generate(scenario, communes, WorkingCalendar.load(), instrument))
    targets = Targets(kafka=kafka_bootstrap, surveys_via="kafka")
    first = await send_all(items, targets, rate=0)
    again = await send_all(items, targets, rate=0)  # a partner retrying everything: stored once
    assert first.facts == again.facts
    assert not first.refused
    assert sum(first.facts.values()) > 100
    assert first.surveys > 0

    by_dossier: dict[str, set[str]] = {}
    for item in items:
        if isinstance(item, DossierFact):
            by_dossier.setdefault(item.envelope.subject, set()).add(item.envelope.type)
    ended = sum(bool(types & _ENDS) for types in by_dossier.values())
    prefix = f"dossier:SIM{seed}-"

    async def dossier_events() -> list:
        records = await read_topic(kafka_bootstrap, DOSSIERS_EVENTS, wait_s=5)
        return [r for r in records if r.key is not None and r.key.decode().startswith(prefix)]

    async def survey_events() -> list:
        records = await read_topic(kafka_bootstrap, SURVEYS_EVENTS, wait_s=5)
        # other tests' responses on the shared topic may have no linked dossier (null)
        return [r for r in records if (json.loads(r.value).get("linked_dossier_id") or "").startswith(f"SIM{seed}-")]

    expected_facts = sum(first.facts.values())
    mine: list = []
    answered: list = []
    for _ in range(90):
        mine, answered = await dossier_events(), await survey_events()
        facts = [r for r in mine if dict(r.headers)["ce_type"].decode() in first.facts]
        if len(facts) >= expected_facts and len(answered) >= first.surveys:
            break
        await asyncio.sleep(1)
    await asyncio.sleep(4)  # the relays had time to add anything extra by now
    mine, answered = await dossier_events(), await survey_events()

    by_type = Counter(dict(r.headers)["ce_type"].decode() for r in mine)
    assert {t: by_type[t] for t in first.facts} == dict(first.facts)  # every fact exactly once
    assert by_type["vn.cchc.dossier.resolved"] == ended  # one verdict per dossier that ended
    overdue = Counter(r.key for r in mine if dict(r.headers)["ce_type"] == b"vn.cchc.dossier.became_overdue")
    assert all(n == 1 for n in overdue.values())
    assert len({dict(r.headers)["ce_id"] for r in mine}) == len(mine)  # nothing twice
    units = {u.code for u in communes[:2]}
    assert {dict(r.headers)["ce_unitcode"].decode() for r in mine} == units
    assert len(answered) == first.surveys  # each response stored once, whichever copy came first
    assert {dict(r.headers)["ce_unitcode"].decode() for r in answered} <= units
    assert all(date.fromisoformat(json.loads(r.value)["submitted_at"][:10]) >= start for r in answered)
