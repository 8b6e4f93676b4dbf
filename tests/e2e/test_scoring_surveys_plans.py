"""Survey and plans events published on the real broker, projected by the scoring service, answered by its API:
SIPAS per element with n and interval, the PAPI-proxy labelled proxy, tasks and reports on time, the PAR Index
(appraised criteria, a zeroed one, event-computed ones; N/A total while criteria are missing), and targets vs
actuals with N/A reasons. A random commune of Quảng Ngãi (the shipped 2024 tree), so reruns do not mix."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, date, datetime, timedelta, timezone

import httpx
import pytest
import pytest_asyncio
from confluent_kafka import Producer

from contracts.envelope import make_envelope
from contracts.plans import (
    Comparison,
    CriterionAppraised,
    CriterionZeroed,
    EvidenceRef,
    MeasureUnit,
    ReportKind,
    ReportScheduled,
    ReportSubmitted,
    TargetSet,
    TaskAssigned,
    TaskCompleted,
    ZeroingReason,
)
from contracts.surveys import Answer, RespondentProfile, SurveyChannel, SurveyResponseSubmitted
from contracts.wire import encode
from eventkit.service import ServiceSettings
from eventkit.settings import DatabaseSettings, KafkaSettings, LogSettings
from services.scoring.app import build_app as scoring_app
from tests.e2e.serving import serve
from tests.e2e.units import pick_communes

pytestmark = pytest.mark.e2e
VN = timezone(timedelta(hours=7))
SET = "QĐ 673/QĐ-UBND"


@pytest_asyncio.fixture
async def scoring(fresh_database: str, kafka_bootstrap: str) -> AsyncIterator[str]:
    shell = ServiceSettings(
        "scoring",
        "scoring",
        KafkaSettings(bootstrap_servers=kafka_bootstrap),
        DatabaseSettings(url=fresh_database),
        LogSettings(level="WARNING"),
    )
    async with serve(scoring_app(shell=shell)) as url:
        yield url


def _record(payload, subject: str, unit: str) -> tuple[str, bytes, bytes, list[tuple[str, bytes]]]:
    envelope = make_envelope(
        payload,
        id=uuid.uuid4(),
        source="urn:test",
        subject=subject,
        time=datetime.now(UTC),
        unitcode=unit,
        provincecode="51",
    )
    key, value, headers = encode(envelope)
    return payload.topic, key, value, headers


def _events(unit: str, run: str) -> list[tuple[str, bytes, bytes, list[tuple[str, bytes]]]]:
    out = []
    at = datetime(2024, 6, 10, 9, tzinfo=VN)
    profile = RespondentProfile(type="citizen", age_band="30-39", sex="male")
    # 5 SIPAS (2017 instrument) responses: access 4 of 5 satisfied, every element answered
    for i, access in enumerate([5, 4, 4, 5, 2]):
        answers = [
            Answer(item_id=f"{e}.satisfaction", value=4) for e in ("procedure", "civil_servant", "result", "feedback")
        ]
        answers.append(Answer(item_id="access.satisfaction", value=access))
        out.append(
            _record(
                SurveyResponseSubmitted(
                    response_id=f"{run}-R{i}",
                    survey_id="s",
                    instrument_id="sipas-service",
                    instrument_version="QĐ2640-2017",
                    channel=SurveyChannel.QR,
                    respondent=profile,
                    answers=tuple(answers),
                    submitted_at=at,
                ),
                f"r:{i}",
                unit,
            )
        )
    # 2 citizen questionnaires: the PAPI-proxy
    for i, visits in enumerate(["1", "3"]):
        out.append(
            _record(
                SurveyResponseSubmitted(
                    response_id=f"{run}-C{i}",
                    survey_id="c",
                    instrument_id="citizen-experience",
                    instrument_version="chiso-2025.1",
                    channel=SurveyChannel.ONLINE,
                    respondent=profile,
                    answers=(Answer(item_id="procedures.visits", value=visits),),
                    submitted_at=at,
                ),
                f"c:{i}",
                unit,
            )
        )
    # 4 tasks due in March 2024, 3 done on time; 2 reports, 1 on time
    for i in range(4):
        out.append(
            _record(
                TaskAssigned(
                    task_id=f"{run}-T{i}",
                    plan_id="P",
                    title="t",
                    par_area="1",
                    assignee_role="VP",
                    due_date=date(2024, 3, 29),
                ),
                f"t:{i}",
                unit,
            )
        )
        if i < 3:
            out.append(
                _record(
                    TaskCompleted(
                        task_id=f"{run}-T{i}",
                        plan_id="P",
                        done_at=datetime(2024, 3, 20, tzinfo=VN),
                        due_date=date(2024, 3, 29),
                        on_time=True,
                        working_days_late=0,
                    ),
                    f"t:{i}",
                    unit,
                )
            )
    doc = EvidenceRef(document_number="1/BC-UBND", document_date=date(2024, 4, 1), description="báo cáo")
    for i, on_time in enumerate([True, False]):
        out.append(
            _record(
                ReportScheduled(
                    report_id=f"{run}-B{i}",
                    kind=ReportKind.QUARTERLY,
                    title="BC",
                    year=2024,
                    data_from=date(2024, 1, 1),
                    data_to=date(2024, 3, 15),
                    due_date=date(2024, 3, 20),
                ),
                f"b:{i}",
                unit,
            )
        )
        out.append(
            _record(
                ReportSubmitted(
                    report_id=f"{run}-B{i}",
                    submitted_at=datetime(2024, 3, 20 + 5 * i, tzinfo=VN),
                    document=doc,
                    on_time=on_time,
                ),
                f"b:{i}",
                unit,
            )
        )
    # appraisals: every manual criterion at its maximum but 1.1 (zeroed: missing evidence)
    manual = {
        "1.1": 3,
        "1.4": 2,
        "1.5": 2,
        "2.1": 4,
        "2.2": 3,
        "2.3": 3,
        "3.1": 4,
        "3.3": 3,
        "3.4": 3,
        "4.1": 4,
        "4.2": 4,
        "5.1": 4,
        "5.2": 3,
        "5.3": 3,
        "6.1": 4,
        "6.2": 4,
        "7.1": 4,
        "7.4": 3,
        "8.2": 4,
    }
    when = datetime(2025, 2, 1, tzinfo=VN)
    for cid, top in manual.items():
        if cid == "1.1":
            payload = CriterionZeroed(
                criteria_set_id=SET,
                criterion_id=cid,
                year=2024,
                max_score=top,
                reason=ZeroingReason.MISSING_EVIDENCE,
                appraiser="Sở Nội vụ",
                zeroed_at=when,
            )
        else:
            payload = CriterionAppraised(
                criteria_set_id=SET,
                criterion_id=cid,
                year=2024,
                score=top,
                max_score=top,
                appraiser="Sở Nội vụ",
                appraised_at=when,
            )
        out.append(_record(payload, f"par:{cid}", unit))
    for tid, key, comparison, value, start, end in [
        ("tasks", "tasks.on_time_pct", Comparison.AT_LEAST, 70, date(2024, 3, 1), date(2024, 3, 31)),
        ("sipas", "sipas.satisfaction_pct", Comparison.AT_LEAST, 90, date(2024, 1, 1), date(2024, 12, 31)),
        ("esign", "documents.e_signed_pct", Comparison.AT_LEAST, 90, date(2024, 1, 1), date(2024, 12, 31)),
        ("odd", "reports.on_time_pct", Comparison.AT_LEAST, 100, date(2024, 2, 1), date(2024, 3, 15)),
    ]:
        out.append(
            _record(
                TargetSet(
                    target_id=f"{run}-{tid}",
                    plan_id="P",
                    indicator_key=key,
                    comparison=comparison,
                    target_value=value,
                    unit_of_measure=MeasureUnit.PERCENT,
                    period_start=start,
                    period_end=end,
                    description=key,
                ),
                f"target:{tid}",
                unit,
            )
        )
    return out


def _publish(bootstrap: str, records) -> None:
    producer = Producer({"bootstrap.servers": bootstrap, "enable.idempotence": True})
    for topic, key, value, headers in records:
        producer.produce(topic, value=value, key=key, headers=headers)
    assert producer.flush(30) == 0


async def test_surveys_and_plans_are_scored(scoring, kafka_bootstrap) -> None:
    _, (unit,) = pick_communes(province="51")
    run = uuid.uuid4().hex[:8]
    records = _events(unit, run)
    await asyncio.to_thread(_publish, kafka_bootstrap, records + records[:7])  # the responses twice
    async with httpx.AsyncClient(base_url=scoring, timeout=20) as api:
        body: dict = {}
        for _ in range(120):
            body = (await api.get(f"/units/{unit}/indicators", params={"period": "year", "start": "2024-01-01"})).json()
            par = body.get("par") or {}
            blocks = {b["instrument_id"]: b for b in body.get("surveys", [])}
            if (
                par.get("self_total") is None
                and par.get("points_available", 0) >= 59
                and "citizen-experience" in blocks
                and len(blocks) == 2
                and {p["key"]: p for p in body["plans"]}["reports.on_time_rate"]["denominator"] == 2
            ):
                break
            await asyncio.sleep(0.5)
        await asyncio.sleep(2)
        body = (await api.get(f"/units/{unit}/indicators", params={"period": "year", "start": "2024-01-01"})).json()

        blocks = {b["instrument_id"]: b for b in body["surveys"]}
        sipas = {i["key"]: i for i in blocks["sipas-service"]["indicators"]}
        assert sipas["sipas.responses"]["value"] == 5  # published twice, counted once
        access = sipas["sipas.access.satisfaction"]
        assert (access["numerator"], access["n"], access["value"]) == (4, 5, 0.8)
        assert (access["ci_low"], access["ci_high"]) == (0.3755, 0.9638)  # Wilson 4/5
        assert sipas["sipas.index"]["value"] == 0.96  # (0.8 + 1 + 1 + 1 + 1) / 5
        proxy = blocks["citizen-experience"]
        assert "proxy" in proxy["label"].lower()
        assert "PAPI" not in proxy["label"].replace("PAPI-proxy", "").replace("not PAPI", "")
        visits = {i["key"]: i for i in proxy["indicators"]}["papi_proxy.d5.at_most_one_visit"]
        assert (visits["numerator"], visits["n"]) == (1, 2)
        plans = {p["key"]: p for p in body["plans"]}
        assert (plans["tasks.on_time_rate"]["numerator"], plans["tasks.on_time_rate"]["denominator"]) == (3, 4)
        assert plans["reports.on_time_rate"]["value"] == 0.5

        par = body["par"]
        nodes = {}

        def walk(items):
            for n in items:
                nodes[n["id"]] = n
                walk(n["children"])

        walk(par["areas"])
        assert (nodes["1.1"]["score"], nodes["1.1"]["basis"]) == (0, "zeroed")
        assert (nodes["1.2"]["score"], nodes["1.2"]["basis"]) == (3.0, "computed")  # 4 x 0.75
        assert nodes["1.3"]["score"] == 1.5  # 3 x 0.5
        assert nodes["8.1"]["score"] == 9.6  # 10 x 0.96
        assert nodes["3.2.1"]["score"] is None  # no dossiers in 2024 for this commune: N/A, not 0
        assert "empty_denominator" in nodes["3.2.1"]["detail"] or "nothing" in nodes["3.2.1"]["detail"]
        assert par["total"] is None
        assert par["classification"] is None
        assert par["rank"] is None
        assert par["points_available"] == pytest.approx(61 + 3 + 1.5 + 9.6)  # appraised 64 - zeroed 3, plus computed

        table = (
            await api.get(
                "/provinces/51/communes", params={"indicator": "sipas.index", "period": "year", "start": "2024-05-01"}
            )
        ).json()
        ours = next(r for r in table["rows"] if r["unitcode"] == unit)
        assert ours["value"] == 0.96
        series = (
            await api.get(
                f"/units/{unit}/series",
                params={"indicator": "tasks.on_time_rate", "period": "month", "from": "2024-02-01", "to": "2024-03-31"},
            )
        ).json()
        assert [p["value"] for p in series["points"]] == [None, 0.75]

        targets = {
            t["target_id"].split("-")[-1]: t for t in (await api.get(f"/units/{unit}/targets")).json()["targets"]
        }
        assert (targets["tasks"]["actual"], targets["tasks"]["met"], targets["tasks"]["final"]) == (75.0, True, True)
        assert (targets["sipas"]["actual"], targets["sipas"]["met"]) == (96.0, True)
        assert targets["esign"]["actual"] is None
        assert targets["esign"]["na_reason"] == "not_computed"
        assert "manual statistic" in targets["esign"]["detail"]
        assert targets["odd"]["na_reason"] == "not_applicable"
        assert (await api.get("/provinces/51/papi")).status_code == 200
