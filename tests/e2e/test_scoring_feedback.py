"""766 group 5 end to end: the commune month of test_scoring_month plus two PAKN and two citizen ratings,
published by librdkafka on the dossiers service's inbound topic (twice, as a retrying partner), accepted by the
dossiers service, projected by the scoring service's own feedback projection and served by its query API with
the values worked out by hand:

- P1 (regulation, about dossier #1) received Mon 09/03 09:00, published Tue 10/03 09:00: 1 working day, on time;
- P2 (official conduct) received Tue 10/03 09:00, refused Mon 16/03 09:00: 4 working days > 2, late;
- dossier #2 rated "dislike" on 12/03, dossier #3 "very satisfied".

5.1 = 1/2 (P1); 5.2 = 1/2 (P1 on time of P1, P2); 5.3 = 1/2 (P2 overdue); 5.4: the 29 dossiers of 2.1 (25 on
time or open within time, so 4 overdue), complaints on #1 (P1) and #2 (dislike) -> (29 - 4 - 2) / 29.
"""

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
    DossierRated,
    FeedbackCategory,
    FeedbackForwarder,
    FeedbackReceived,
    FeedbackState,
    FeedbackStateChanged,
    Rating,
    RatingChannel,
)
from tests.e2e.serving import dossiers_and_scoring
from tests.e2e.test_scoring_month import MARCH, _publish, _records
from tests.e2e.units import pick_communes

pytestmark = pytest.mark.e2e
VN = timezone(timedelta(hours=7))


@pytest_asyncio.fixture
async def services(fresh_database: str, kafka_bootstrap: str) -> AsyncIterator[dict[str, str]]:
    async with dossiers_and_scoring(
        fresh_database, kafka_bootstrap, pseudonym_secret="e2e-feedback-key-0123456789"
    ) as urls:
        yield urls


def _record(payload: EventPayload, subject: str, at: datetime, unit: str, province: str):
    headers = {
        "content-type": "application/json",
        "ce_specversion": "1.0",
        "ce_id": str(uuid.uuid4()),
        "ce_source": "//motcua.example",
        "ce_type": payload.event_type,
        "ce_subject": subject,
        "ce_time": at.isoformat(),
        "ce_dataschema": payload.schema_id(),
        "ce_schemaversion": str(payload.schema_version),
        "ce_unitcode": unit,
        "ce_provincecode": province,
        "ce_partitionkey": subject,
    }
    return subject.encode(), payload.model_dump_json().encode(), [(k, v.encode()) for k, v in headers.items()]


def _feedback(unit: str, province: str, run: str) -> list[tuple[bytes, bytes, list[tuple[str, bytes]]]]:
    def at(day: int) -> datetime:
        return datetime(2026, 3, day, 9, tzinfo=VN)

    dossier = [f"000.04.01.H26-{suffix}-{run}" for suffix in ("260302-0001", "260302-0002", "260303-0001")]
    p1, p2 = f"P1-{run}", f"P2-{run}"
    facts: list[tuple[EventPayload, str, datetime]] = [
        (
            FeedbackReceived(
                feedback_id=p1,
                agency_code="000.04.01.H26",
                category=FeedbackCategory.REGULATION,
                forwarded_by=FeedbackForwarder.DIRECT,
                received_at=at(9),
                dossier_id=dossier[0],
            ),
            f"feedback:{p1}",
            at(9),
        ),
        (
            FeedbackStateChanged(
                feedback_id=p1, agency_code="000.04.01.H26", state=FeedbackState.PUBLISHED, changed_at=at(10)
            ),
            f"feedback:{p1}",
            at(10),
        ),
        (
            FeedbackReceived(
                feedback_id=p2,
                agency_code="000.04.01.H26",
                category=FeedbackCategory.OFFICIAL_CONDUCT,
                forwarded_by=FeedbackForwarder.VPCP,
                received_at=at(10),
            ),
            f"feedback:{p2}",
            at(10),
        ),
        (
            FeedbackStateChanged(
                feedback_id=p2, agency_code="000.04.01.H26", state=FeedbackState.REJECTED, changed_at=at(16)
            ),
            f"feedback:{p2}",
            at(16),
        ),
    ]
    for dossier_id, rating in ((dossier[1], Rating.DISLIKE), (dossier[2], Rating.VERY_SATISFIED)):
        rated = DossierRated(
            dossier_id=dossier_id,
            agency_code="000.04.01.H26",
            rated_at=at(12),
            rated_via=RatingChannel.DVCQG,
            rating=rating,
        )
        facts.append((rated, f"dossier:{dossier_id}", at(12)))
    return [_record(payload, subject, when, unit, province) for payload, subject, when in facts]


async def test_group_5_is_scored_from_published_pakn_and_ratings(services, kafka_bootstrap) -> None:
    province, (unit,) = pick_communes()
    run = uuid.uuid4().hex[:8]
    records = _records(unit, province, run) + _feedback(unit, province, run)
    await asyncio.to_thread(_publish, kafka_bootstrap, records + records)

    group: dict[str, dict] = {}
    async with httpx.AsyncClient(base_url=services["scoring"], timeout=10) as api:
        for _ in range(120):
            response = await api.get(f"/units/{unit}/indicators", params=MARCH)
            assert response.status_code == 200, response.text
            body = response.json()
            group = {i["key"]: i for g in body["d766"]["groups"] if g["key"] == "mdhl" for i in g["indicators"]}
            d21 = next(i for g in body["d766"]["groups"] for i in g["indicators"] if i["key"] == "d766.2_1")
            if (
                d21["denominator"] == 29
                and group["d766.5_2"]["denominator"] == 2
                and group["d766.5_4"]["numerator"] == 23
            ):
                break
            await asyncio.sleep(0.5)
        explained = (
            await api.get(f"/units/{unit}/explain", params={**MARCH, "indicator": "d766.5_4", "part": "numerator"})
        ).json()
    parts = {k: (v["numerator"], v["denominator"], v["value"]) for k, v in group.items()}
    assert parts["d766.5_1"] == (1, 2, 0.5)
    assert parts["d766.5_2"] == (1, 2, 0.5)
    assert parts["d766.5_3"] == (1, 2, 0.5)
    assert parts["d766.5_4"] == (23, 29, round(23 / 29, 4))
    assert group["d766.5_2"]["points"] == 3.0  # 0.5 x 6 (no target)
    assert group["d766.5_4"]["points"] == round(23 / 29 * 6 / 0.9, 2)  # below the 90 % target
    assert sorted((f["kind"], f["id"]) for f in explained["feedback"]) == [
        ("pakn", f"P1-{run}"),
        ("rating", f"000.04.01.H26-260302-0002-{run}"),
    ]
