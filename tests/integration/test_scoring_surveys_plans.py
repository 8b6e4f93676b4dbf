"""The survey and plans projections and the PAPI store on the real PostgreSQL: a response delivered twice
counts once, out-of-order task facts converge, the latest appraisal wins, and a PAPI import is idempotent."""

from __future__ import annotations

import uuid
from datetime import UTC, date, datetime, timedelta, timezone
from pathlib import Path

import asyncpg
import pytest
import pytest_asyncio
from aiokafka.structs import ConsumerRecord

from contracts.envelope import make_envelope
from contracts.plans import CriterionAppraised, CriterionZeroed, TaskAssigned, TaskCompleted, ZeroingReason
from contracts.registry import default_registry
from contracts.surveys import Answer, RespondentProfile, SurveyChannel, SurveyResponseSubmitted
from contracts.wire import encode, read_headers
from eventkit import projection as plumbing
from eventkit.pg import apply_migrations, create_pool
from eventkit.projection import ConsumedEvent
from services.scoring.configs import load_aggregators
from services.scoring.domain.papi import validate_rows
from services.scoring.domain.periods import PeriodKind
from services.scoring.domain.surveys import aggregate
from services.scoring.papi import MIGRATIONS, MIGRATIONS_NAME, read_papi, read_rows, store
from services.scoring.projections_plans import PlansIndicatorsProjection
from services.scoring.projections_surveys import SurveyIndicatorsProjection
from services.scoring.readmodel import par_assessments, plan_counts, scope_of, survey_counters, window

pytestmark = pytest.mark.integration
VN = timezone(timedelta(hours=7))
REGISTRY = default_registry()
_offsets = iter(range(10**9))
KNOWN_ANSWERS = Path(__file__).resolve().parents[2] / "examples" / "papi" / "papi-known-answers.csv"


@pytest_asyncio.fixture
async def pool(fresh_database: str):
    pool = await create_pool(fresh_database, "scoring", min_size=1, max_size=4)
    await apply_migrations(pool, "eventkit.projection", plumbing.MIGRATIONS)
    for p in (SurveyIndicatorsProjection, PlansIndicatorsProjection):
        await apply_migrations(pool, p.name, p.migrations)
    await apply_migrations(pool, MIGRATIONS_NAME, MIGRATIONS)
    try:
        yield pool
    finally:
        await pool.close()


def consumed(payload, subject: str, topic: str, unit: str = "21001", province: str = "51") -> ConsumedEvent:
    envelope = make_envelope(
        payload,
        id=uuid.uuid4(),
        source="urn:test",
        subject=subject,
        time=datetime(2026, 3, 2, tzinfo=UTC),
        unitcode=unit,
        provincecode=province,
    )
    key, value, headers = encode(envelope)
    record = ConsumerRecord(topic, 0, next(_offsets), 0, 0, key, value, None, len(key), len(value), headers)
    return ConsumedEvent(record, read_headers(headers), REGISTRY)


def response(rid: str, access: int, at: datetime) -> ConsumedEvent:
    payload = SurveyResponseSubmitted(
        response_id=rid,
        survey_id="s",
        instrument_id="sipas-service",
        instrument_version="QĐ2640-2017",
        channel=SurveyChannel.QR,
        respondent=RespondentProfile(type="citizen", age_band="30-39", sex="female"),
        answers=(
            Answer(item_id="access.satisfaction", value=access),
            Answer(item_id="expectations", value=("staff_attitude",)),
        ),
        submitted_at=at,
    )
    return consumed(payload, f"response:{rid}", "vn.cchc.surveys.events")


async def apply(pool: asyncpg.Pool, projection, events) -> None:
    async with pool.acquire() as conn, conn.transaction():
        await projection.apply(conn, events)


async def test_responses_count_once_by_response_id(pool) -> None:
    march = datetime(2026, 3, 31, 23, 30, tzinfo=VN)  # late evening UTC+7: still March
    batch = [response(f"R{i}", 5 if i < 3 else 2, march) for i in range(4)]
    await apply(pool, SurveyIndicatorsProjection(), [*batch, response("R0", 5, march)])  # R0 twice in a batch
    await apply(pool, SurveyIndicatorsProjection(), [response("R1", 5, march)])  # and again later
    got = await survey_counters(pool, scope_of("21001"), PeriodKind.MONTH, [date(2026, 3, 1)])
    counters = got[("21001", date(2026, 3, 1))][("sipas-service", "QĐ2640-2017")]
    assert counters["responses"] == 4
    assert counters["item:access.satisfaction=5"] == 3
    values = {v.key: v for v in aggregate(load_aggregators()[("sipas-service", "QĐ2640-2017")], counters)}
    assert (values["sipas.access.satisfaction"].numerator, values["sipas.access.satisfaction"].n) == (3, 4)
    assert values["sipas.expectation.staff_attitude"].value == 1.0
    province = await survey_counters(pool, scope_of("51"), PeriodKind.YEAR, [date(2026, 1, 1)], by_unit=True)
    assert province[("21001", date(2026, 1, 1))][("sipas-service", "QĐ2640-2017")]["responses"] == 4
    assert await survey_counters(pool, scope_of("001"), PeriodKind.MONTH, [date(2026, 3, 1)]) == {}


async def test_tasks_converge_and_the_latest_appraisal_wins(pool) -> None:
    topic = "vn.cchc.plans.events"
    done = TaskCompleted(
        task_id="T1",
        plan_id="P",
        done_at=datetime(2026, 3, 5, tzinfo=VN),
        due_date=date(2026, 3, 10),
        on_time=True,
        working_days_late=0,
    )
    assigned = [
        TaskAssigned(task_id=f"T{i}", plan_id="P", title="t", assignee_role="VP", due_date=date(2026, 3, 10))
        for i in range(1, 4)
    ]
    late = TaskCompleted(
        task_id="T2",
        plan_id="P",
        done_at=datetime(2026, 3, 20, tzinfo=VN),
        due_date=date(2026, 3, 10),
        on_time=False,
        working_days_late=6,
    )
    # the completion of T1 arrives before its assignment, in an earlier batch
    await apply(pool, PlansIndicatorsProjection(), [consumed(done, "task:T1", topic)])
    await apply(
        pool,
        PlansIndicatorsProjection(),
        [consumed(a, f"task:{a.task_id}", topic) for a in assigned] + [consumed(late, "task:T2", topic)],
    )
    w = window(PeriodKind.MONTH, date(2026, 3, 1), datetime(2026, 6, 1, tzinfo=VN))
    counts = (await plan_counts(pool, scope_of("21001"), [w]))[("21001", date(2026, 3, 1))]
    assert (counts["tasks.due"], counts["tasks.done"], counts["tasks.on_time"]) == (3, 2, 1)
    early = window(PeriodKind.MONTH, date(2026, 3, 1), datetime(2026, 3, 8, tzinfo=VN))  # before the due date
    counts = (await plan_counts(pool, scope_of("21001"), [early]))[("21001", date(2026, 3, 1))]
    assert counts["tasks.due"] == 1  # only the task already done counts before its deadline

    zeroed = CriterionZeroed(
        criteria_set_id="QĐ 673/QĐ-UBND",
        criterion_id="1.1",
        year=2024,
        max_score=3,
        reason=ZeroingReason.MISSING_EVIDENCE,
        appraiser="Sở",
        zeroed_at=datetime(2025, 2, 1, tzinfo=VN),
    )
    earlier = CriterionAppraised(
        criteria_set_id="QĐ 673/QĐ-UBND",
        criterion_id="1.1",
        year=2024,
        score=3,
        max_score=3,
        appraiser="Phòng",
        appraised_at=datetime(2025, 1, 1, tzinfo=VN),
    )
    await apply(pool, PlansIndicatorsProjection(), [consumed(zeroed, "par:1.1", topic)])
    await apply(pool, PlansIndicatorsProjection(), [consumed(earlier, "par:1.1", topic)])  # older: ignored
    got = (await par_assessments(pool, scope_of("21001"), "QĐ 673/QĐ-UBND", 2024))["21001"]["1.1"]
    assert (got.appraised_score, got.zeroed_reason) == (0, "missing_evidence")


async def test_papi_import_is_idempotent(pool) -> None:
    rows, rejected = validate_rows(read_rows(KNOWN_ANSWERS))
    assert rejected == []
    await store(pool, rows)
    await store(pool, rows)
    assert await pool.fetchval("SELECT count(*) FROM papi_scores") == len(rows)
    hanoi = await read_papi(pool, "01", 2023)
    assert [(r["sub_dimension"], r["score"]) for r in hanoi] == [
        ("", 7.8486),
        ("6.1", 1.7029),
        ("6.2", 1.957),
        ("6.3", 2.2548),
        ("6.4", 1.9339),
    ]
