"""A PAKN that passes its deadline with no new event, on the real PostgreSQL: the feedback projection keeps its
next deadline, and when an injected clock moves past it the publisher's round republishes the 5.2 / 5.3 that
dropped (calendar periods, then year to date) once — not before the deadline, not again after it, and again
after a round that rolled back."""

from __future__ import annotations

from datetime import date, datetime, timedelta, timezone

import pytest
import pytest_asyncio

from contracts.dossiers import FeedbackCategory, FeedbackState
from contracts.registry import default_registry
from eventkit.postgres import PostgresEventStore
from services.scoring.configs import DEFAULT_VERSION
from services.scoring.projections_feedback import FeedbackProjection
from services.scoring.ranges import load_schemes
from services.scoring.subscriptions import IndicatorPublisher, unit_days_hook
from services.scoring.subscriptions_deadlines import take_due_deadlines
from tests.integration.scoring_events import scoring_pool
from tests.integration.test_scoring_feedback import apply, pakn, state
from tests.integration.test_scoring_publish_ranges import published

pytestmark = pytest.mark.integration
VN = timezone(timedelta(hours=7))
MON = datetime(2026, 3, 2, 9, tzinfo=VN)  # Monday; no holiday in March 2026
DEADLINE = datetime(2026, 3, 23, 9, 0, 1, tzinfo=VN)  # 15 working days after receipt, one working second past


@pytest_asyncio.fixture
async def pool(fresh_database: str):
    async for opened in scoring_pool(fresh_database, whole_service=True):
        yield opened


class Clock:
    def __init__(self, now: datetime) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now


async def test_a_pakn_past_its_deadline_is_republished_once(pool) -> None:
    feedback = FeedbackProjection(on_change=unit_days_hook())
    batch = [
        pakn("A", FeedbackCategory.REGULATION, MON),
        state("A", FeedbackState.PROCESSING, MON + timedelta(days=1)),
    ]
    await apply(pool, feedback, batch)
    assert await pool.fetchval("SELECT due_at FROM feedback_deadlines WHERE feedback_id = 'A'") == DEADLINE

    clock = Clock(MON + timedelta(days=2))
    store = PostgresEventStore(pool, default_registry())
    publisher = IndicatorPublisher(
        pool=pool, store=store, ruleset_version=DEFAULT_VERSION, clock=clock, schemes=load_schemes()
    )
    assert await publisher.publish_round() > 0
    assert await publisher.publish_range_round() > 0
    first, position = await published(pool, 0)
    on_time = {(x["unit"], x["kind"], x["key"]): x["value"] for x in first if x["key"] in {"d766.5_2", "d766.5_3"}}
    assert on_time[("00004", "month", "d766.5_2")] == 1.0  # in progress within 15 working days
    assert on_time[("01", "year", "d766.5_3")] == 1.0

    clock.now = DEADLINE - timedelta(hours=1)  # time passes, no event: nothing to publish yet
    assert await publisher.publish_round() == -1

    clock.now = DEADLINE + timedelta(hours=1)
    async with pool.acquire() as conn:  # a round that takes the deadline and then fails leaves it due
        tx = conn.transaction()
        await tx.start()
        assert await take_due_deadlines(conn, clock.now) == [("00004", "01", date(2026, 3, 23), None)]
        await tx.rollback()

    assert await publisher.publish_round() > 0
    calendar, position = await published(pool, position)
    got = sorted((x["unit"], x["kind"], x["start"], x["key"], x["value"]) for x in calendar)
    assert got == sorted(
        (unit, kind, start, key, 0.0)
        for unit in ("00004", "01")
        for kind, start in (("month", date(2026, 3, 1)), ("quarter", date(2026, 1, 1)), ("year", date(2026, 1, 1)))
        for key in ("d766.5_2", "d766.5_3")
    )  # exactly the two values that moved, once per unit and period; 5.1 and 5.4 did not move
    assert await publisher.publish_range_round() > 0  # the months handled mark their year to date
    ranged, position = await published(pool, position)
    ytd = {(x["unit"], x["key"]): x["value"] for x in ranged if x["kind"] == "ytd"}
    assert ytd[("00004", "d766.5_2")] == ytd[("01", "d766.5_3")] == 0.0

    # not again: later rounds, and a re-delivered batch (its periods recomputed, no value moved)
    clock.now = DEADLINE + timedelta(days=2)
    assert await publisher.publish_round() == -1
    await apply(pool, feedback, batch)
    assert await publisher.publish_round() == 0
    assert await publisher.publish_round() == -1
    assert (await published(pool, position))[0] == []
    assert await pool.fetchval(
        "SELECT fired_at FROM feedback_deadlines WHERE feedback_id = 'A'"
    ) == DEADLINE + timedelta(hours=1)  # handled by the round at 10:00

    # handled ("chờ công khai") but not published: the next deadline, 2 working days later, replaces it
    waiting = DEADLINE + timedelta(days=1)  # Tue 24/3
    await apply(pool, feedback, [state("A", FeedbackState.AWAITING_PUBLICATION, waiting)])
    row = await pool.fetchrow("SELECT due_at, fired_at FROM feedback_deadlines")
    assert (row["due_at"], row["fired_at"]) == (datetime(2026, 3, 26, 9, 0, 2, tzinfo=VN), None)  # due in its turn
    await apply(pool, feedback, [state("A", FeedbackState.PUBLISHED, waiting + timedelta(days=1))])
    assert await pool.fetchval("SELECT count(*) FROM feedback_deadlines") == 0  # finished: nothing ahead
