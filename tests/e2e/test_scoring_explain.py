"""Explain behind the task-, report- and survey-based indicators, the PAR evidence CSV, and ``indicator
updated`` values for them: survey and plans events published on the real broker, projected and published by
the scoring service, read through its API and its subscriptions table."""

from __future__ import annotations

import asyncio
import csv
import io
import uuid
from datetime import date, datetime, timedelta, timezone

import asyncpg
import httpx

from contracts.plans import CriterionAppraised, EvidenceRef
from tests.e2e.test_scoring_surveys_plans import SET, _events, _publish, _record, scoring
from tests.e2e.units import pick_communes

__all__ = ["scoring"]  # the service fixture, shared with the surveys/plans e2e test
VN = timezone(timedelta(hours=7))


async def _wait(api: httpx.AsyncClient, unit: str) -> None:
    for _ in range(120):
        body = (await api.get(f"/units/{unit}/indicators", params={"period": "year", "start": "2024-01-01"})).json()
        plans = {p["key"]: p for p in body.get("plans", [])}
        blocks = {b["instrument_id"] for b in body.get("surveys", [])}
        par = body.get("par") or {}
        if (
            plans.get("reports.on_time_rate", {}).get("denominator") == 2
            and len(blocks) == 2
            and par.get("points_available", 0) >= 59
        ):
            return
        await asyncio.sleep(0.5)
    raise AssertionError("the scoring service did not project the events in time")


async def test_explain_tasks_reports_responses_and_the_par_evidence_csv(scoring, kafka_bootstrap, fresh_database):
    _, (unit,) = pick_communes(province="51")
    run = uuid.uuid4().hex[:8]
    records = _events(unit, run)
    doc = EvidenceRef(
        document_number="12/BC-UBND", document_date=date(2025, 1, 15), description="báo cáo kết quả CCHC 2024"
    )
    later = datetime(2025, 2, 2, tzinfo=VN)  # replaces the appraisal of 2.1 made the day before
    records.append(
        _record(
            CriterionAppraised(
                criteria_set_id=SET,
                criterion_id="2.1",
                year=2024,
                score=3,
                max_score=4,
                appraiser="Sở Nội vụ",
                evidence=(doc,),
                appraised_at=later,
            ),
            "par:2.1",
            unit,
        )
    )
    await asyncio.to_thread(_publish, kafka_bootstrap, records)
    async with httpx.AsyncClient(base_url=scoring, timeout=20) as api:
        await _wait(api, unit)
        month = {"period": "month", "start": "2024-03-01"}

        def ids(body: dict) -> list[str]:
            return [t["id"] for t in body["tasks"]]

        num = (await api.get(f"/units/{unit}/explain", params={**month, "indicator": "tasks.on_time_rate"})).json()
        den = (
            await api.get(
                f"/units/{unit}/explain",
                params={**month, "indicator": "tasks.on_time_rate", "part": "denominator", "size": 3},
            )
        ).json()
        assert (num["total"], den["total"]) == (3, 4)
        assert ids(num) == [f"{run}-T{i}" for i in range(3)]
        assert len(ids(den)) == 3  # paged
        page2 = (
            await api.get(
                f"/units/{unit}/explain",
                params={**month, "indicator": "tasks.on_time_rate", "part": "denominator", "size": 3, "page": 2},
            )
        ).json()
        assert ids(den) + ids(page2) == [f"{run}-T{i}" for i in range(4)]
        assert page2["tasks"][0]["done_at"] is None  # the one not done
        reports = (
            await api.get(f"/units/{unit}/explain", params={**month, "indicator": "reports.on_time_rate"})
        ).json()
        assert [(t["id"], t["kind"], t["on_time"]) for t in reports["tasks"]] == [(f"{run}-B0", "report", True)]

        sipas = (
            await api.get(
                f"/units/{unit}/explain",
                params={"period": "year", "start": "2024-01-01", "indicator": "sipas.index", "part": "denominator"},
            )
        ).json()
        assert sipas["total"] == 5
        assert sorted(r["response_id"] for r in sipas["responses"]) == [f"{run}-R{i}" for i in range(5)]
        assert {r["instrument_id"] for r in sipas["responses"]} == {"sipas-service"}  # not the citizen survey
        assert sipas["dossiers"] == []
        dossier_side = await api.get(
            f"/units/{unit}/explain", params={**month, "indicator": "r06.on_time_rate", "part": "denominator"}
        )
        assert dossier_side.status_code == 200  # the dossier explain still answers
        assert dossier_side.json()["tasks"] == []

        response = await api.get(f"/units/{unit}/par/evidence.csv", params={"year": 2024})
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("text/csv")
        rows = {r["criterion"]: r for r in csv.DictReader(io.StringIO(response.text))}
        assert (rows["1.1"]["source"], rows["1.1"]["score"]) == ("zeroed", "0.0")
        assert (rows["2.1"]["source"], rows["2.1"]["score"]) == ("appraisal", "3.0")
        assert "12/BC-UBND" in rows["2.1"]["evidence"]
        assert rows["1.2"]["source"] == "metric"
        assert (rows["1.2"]["metric"], rows["1.2"]["numerator"], rows["1.2"]["denominator"]) == (
            "tasks_on_time_rate",
            "3.0",
            "4.0",
        )
        assert rows["3.2.1"]["source"] == "n/a"
        assert rows["3.2.1"]["score"] == ""
        assert (await api.get(f"/units/{unit}/par/evidence.csv", params={"year": 2019})).status_code == 404

    # the survey and plans indicators are published to subscribers too
    conn = await asyncpg.connect(fresh_database, server_settings={"search_path": "scoring"})
    try:
        published: dict[tuple[str, str], float | None] = {}
        for _ in range(60):
            rows_ = await conn.fetch(
                "SELECT period_kind, indicator_key, value FROM scoring_published WHERE unitcode = $1", unit
            )
            published = {(r["period_kind"], r["indicator_key"]): r["value"] for r in rows_}
            if ("month", "tasks.on_time_rate") in published and ("year", "sipas.index") in published:
                break
            await asyncio.sleep(0.5)
    finally:
        await conn.close()
    assert published[("month", "tasks.on_time_rate")] == 0.75
    assert published[("year", "reports.on_time_rate")] == 0.5
    assert published[("year", "sipas.index")] == 0.96
    # the PAR Index of the year is N/A here (criteria still missing): an uncomputed value is never published
    assert ("year", "par.total") not in published
