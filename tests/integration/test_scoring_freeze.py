"""Year-to-date, reporting periods and freezing on the real PostgreSQL: a range's values equal the calendar
counters where they coincide; a frozen period keeps its values; a late event shows as a correction beside them."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta, timezone

import httpx
import pytest
import pytest_asyncio
from fastapi import FastAPI

from contracts.dossiers import (
    TimelinessClass,
)
from eventkit.pg import apply_migrations
from eventkit.projection import ConsumedEvent
from services.scoring.configs import DEFAULT_VERSION, load_configs
from services.scoring.domain.periods import PeriodKind
from services.scoring.period_api import period_router
from services.scoring.projections import DossierIndicatorsProjection
from services.scoring.ranges import (
    FREEZE_MIGRATIONS,
    FREEZE_MIGRATIONS_NAME,
    AlreadyFrozenError,
    compute_range,
    freeze,
    freeze_units,
    load_schemes,
    read_frozen,
    resolve_range,
)
from services.scoring.readmodel import counters, scope_of
from tests.integration.scoring_events import consumed as _consumed
from tests.integration.scoring_events import received, resolved, scoring_pool

pytestmark = pytest.mark.integration
VN = timezone(timedelta(hours=7))
CONFIGS = load_configs()
CFG = CONFIGS[DEFAULT_VERSION]
SCHEMES = load_schemes()


@pytest_asyncio.fixture
async def pool(fresh_database: str):
    async for opened in scoring_pool(fresh_database):
        yield opened


def consumed(payload, unit: str = "00004") -> ConsumedEvent:
    return _consumed(payload, unit, time=datetime(2024, 3, 2, tzinfo=UTC))


async def apply(pool, events: list[ConsumedEvent]) -> None:
    projection = DossierIndicatorsProjection(lambda _code: None)
    async with pool.acquire() as conn, conn.transaction():
        await projection.apply(conn, events)


DEC20 = datetime(2023, 12, 20, 9, tzinfo=VN)  # default-15th Q1 2024 (15/12/2023-14/3/2024), not 2024's ytd
JAN10 = datetime(2024, 1, 10, 9, tzinfo=VN)
MAR14_LATE = datetime(2024, 3, 14, 23, 30, tzinfo=VN)  # the last minutes of Q1's data range (UTC+7)
MAR15 = datetime(2024, 3, 15, 0, 10, tzinfo=VN)  # Q2
AFTER_Q1 = datetime(2024, 4, 1, 8, tzinfo=VN)


async def seed(pool) -> None:
    await apply(
        pool,
        [
            consumed(received("D1", DEC20)),
            consumed(received("D2", JAN10)),
            consumed(received("D3", MAR14_LATE)),
            consumed(received("D4", MAR15)),
            consumed(resolved("D2", JAN10, JAN10 + timedelta(days=1), TimelinessClass.EARLY)),
            consumed(resolved("D1", DEC20, DEC20 + timedelta(days=10), TimelinessClass.LATE)),
        ],
    )


async def test_ranges_count_by_event_day_and_agree_with_the_calendar_counters(pool) -> None:
    await seed(pool)
    q1 = resolve_range("report", date(2024, 1, 10), SCHEMES, "default-15th", "q1")
    result = await compute_range(pool, "00004", q1, CFG, AFTER_Q1)
    assert result.values["r06.received"].value == 3  # D1, D2, D3; D4 is Q2's
    assert result.values["r06.resolved_early"].value == 1
    assert result.values["r06.resolved_late"].value == 1
    # D2 on time + D3 still open within time at the cut-off 15/03 00:00; D1 late; D4 not received by then
    assert (result.values["d766.2_1"].numerator, result.values["d766.2_1"].denominator) == (2, 3)
    ytd = await compute_range(pool, "00004", resolve_range("ytd", date(2024, 3, 14), SCHEMES), CFG, AFTER_Q1)
    assert ytd.values["r06.received"].value == 2  # D2, D3
    jan = resolve_range("month", date(2024, 1, 20), SCHEMES)
    month = await compute_range(pool, "00004", jan, CFG, AFTER_Q1)
    stored = (await counters(pool, scope_of("00004"), PeriodKind.MONTH, [date(2024, 1, 1)]))[
        ("00004", date(2024, 1, 1))
    ]
    assert month.values["r06.received"].value == stored["r06.received"] == 1
    province = await compute_range(pool, "01", q1, CFG, AFTER_Q1)
    assert province.values["r06.received"].value == 3


async def test_freeze_then_a_late_event_is_served_as_a_correction(pool, fresh_database: str) -> None:
    await apply_migrations(pool, FREEZE_MIGRATIONS_NAME, FREEZE_MIGRATIONS)
    await seed(pool)
    q1 = resolve_range("report", date(2024, 1, 10), SCHEMES, "default-15th", "q1")
    with pytest.raises(ValueError, match="frozen at its cut-off"):
        await freeze(pool, "00004", q1, CFG, datetime(2024, 3, 14, 12, tzinfo=VN))
    frozen = await freeze(pool, "00004", q1, CFG, AFTER_Q1)
    assert frozen.indicators["r06.received"][2] == 3
    with pytest.raises(AlreadyFrozenError):
        await freeze(pool, "00004", q1, CFG, AFTER_Q1 + timedelta(days=1))

    # a dossier of February arrives after the freeze (late event for a frozen period)
    await apply(pool, [consumed(received("D-late", datetime(2024, 2, 1, 10, tzinfo=VN)))])
    stored = await read_frozen(pool, "00004", q1.label, CFG.version)
    assert stored is not None
    assert stored.indicators["r06.received"][2] == 3  # the frozen value did not move

    app = FastAPI()
    app.include_router(period_router(pool, CONFIGS, DEFAULT_VERSION, now=lambda: AFTER_Q1 + timedelta(days=2)))
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://test") as client:
        body = (
            await client.get(
                "/units/00004/period-indicators",
                params={"period": "report", "scheme": "default-15th", "report": "q1", "start": "2024-01-10"},
            )
        ).json()
        assert body["period"] == "report:default-15th:q1:2024"
        assert (body["first_day"], body["last_day"]) == ("2023-12-15", "2024-03-14")
        assert body["frozen_at"] is not None
        values = {v["key"]: v for v in body["values"]}
        count = values["r06.received"]
        assert (count["frozen_value"], count["value"], count["correction"], count["corrected"]) == (
            3,
            4,
            1,
            True,
        )
        assert values["r06.withdrawn"]["corrected"] is False
        assert body["corrections"] >= 1
        # a period never frozen: live values only
        ytd = (
            await client.get("/units/00004/period-indicators", params={"period": "ytd", "start": "2024-03-14"})
        ).json()
        assert ytd["frozen_at"] is None
        assert {v["key"]: v for v in ytd["values"]}["r06.received"]["value"] == 3  # D2, D3, D-late
        bad = await client.get(
            "/units/00004/period-indicators", params={"period": "report", "scheme": "nope", "start": "2024-01-10"}
        )
        assert bad.status_code == 422
        schemes = (await client.get("/report-schemes")).json()
        assert {s["scheme"] for s in schemes} == {"default-15th", "qng-ba-nam-2024"}

    # the CLI path: a province and its units, a second run leaves them as they were
    done, skipped = await freeze_units(
        fresh_database,
        "scoring",
        unit=None,
        province="01",
        period="ytd",
        start=date(2024, 3, 14),
        scheme=None,
        report=None,
        config_dir=None,
        config=DEFAULT_VERSION,
        now=AFTER_Q1,
    )
    assert (done, skipped) == (["01", "00004"], [])
    done, skipped = await freeze_units(
        fresh_database,
        "scoring",
        unit="00004",
        province=None,
        period="ytd",
        start=date(2024, 3, 14),
        scheme=None,
        report=None,
        config_dir=None,
        config=DEFAULT_VERSION,
        now=AFTER_Q1,
    )
    assert (done, skipped) == ([], ["00004"])
    province = await read_frozen(pool, "01", "ytd:2024-03-14", CFG.version)
    assert province is not None
    assert province.indicators["r06.received"][2] == 3
