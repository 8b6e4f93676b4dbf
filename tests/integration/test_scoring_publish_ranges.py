"""Publishing year-to-date and reporting-period indicators on the real PostgreSQL: the calendar round marks the
ranges of the months it handled, the range round appends ``indicator updated`` events to the service's event
store (what the relay publishes) whose values equal the period API's for the same range, coalesced (one per
unit, range and indicator), and only when a value changed; group 5 is published with the calendar periods."""

from __future__ import annotations

import asyncio
from datetime import date, datetime, timedelta, timezone

import pytest
import pytest_asyncio

from contracts.dossiers import (
    ApologyAssessed,
    DossierRated,
    DossierRefused,
    Rating,
    RatingChannel,
    TimelinessClass,
)
from contracts.registry import default_registry
from eventkit.postgres import PostgresEventStore
from services.scoring.configs import DEFAULT_VERSION, load_configs
from services.scoring.projections import DossierIndicatorsProjection
from services.scoring.projections_feedback import FeedbackProjection
from services.scoring.ranges import compute_range, flatten, load_schemes, resolve_range
from services.scoring.subscriptions import (
    IndicatorPublisher,
    dossier_change_hook,
    unit_days_hook,
)
from tests.integration.scoring_events import consumed, received, resolved, scoring_pool

pytestmark = pytest.mark.integration
VN = timezone(timedelta(hours=7))
NOW = datetime(2026, 3, 20, 12, tzinfo=VN)
CONFIG = load_configs()[DEFAULT_VERSION]


@pytest_asyncio.fixture
async def pool(fresh_database: str):
    async for opened in scoring_pool(fresh_database, whole_service=True):
        yield opened


def refused(dossier_id: str, at: datetime) -> DossierRefused:
    return DossierRefused(dossier_id=dossier_id, agency_code="A", refused_at=at, reason="thiếu giấy tờ")


def apology(dossier_id: str, due: datetime) -> ApologyAssessed:
    return ApologyAssessed(
        dossier_id=dossier_id,
        agency_code="A",
        original_due_at=due,
        apologies_issued=1,
        issued=True,
        before_original_due=True,
        at_least_one_working_day_before=True,
        single_reschedule=True,
        result_by_rescheduled_due=False,
        assessed_at=due,
        ruleset_version="t",
    )


async def apply(pool, projection, events) -> None:
    async with pool.acquire() as conn, conn.transaction():
        await projection.apply(conn, events)


async def published(pool, after: int) -> tuple[list[dict], int]:
    store = PostgresEventStore(pool, default_registry())
    events = await store.read_all(limit=100_000)
    out = []
    for e in events:
        if e.position <= after:
            continue
        data = e.envelope.data
        out.append(
            {
                "unit": e.envelope.unitcode,
                "kind": data.period_kind.value,  # type: ignore[attr-defined]
                "start": data.period_start,  # type: ignore[attr-defined]
                "end": data.period_end,  # type: ignore[attr-defined]
                "key": data.indicator_key,  # type: ignore[attr-defined]
                "value": data.value,  # type: ignore[attr-defined]
                "na": data.na_reason.value if data.na_reason else None,  # type: ignore[attr-defined]
            }
        )
    return out, max((e.position for e in events), default=after)


def _expected_ranges() -> dict[tuple[str, date, date], object]:
    """The year to date and the reports of the default scheme the test's days fall in, by (kind, first, last)."""
    schemes = load_schemes()
    return {
        ("ytd", date(2026, 1, 1), date(2026, 3, 20)): resolve_range("ytd", date(2026, 3, 20), schemes),
        ("reporting", date(2025, 12, 15), date(2026, 3, 14)): resolve_range(
            "report", date(2026, 1, 10), schemes, "default-15th", "q1"
        ),
        ("reporting", date(2026, 3, 15), date(2026, 6, 14)): resolve_range(
            "report", date(2026, 4, 10), schemes, "default-15th", "q2"
        ),
        ("reporting", date(2025, 12, 15), date(2026, 12, 14)): resolve_range(
            "report", date(2026, 4, 10), schemes, "default-15th", "year"
        ),
        # OLD's receipt in November 2025 marks the 2025 reports containing it
        ("reporting", date(2025, 9, 15), date(2025, 12, 14)): resolve_range(
            "report", date(2025, 11, 3), schemes, "default-15th", "q4"
        ),
        ("reporting", date(2024, 12, 15), date(2025, 12, 14)): resolve_range(
            "report", date(2025, 11, 3), schemes, "default-15th", "year"
        ),
    }


async def _march(pool) -> DossierIndicatorsProjection:
    """The test's dossiers, PAKN rating and anchors, projected (every key they touch marked dirty)."""
    dossiers = DossierIndicatorsProjection(lambda _code: None, dossier_change_hook(lambda: NOW))
    feedback = FeedbackProjection(on_change=unit_days_hook())
    early, late = datetime(2026, 3, 5, 9, tzinfo=VN), datetime(2026, 3, 16, 9, tzinfo=VN)
    await apply(
        pool,
        dossiers,
        [
            consumed(received("D1", early), time=early),
            consumed(resolved("D1", early, early + timedelta(days=1), TimelinessClass.ON_TIME), time=early),
            consumed(received("D2", late), time=late),
            consumed(received("D3", late), time=late),
            # the anchors that are neither receipt nor resolution: a refusal at reception (14/3, Quý I) and an
            # open late dossier's apology, counted on its original due date (17/3, Quý II) — received in 2025
            consumed(refused("R1", datetime(2026, 3, 14, 15, tzinfo=VN)), time=late),
            consumed(received("OLD", datetime(2025, 11, 3, 9, tzinfo=VN)), time=late),
            consumed(apology("OLD", datetime(2026, 3, 17, 17, tzinfo=VN)), time=late),
        ],
    )
    rating = DossierRated(
        dossier_id="D1", agency_code="A", rated_at=late, rated_via=RatingChannel.KIOSK, rating=Rating.DISSATISFIED
    )
    await apply(pool, feedback, [consumed(rating, time=late)])
    return dossiers


async def test_ytd_and_reporting_periods_are_published_like_the_period_api(pool) -> None:
    dossiers = await _march(pool)
    store = PostgresEventStore(pool, default_registry())
    publisher = IndicatorPublisher(
        pool=pool, store=store, ruleset_version=DEFAULT_VERSION, clock=lambda: NOW, schemes=load_schemes()
    )
    assert await publisher.publish_round() > 0
    calendar, position = await published(pool, 0)
    month = {(x["unit"], x["key"]): x["value"] for x in calendar if x["kind"] == "month"}
    assert month[("00004", "r06.received")] == 3
    assert month[("00004", "d766.5_4")] is not None  # group 5 goes out with the calendar periods
    assert not [x for x in calendar if x["kind"] in {"ytd", "reporting"}]  # ranges wait for their own round

    assert await publisher.publish_range_round() > 0
    ranged, position = await published(pool, position)
    by_range: dict[tuple[str, str, date, date], dict[str, object]] = {}
    for x in ranged:
        by_range.setdefault((x["unit"], x["kind"], x["start"], x["end"]), {})[x["key"]] = x["value"]
    assert len(ranged) == sum(len(v) for v in by_range.values())  # one event per (unit, range, indicator)
    expected_ranges = _expected_ranges()
    for unit in ("00004", "01"):
        assert {k[1:] for k in by_range if k[0] == unit} == set(expected_ranges)
        for (kind, first, last), r in expected_ranges.items():
            api = flatten(await compute_range(pool, unit, r, CONFIG, NOW))
            got = by_range[(unit, kind, first, last)]
            for key, value in got.items():
                assert api[key][2] == value, (unit, kind, first, key)
            if kind == "ytd":
                assert got["r06.received"] == 3
    q1 = by_range[("00004", "reporting", date(2025, 12, 15), date(2026, 3, 14))]
    q2 = by_range[("00004", "reporting", date(2026, 3, 15), date(2026, 6, 14))]
    assert (q1["r06.received"], q2["r06.received"]) == (1, 2)  # 5/3 in Quý I, 16/3 in Quý II
    assert (q1["r06.refused"], q2["r06.refused"]) == (1, 0)
    assert q2["apology.rate"] == 1.0  # the open late dossier received in 2025, by its due date in Quý II
    assert q2["d766.5_4"] is not None

    # nothing dirty: nothing published; one more receipt on 18/3 republishes only what moved
    assert await publisher.publish_range_round() == -1
    day = datetime(2026, 3, 18, 9, tzinfo=VN)
    await apply(pool, dossiers, [consumed(received("D4", day), time=day)])
    await publisher.publish_round()
    await publisher.publish_range_round()
    again, _ = await published(pool, position)
    moved = {(x["unit"], x["kind"], x["start"], x["end"], x["key"]): x["value"] for x in again if x["kind"] != "month"}
    assert moved[("00004", "ytd", date(2026, 1, 1), date(2026, 3, 20), "r06.received")] == 4
    assert moved[("00004", "reporting", date(2026, 3, 15), date(2026, 6, 14), "r06.received")] == 3
    assert not [k for k in moved if k[2] == date(2025, 12, 15) and k[3] == date(2026, 3, 14)]  # Quý I unchanged
    assert ("00004", "ytd", date(2026, 1, 1), date(2026, 3, 20), "r06.refused") not in moved  # unchanged: not sent


async def test_the_running_publisher_drains_calendar_and_range_backlogs_larger_than_a_round(pool) -> None:
    """``run``: one round at a time (here two keys a round), each followed by its pause; a backlog goes on
    without waiting for the interval, and range rounds go on while their backlog lasts."""
    await _march(pool)
    store = PostgresEventStore(pool, default_registry())
    publisher = IndicatorPublisher(
        pool=pool,
        store=store,
        ruleset_version=DEFAULT_VERSION,
        clock=lambda: NOW,
        schemes=load_schemes(),
        interval_s=0.01,
        range_interval_s=0.01,
        max_keys=2,
        max_share=0.5,
    )
    stop = asyncio.Event()
    running = asyncio.create_task(publisher.run(stop))
    for _ in range(600):
        await asyncio.sleep(0.05)
        left = await pool.fetchval(
            "SELECT (SELECT count(*) FROM scoring_dirty) + (SELECT count(*) FROM scoring_dirty_ranges)"
        )
        if left == 0 and await pool.fetchval("SELECT count(*) FROM scoring_published WHERE period_kind = 'ytd'"):
            break
    stop.set()
    await running
    assert left == 0
    events, _ = await published(pool, 0)
    keys = [(x["unit"], x["kind"], x["start"], x["end"], x["key"]) for x in events]
    assert len(keys) == len(set(keys))  # nothing published twice: one event per (unit, period, indicator)
    for unit in ("00004", "01"):
        ranges = {(x["kind"], x["start"], x["end"]) for x in events if x["unit"] == unit and x["kind"] != "month"}
        ranges = {r for r in ranges if r[0] in {"ytd", "reporting"}}
        assert ranges == set(_expected_ranges())  # 6 ranges per unit: several range rounds of 2 keys
    month = {(x["unit"], x["key"]): x["value"] for x in events if x["kind"] == "month"}
    assert month[("00004", "r06.received")] == 3
