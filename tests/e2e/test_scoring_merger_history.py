"""The 2025 merger end to end (issue 5 §3): facts of March 2024 sent with the pre-2025 codes of three communes
that merged into one current ward (Phúc Xá 00001 of district 001, Phúc Tân 00037 and Chương Dương 00067 of
district 002 -> 00097, Hà Nội), published by librdkafka on the dossiers inbound topic, are reported by the
scoring service under the current ward, its province and each pre-2025 district, in the unit endpoint, the
province table and the series — dossiers and PAKN (766 group 5) alike. No name is involved: every input of the
system carries codes, and the dossiers service maps a pre-2025 code to its successor by the fact's date."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from datetime import datetime, timedelta, timezone

import httpx
import pytest
import pytest_asyncio

from contracts.base import EventPayload
from contracts.dossiers import (
    Channel,
    DossierComponent,
    DossierReceived,
    FeedbackCategory,
    FeedbackForwarder,
    FeedbackReceived,
    StatutoryTime,
    TimeUnit,
)
from eventkit.worktime import WorkingCalendar
from tests.e2e.serving import dossiers_and_scoring
from tests.e2e.test_scoring_feedback import _record as record
from tests.e2e.test_scoring_month import _publish

pytestmark = pytest.mark.e2e
VN = timezone(timedelta(hours=7))
MARCH_2024 = {"period": "month", "start": "2024-03-01"}
LEGACY = {"00001": "001", "00037": "002", "00067": "002"}  # pre-2025 ward -> its pre-2025 district
CURRENT = "00097"


@pytest_asyncio.fixture
async def services(fresh_database: str, kafka_bootstrap: str) -> AsyncIterator[dict[str, str]]:
    async with dossiers_and_scoring(
        fresh_database, kafka_bootstrap, pseudonym_secret="e2e-merger-key-0123456789"
    ) as urls:
        yield urls


def _facts(run: str) -> list[tuple[bytes, bytes, list[tuple[str, bytes]]]]:
    calendar = WorkingCalendar.load()
    out = []
    for n, legacy in enumerate(LEGACY, start=1):
        at = datetime(2024, 3, 4 + n, 9, tzinfo=VN)
        received: EventPayload = DossierReceived(
            dossier_id=f"MERGER-{legacy}-{run}",
            agency_code="000.00.01.H26",
            channel=Channel.DIRECT,
            ma_tthc="1.001193",
            procedure_version="v",
            applicant_type="individual",
            applicant_ref="c" * 64,
            received_at=at,
            due_at=calendar.due_at(at, 3, "working_days"),
            statutory_time=StatutoryTime(value=3, unit=TimeUnit.WORKING_DAYS),
            components=(
                DossierComponent(
                    component_code="TP1", digitized=True, reused_from_store=False, reused_digital_data=False
                ),
            ),
        )
        out.append(record(received, f"dossier:MERGER-{legacy}-{run}", at, legacy, "01"))
    pakn = FeedbackReceived(
        feedback_id=f"MERGER-P-{run}",
        agency_code="000.00.01.H26",
        category=FeedbackCategory.REGULATION,
        forwarded_by=FeedbackForwarder.DIRECT,
        received_at=datetime(2024, 3, 11, 9, tzinfo=VN),
    )
    out.append(record(pakn, f"feedback:MERGER-P-{run}", datetime(2024, 3, 11, 9, tzinfo=VN), "00037", "01"))
    return out


def _value(body: dict, key: str) -> float | None:
    for item in body["report06"]:
        if item["key"] == key:
            return item["value"]
    return next(i for g in body["d766"]["groups"] for i in g["indicators"] if i["key"] == key)["denominator"]


async def test_a_merged_wards_history_is_reported_under_its_current_unit(services, kafka_bootstrap) -> None:
    run = uuid.uuid4().hex[:8]
    await asyncio.to_thread(_publish, kafka_bootstrap, _facts(run))
    async with httpx.AsyncClient(base_url=services["scoring"], timeout=10) as api:

        async def received(unit: str) -> tuple[float | None, float | None]:
            body = (await api.get(f"/units/{unit}/indicators", params=MARCH_2024)).json()
            return _value(body, "r06.received"), _value(body, "d766.5_1")

        current: tuple[float | None, float | None] = (None, None)
        for _ in range(120):
            current = await received(CURRENT)
            if current == (3, 1):
                break
            await asyncio.sleep(0.5)
        assert current == (3, 1)  # the three pre-2025 wards' dossiers and the PAKN, under the current ward
        # each pre-2025 district keeps its own part (other runs may have added theirs: at least ours)
        d001, d002 = await received("001"), await received("002")
        assert (d001[0] or 0) >= 1
        assert (d002[0] or 0) >= 2
        assert (d002[1] or 0) >= 1
        province = await received("01")
        assert (province[0] or 0) >= 3
        table = (
            await api.get("/provinces/01/communes", params={**MARCH_2024, "indicator": "r06.received", "order": "desc"})
        ).json()
        assert next(r for r in table["rows"] if r["unitcode"] == CURRENT)["value"] == 3
        series = (
            await api.get(
                f"/units/{CURRENT}/series",
                params={"indicator": "d766.5_1", "period": "month", "from": "2024-02-01", "to": "2024-03-01"},
            )
        ).json()
        assert [p["denominator"] for p in series["points"]] == [0, 1]
