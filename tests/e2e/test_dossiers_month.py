"""A month of one commune's dossiers, published by a Kafka client that is not chiso's code, comes out of the
dossiers service as exactly the expected canonical events — counted by type and by timeliness.

The month is ``examples/dvcqg/commune-month.jsonl`` (30 dossiers of Phường Ba Đình, March 2026). Its facts
go on the inbound topic as CloudEvents built by hand with librdkafka (confluent-kafka), as a province's
one-stop-shop software would send them, twice (a retrying partner). The verdicts below were worked out by
hand from the file with the 2026 calendar (07:00-11:30, 13:30-17:00), not by the code under test:

- report 06, 26 dossiers with a result: early 15 (#1,3,4,5,7,8,10,11,15,21,22,23,27,28,29), on time 7
  (#2,6,13,14,24,25,30 — finished on the due date, before the due hour), late 4 (#9 finished 18/03 after a
  17/03 due date; #12 finished 26/03, after its due date moved by two supplements to 25/03 09:20; #20 4
  working hours from 19/03 16:20 = 20/03 10:20, finished 15:30; #26 due 30/03, finished 31/03);
  #11 waited 22.5 working hours for a supplement, which moves its due date to 26/03 07:30: early; #10's
  supplement was asked before receipt (reception stage): it moves nothing;
- 766 indicator 2.1: the 4 late ones are late (#12 also for its second supplement), the withdrawn (#17)
  and stopped (#18) dossiers ended before their due dates: on time; 28 resolutions in all;
- overdue: the 4 late dossiers, reported with their results, and the one still open (#19, due 07/04/2026),
  reported by the scheduler: 5; apology assessments: the same 5 (no apology in the export).
"""

from __future__ import annotations

import asyncio
import json
import uuid
from collections import Counter
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import pytest_asyncio
from confluent_kafka import Producer

from contracts.topics import DOSSIERS_EVENTS, DOSSIERS_INBOUND
from eventkit.service import ServiceSettings
from eventkit.settings import DatabaseSettings, KafkaSettings, LogSettings
from eventkit.worktime import WorkingCalendar
from services.dossiers.app import build_app
from services.dossiers.dvcqg import iter_records, map_sync_body
from services.dossiers.settings import DossiersSettings
from tests.e2e.serving import serve
from tests.kafka_helpers import read_topic

pytestmark = pytest.mark.e2e
MONTH = Path(__file__).resolve().parents[2] / "examples" / "dvcqg" / "commune-month.jsonl"
ID_NAMESPACE = uuid.UUID("5d7c3a52-2b8e-4c41-9a36-1f0e6a9d4b21")


@pytest_asyncio.fixture
async def dossiers(fresh_database: str, kafka_bootstrap: str) -> AsyncIterator[str]:
    shell = ServiceSettings(
        "dossiers",
        "dossiers",
        KafkaSettings(bootstrap_servers=kafka_bootstrap),
        DatabaseSettings(url=fresh_database),
        LogSettings(level="WARNING"),
    )
    own = DossiersSettings(pseudonym_secret="e2e-month-key-0123456789", overdue_interval_s=1, overdue_settle_s=3)
    async with serve(build_app(own, shell)) as url:
        yield url


def _records(run: str) -> tuple[list[tuple[bytes, bytes, list[tuple[str, bytes]]]], Counter[str]]:
    """The month's facts as binary-mode CloudEvents (headers written by hand, per the AsyncAPI document)."""
    calendar = WorkingCalendar.load()
    out, facts_by_type = [], Counter[str]()
    for _, exported in iter_records(MONTH):
        assert isinstance(exported, dict)
        record = {**exported, "MaHoSo": f"{exported['MaHoSo']}-{run}"}
        for fact in map_sync_body(record, source="urn:test:motcua", default_unit=None, due_at_of=calendar.due_at):
            payload = fact.payload
            subject = f"dossier:{payload.dossier_id}"  # type: ignore[attr-defined]
            headers = {
                "content-type": "application/json",
                "ce_specversion": "1.0",
                "ce_id": str(uuid.uuid5(ID_NAMESPACE, fact.event_id)),
                "ce_source": "//motcua.ha-noi.example",
                "ce_type": payload.event_type,
                "ce_subject": subject,
                "ce_time": fact.time.isoformat(),
                "ce_dataschema": payload.schema_id(),
                "ce_schemaversion": str(payload.schema_version),
                "ce_unitcode": fact.unit_code,
                "ce_provincecode": "01",
                "ce_partitionkey": subject,
            }
            value = payload.model_dump_json().encode()
            out.append((subject.encode(), value, [(k, v.encode()) for k, v in headers.items()]))
            facts_by_type[payload.event_type] += 1
    return out, facts_by_type


def _publish(bootstrap: str, records: list[tuple[bytes, bytes, list[tuple[str, bytes]]]]) -> None:
    producer = Producer({"bootstrap.servers": bootstrap, "enable.idempotence": True})
    for key, value, headers in records:
        producer.produce(DOSSIERS_INBOUND, value=value, key=key, headers=headers)
    assert producer.flush(30) == 0


async def test_a_commune_month_yields_exactly_the_expected_canonical_events(dossiers, kafka_bootstrap) -> None:
    run = uuid.uuid4().hex[:8]
    records, facts = _records(run)
    assert facts["vn.cchc.dossier.received"] == 29  # 30 dossiers, one refused at reception
    await asyncio.to_thread(_publish, kafka_bootstrap, records + records)  # everything sent twice
    derived = {
        "vn.cchc.dossier.resolved": 28,
        "vn.cchc.dossier.became_overdue": 5,
        "vn.cchc.dossier.apology_assessed": 5,
    }
    expected = {**facts, **derived}

    async def ours() -> list:
        every = await read_topic(kafka_bootstrap, DOSSIERS_EVENTS, wait_s=5)
        return [r for r in every if r.key is not None and r.key.decode().endswith(f"-{run}")]

    mine: list = []
    for _ in range(60):
        mine = await ours()
        if len(mine) >= sum(expected.values()):
            break
        await asyncio.sleep(1)
    await asyncio.sleep(4)  # the scheduler and the relay had time to add anything extra by now
    mine = await ours()
    by_type = Counter(dict(r.headers)["ce_type"].decode() for r in mine)
    assert dict(by_type) == expected
    assert len({dict(r.headers)["ce_id"] for r in mine}) == len(mine)  # nothing twice

    verdicts = [json.loads(r.value) for r in mine if dict(r.headers)["ce_type"] == b"vn.cchc.dossier.resolved"]
    assert Counter(v["report06_class"] for v in verdicts) == {"early": 15, "on_time": 7, "late": 4, None: 2}
    assert Counter(v["on_time_766"] for v in verdicts) == {True: 24, False: 4}
    # the four late ones, by their receipt (#9, #12, #20, #26 of the file)
    late = sorted(v["received_at"][:16] for v in verdicts if v["report06_class"] == "late")
    assert late == ["2026-03-10T09:10", "2026-03-13T08:30", "2026-03-19T16:20", "2026-03-25T08:45"]
    overdue = [json.loads(r.value) for r in mine if dict(r.headers)["ce_type"] == b"vn.cchc.dossier.became_overdue"]
    assert sum(o["status"] in ("received", "processing") for o in overdue) >= 1  # the open one (#19)
    for record in mine:
        headers = dict(record.headers)
        assert headers["ce_unitcode"] == b"00004"
        assert headers["ce_source"] == b"urn:chiso:dossiers"
