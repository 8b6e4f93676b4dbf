"""The commune month of ``test_dossiers_month`` end to end through scoring: published by librdkafka (twice),
judged by the dossiers service, projected by the scoring service, and served by its query API with the
counts worked out by hand from ``examples/dvcqg/commune-month.jsonl`` (30 dossiers, March 2026):

- report 06: received 29 (#16 was refused at reception: refused 1), early 15, on time 7, late 4 (see
  test_dossiers_month for each), withdrawn 1 (#17), stopped 1 (#18), open at the end of March within time 1
  (#19, due 07/04), nothing carried over; % on time 22/26; online 8 of 29 (#6,7,10,13,19,23,24,28), postal 2;
- 766 2.1: 24 of the 28 resolutions on time plus #19 open within time at the cut-off = 25/29 (F766 2.1
  counts dossiers still open within time) -> 17.24 of 20 points;
- 4.1: 7 electronic results (the online ones but #19) of 26 results; 4.2: all 29 have a digitised
  component, 19 have a paper-only result -> 10/29; 4.3 and 4.4: the 8 online dossiers -> 8/29;
  4.5b: VNeID on 7 online submissions (#28 says 0; #1 is in person, no account) -> 7/29;
- 3.6: 10 dossiers with fees (#2,3,6,13,15,20,22,24,27,30), 3 paid online (#6,13,24) -> 3/10; 3.5b: fees in
  2 procedures (2.000635, 2.000908), online payment in 1 -> 1/2;
- 1.4 and 3.3: no DVCQG sync event in an export -> N/A (missing input), never 0; the total is N/A (the
  catalogue indicators), the TDGQ group is scored;
- apology: the 4 late dossiers that ended in March, no apology issued -> 0/4.

The unit is a random real commune (the month's MaDVHC replaced), so reruns on one broker do not mix.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
import pytest_asyncio
from confluent_kafka import Producer

from contracts.topics import DOSSIERS_INBOUND
from eventkit.units import UnitRegistry
from eventkit.worktime import WorkingCalendar
from services.dossiers.dvcqg import iter_records, map_sync_body
from tests.e2e.serving import dossiers_and_scoring
from tests.e2e.units import pick_communes

pytestmark = pytest.mark.e2e
MONTH = Path(__file__).resolve().parents[2] / "examples" / "dvcqg" / "commune-month.jsonl"
ID_NAMESPACE = uuid.UUID("0b3e7c55-7f0e-4a55-8d2e-6c1f4f3e9a10")
MARCH = {"period": "month", "start": "2026-03-15"}


@pytest_asyncio.fixture
async def services(fresh_database: str, kafka_bootstrap: str) -> AsyncIterator[dict[str, str]]:
    async with dossiers_and_scoring(
        fresh_database, kafka_bootstrap, pseudonym_secret="e2e-scoring-key-0123456789"
    ) as urls:
        yield urls


def _records(unit: str, province: str, run: str) -> list[tuple[bytes, bytes, list[tuple[str, bytes]]]]:
    calendar = WorkingCalendar.load()
    out = []
    for _, exported in iter_records(MONTH):
        assert isinstance(exported, dict)
        record = {**exported, "MaHoSo": f"{exported['MaHoSo']}-{run}", "MaDVHC": unit}
        for fact in map_sync_body(record, source="urn:test:motcua", default_unit=None, due_at_of=calendar.due_at):
            payload = fact.payload
            subject = f"dossier:{payload.dossier_id}"  # type: ignore[attr-defined]
            headers = {
                "content-type": "application/json",
                "ce_specversion": "1.0",
                "ce_id": str(uuid.uuid5(ID_NAMESPACE, f"{run}:{fact.event_id}")),
                "ce_source": "//motcua.example",
                "ce_type": payload.event_type,
                "ce_subject": subject,
                "ce_time": fact.time.isoformat(),
                "ce_dataschema": payload.schema_id(),
                "ce_schemaversion": str(payload.schema_version),
                "ce_unitcode": fact.unit_code,
                "ce_provincecode": province,
                "ce_partitionkey": subject,
            }
            out.append(
                (subject.encode(), payload.model_dump_json().encode(), [(k, v.encode()) for k, v in headers.items()])
            )
    return out


def _publish(bootstrap: str, records: list[tuple[bytes, bytes, list[tuple[str, bytes]]]]) -> None:
    producer = Producer({"bootstrap.servers": bootstrap, "enable.idempotence": True})
    for key, value, headers in records:
        producer.produce(DOSSIERS_INBOUND, value=value, key=key, headers=headers)
    assert producer.flush(30) == 0


def _by_key(items: list[dict]) -> dict[str, dict]:
    return {i["key"]: i for i in items}


async def test_the_commune_month_is_scored_with_the_hand_worked_counts(services, kafka_bootstrap) -> None:
    registry = UnitRegistry.load()
    province, (unit,) = pick_communes()
    run = uuid.uuid4().hex[:8]
    records = _records(unit, province, run)
    await asyncio.to_thread(_publish, kafka_bootstrap, records + records)  # a retrying partner: everything twice

    async with httpx.AsyncClient(base_url=services["scoring"], timeout=10) as api:

        async def march() -> dict:
            response = await api.get(f"/units/{unit}/indicators", params=MARCH)
            assert response.status_code == 200, response.text
            return response.json()

        body: dict = {}
        for _ in range(120):
            body = await march()
            r06 = _by_key(body["report06"])
            d21 = _by_key(body["d766"]["groups"][1]["indicators"])["d766.2_1"]
            if r06["r06.received"]["value"] == 29 and d21["denominator"] == 29 and r06["apology.rate"]["denominator"]:
                break
            await asyncio.sleep(0.5)
        await asyncio.sleep(3)  # a double count (the records were sent twice) would show by now
        body = await march()

        r06 = _by_key(body["report06"])
        counts = {k.removeprefix("r06."): v["value"] for k, v in r06.items() if v["kind"] == "count"}
        assert counts == {
            "received": 29,
            "received_online": 8,
            "received_postal": 2,
            "carried_over": 0,
            "resolved_early": 15,
            "resolved_on_time": 7,
            "resolved_late": 4,
            "open_within_time": 1,
            "open_overdue": 0,
            "withdrawn": 1,
            "refused": 1,
            "stopped": 1,
        }
        assert (r06["r06.on_time_rate"]["numerator"], r06["r06.on_time_rate"]["denominator"]) == (22, 26)
        assert r06["r06.on_time_rate"]["value"] == 0.8462
        assert r06["r06.online_share"]["value"] == 0.2759
        assert r06["r06.avg_processing_time"]["denominator"] == 26
        assert (r06["apology.rate"]["numerator"], r06["apology.rate"]["denominator"]) == (0, 4)

        d766 = body["d766"]
        assert d766["version"] == "d766-m766-2026.1"
        ind = {i["key"]: i for g in d766["groups"] for i in g["indicators"]}
        parts = {
            k: (ind[k]["numerator"], ind[k]["denominator"])
            for k in ("d766.2_1", "d766.4_1", "d766.4_2", "d766.4_3", "d766.4_4", "d766.4_5b", "d766.3_6", "d766.3_5b")
        }
        assert parts == {
            "d766.2_1": (25, 29),
            "d766.4_1": (7, 26),
            "d766.4_2": (10, 29),
            "d766.4_3": (8, 29),
            "d766.4_4": (8, 29),
            "d766.4_5b": (7, 29),
            "d766.3_6": (3, 10),
            "d766.3_5b": (1, 2),
        }
        assert ind["d766.2_1"]["value"] == 0.8621
        assert ind["d766.2_1"]["points"] == 17.24
        assert ind["d766.1_4"]["value"] is None
        assert ind["d766.1_4"]["na_reason"] == "missing_reference_data"
        assert ind["d766.3_3"]["value"] is None
        assert ind["d766.1_1"]["na_reason"] == "missing_reference_data"
        groups = {g["dvcqg_key"]: g for g in d766["groups"]}
        assert groups["TDGQ"]["points"] == 17.24
        assert groups["CKMB"]["points"] is None
        assert d766["total"] is None
        assert d766["band"] is None

        # the older allocation scores 3.6 against TD's 30% threshold: 0.3 -> the full 6 points
        td = (await api.get(f"/units/{unit}/indicators", params={**MARCH, "config": "d766-td-2024.1"})).json()
        td_ind = {i["key"]: i for g in td["d766"]["groups"] for i in g["indicators"]}
        assert td_ind["d766.3_6"]["points"] == 6

        # the 766 on-time numerator explained: the 24 resolutions on time and #19, still open at the cut-off
        explained = (
            await api.get(
                f"/units/{unit}/explain", params={**MARCH, "indicator": "d766.2_1", "part": "numerator", "size": 100}
            )
        ).json()
        assert explained["total"] == 25
        assert sum(d["on_time_766"] is True for d in explained["dossiers"]) == 24
        assert [d["resolved_at"] for d in explained["dossiers"] if d["on_time_766"] is None] == [None]
        late = (
            await api.get(f"/units/{unit}/explain", params={**MARCH, "indicator": "r06.resolved_late", "size": 2})
        ).json()
        assert late["total"] == 4
        assert len(late["dossiers"]) == 2  # paged
        page2 = (
            await api.get(
                f"/units/{unit}/explain", params={**MARCH, "indicator": "r06.resolved_late", "size": 2, "page": 2}
            )
        ).json()
        received = sorted(d["received_at"][:16] for d in late["dossiers"] + page2["dossiers"])
        assert received == ["2026-03-10T09:10", "2026-03-13T08:30", "2026-03-19T16:20", "2026-03-25T08:45"]

        # time series and the quarter
        series = (
            await api.get(
                f"/units/{unit}/series",
                params={"indicator": "r06.received", "period": "month", "from": "2026-01-01", "to": "2026-04-30"},
            )
        ).json()
        assert [p["value"] for p in series["points"]] == [0, 0, 29, 0]
        quarter = await api.get(f"/units/{unit}/indicators", params={"period": "quarter", "start": "2026-02-01"})
        assert _by_key(quarter.json()["report06"])["r06.resolved_early"]["value"] == 15

        # the province: every current commune listed, ranked by 766 2.1, ours with its value
        table = (await api.get(f"/provinces/{province}/communes", params={**MARCH, "indicator": "d766.2_1"})).json()
        assert len(table["rows"]) == len(registry.communes_of(province))
        ours = next(r for r in table["rows"] if r["unitcode"] == unit)
        assert (ours["numerator"], ours["denominator"], ours["value"]) == (25, 29, 0.8621)
        ranked = [r["value"] for r in table["rows"] if r["value"] is not None]
        assert ranked == sorted(ranked, reverse=True)
        rollup = (await api.get(f"/units/{province}/indicators", params=MARCH)).json()
        assert _by_key(rollup["report06"])["r06.received"]["value"] >= 29

        assert (await api.get(f"/units/{unit}/indicators", params={**MARCH, "config": "nope"})).status_code == 404
        bad = await api.get(f"/provinces/{province}/communes", params={**MARCH, "indicator": "nope"})
        assert bad.status_code == 422
        assert (await api.get("/openapi.json")).json()["paths"].keys() >= {
            "/units/{unitcode}/indicators",
            "/provinces/{provincecode}/communes",
            "/units/{unitcode}/series",
            "/units/{unitcode}/explain",
            "/units/{unitcode}/activity",
        }
