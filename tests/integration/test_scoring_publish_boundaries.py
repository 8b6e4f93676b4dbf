"""A new period that has values before any event of it, on the real PostgreSQL: when the publisher's injected
clock passes a boundary (a month and quarter, a report's start, a new year and its year to date), the units
with dossiers or PAKN carried into the new period get its values once — only values (no never-published N/A),
equal to what the read side computes — and nothing again on later rounds, from a restarted publisher or
another replica; a round that rolls back publishes nothing and leaves the boundary pending; a unit with nothing
carried publishes nothing; a projection batch still in flight when the boundary passes is waited for."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date, datetime, timedelta, timezone

import pytest
import pytest_asyncio

from contracts.dossiers import FeedbackCategory, TimelinessClass
from contracts.registry import default_registry
from eventkit.pg import Connection
from eventkit.postgres import NewEvent, PostgresEventStore
from services.scoring.configs import DEFAULT_VERSION
from services.scoring.domain.periods import PeriodKind
from services.scoring.projections import DossierIndicatorsProjection
from services.scoring.projections_feedback import FeedbackProjection
from services.scoring.ranges import load_schemes
from services.scoring.subscriptions import (
    DirtyKey,
    IndicatorPublisher,
    dossier_change_hook,
    indicator_values,
    unit_days_hook,
)
from tests.integration.scoring_events import consumed, received, resolved, scoring_pool
from tests.integration.test_scoring_feedback import pakn
from tests.integration.test_scoring_publish_ranges import apply, published

pytestmark = pytest.mark.integration
VN = timezone(timedelta(hours=7))
APRIL = date(2026, 4, 1)
COUNTS = {  # report 06 counts: never N/A, so a carried unit's new period publishes them all (zeros too)
    "r06.received",
    "r06.received_online",
    "r06.received_postal",
    "r06.carried_over",
    "r06.resolved_early",
    "r06.resolved_on_time",
    "r06.resolved_late",
    "r06.open_within_time",
    "r06.open_overdue",
    "r06.withdrawn",
    "r06.refused",
    "r06.stopped",
}


@pytest_asyncio.fixture
async def pool(fresh_database: str):
    async for opened in scoring_pool(fresh_database, whole_service=True):
        yield opened


class Clock:
    def __init__(self, now: datetime) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now


class FailingStore(PostgresEventStore):
    """The real store, failing when asked to append: the round's transaction rolls back."""

    async def append_many(
        self, conn: Connection, appends: Sequence[tuple[str, int | None, Sequence[NewEvent]]]
    ) -> dict[str, int]:
        msg = "the round fails after marking its keys"
        raise RuntimeError(msg)


def at(day: int, month: int = 3, hour: int = 9, year: int = 2026) -> datetime:
    return datetime(year, month, day, hour, tzinfo=VN)


async def drain(publisher: IndicatorPublisher) -> None:
    while await publisher.publish_round() >= 0:
        pass
    while await publisher.publish_range_round() >= 0:
        pass


def publisher_of(pool, clock: Clock, store: PostgresEventStore | None = None) -> IndicatorPublisher:
    return IndicatorPublisher(
        pool=pool,
        store=store or PostgresEventStore(pool, default_registry()),
        ruleset_version=DEFAULT_VERSION,
        clock=clock,
        schemes=load_schemes(),
    )


async def test_units_with_dossiers_or_pakn_carried_into_a_new_month_publish_its_values_once(pool) -> None:
    dossiers = DossierIndicatorsProjection(lambda _code: None, dossier_change_hook(lambda: at(20)))
    await apply(
        pool,
        dossiers,
        [
            consumed(received("OPEN", at(10))),  # 00004: still open, carried into April
            consumed(received("DONE", at(11)), unit="00008"),  # 00008: resolved in March, nothing carried
            consumed(resolved("DONE", at(11), at(12), TimelinessClass.ON_TIME), unit="00008"),
            consumed(received("HCM", at(11)), unit="25747", province="79"),  # another province, resolved
            consumed(resolved("HCM", at(11), at(12), TimelinessClass.ON_TIME), unit="25747", province="79"),
        ],
    )
    # 00025: only a PAKN in progress (received 25/3, due 15 working days later, in mid-April)
    await apply(
        pool,
        FeedbackProjection(on_change=unit_days_hook()),
        [pakn("P", FeedbackCategory.REGULATION, at(25), unit="00025")],
    )

    clock = Clock(at(20, hour=12))
    publisher = publisher_of(pool, clock)
    await drain(publisher)  # March as the events made it
    _, position = await published(pool, 0)
    clock.now = datetime(2026, 3, 31, 23, 59, tzinfo=VN)
    assert await publisher.publish_round() == -1  # time passes within March: nothing

    clock.now = datetime(2026, 4, 1, 0, 0, 30, tzinfo=VN)  # April and the second quarter begin
    failing = publisher_of(pool, clock, FailingStore(pool, default_registry()))
    with pytest.raises(RuntimeError):
        await failing.publish_round()
    assert (await published(pool, position))[0] == []
    assert await pool.fetchval("SELECT count(*) FROM scoring_boundaries WHERE period_start = $1", APRIL) == 0

    assert await publisher.publish_round() > 0
    events, position = await published(pool, position)
    got: dict[tuple[str, str, date], dict[str, float | None]] = {}
    for x in events:
        assert x["na"] is None  # a quiet key sends values only: its N/A ones wait for an event
        got.setdefault((x["unit"], x["kind"], x["start"]), {})[x["key"]] = x["value"]
    assert len(events) == sum(len(v) for v in got.values())  # one event per (unit, period, indicator)
    assert set(got) == {(u, k, APRIL) for u in ("00004", "00025", "01") for k in ("month", "quarter")}
    month = {u: got[(u, "month", APRIL)] for u in ("00004", "00025", "01")}
    assert month["00004"]["r06.carried_over"] == month["00004"]["r06.open_within_time"] == 1
    assert month["00004"]["r06.received"] == 0
    assert month["00004"]["d766.2_1"] == 1.0  # the open dossier, within time at the cut-off
    assert "d766.5_2" not in month["00004"]
    assert month["00025"]["d766.5_2"] == 1.0  # the PAKN in progress, within its 15 working days
    assert month["00025"]["r06.carried_over"] == 0
    assert "d766.2_1" not in month["00025"]  # no dossier: N/A, not sent
    assert set(month["00004"]) == {*COUNTS, "d766.2_1"}
    assert set(month["00025"]) == {*COUNTS, "d766.5_2"}
    assert set(month["01"]) == {*COUNTS, "d766.2_1", "d766.5_2"}  # the province rollup of both
    async with pool.acquire() as conn:  # exactly the values the read side computes that are not N/A
        keys = [DirtyKey(u, "01", PeriodKind(k), s) for u, k, s in got]
        computed = await indicator_values(conn, keys, clock.now)
    for k in keys:
        assert got[(k.unitcode, k.kind.value, k.start)] == {
            v.key: v.value for v in computed[k].values() if v.na_reason is None
        }

    # once: later rounds, a restarted publisher, another replica; no new range (April starts none)
    clock.now = datetime(2026, 4, 1, 12, tzinfo=VN)
    assert await publisher.publish_round() == -1
    assert await publisher.publish_range_round() == -1
    assert await publisher_of(pool, clock).publish_round() == -1
    assert (await published(pool, position))[0] == []
    handled = await pool.fetch("SELECT period_kind, keys FROM scoring_boundaries WHERE period_start = $1", APRIL)
    assert sorted((r["period_kind"], r["keys"]) for r in handled) == [("month", 3), ("quarter", 3)]

    # an event later in April makes the key loud again: its N/A values go out then, like any key's
    await apply(pool, dossiers, [consumed(resolved("OPEN", at(10), at(2, month=4), TimelinessClass.ON_TIME))])
    assert await publisher.publish_round() > 0
    later, _ = await published(pool, position)
    na = {x["key"] for x in later if x["unit"] == "00004" and x["kind"] == "month" and x["na"] is not None}
    assert "d766.5_2" in na


async def test_a_report_a_year_and_its_year_to_date_begin_with_the_carried_units(pool) -> None:
    dossiers = DossierIndicatorsProjection(lambda _code: None, dossier_change_hook(lambda: at(10, month=12)))
    await apply(pool, dossiers, [consumed(received("OPEN", at(10, month=12)))])  # open over the year's end
    clock = Clock(at(10, month=12, hour=12))
    publisher = publisher_of(pool, clock)
    await drain(publisher)
    _, position = await published(pool, 0)

    # 15/12: the default scheme's Quý I and year reports of 2027 begin (no calendar period does)
    clock.now = datetime(2026, 12, 15, 0, 1, tzinfo=VN)
    assert await publisher.publish_round() == -1  # nothing calendar to publish, the report keys are marked
    assert await publisher.publish_range_round() > 0
    ranged, position = await published(pool, position)
    assert {(x["unit"], x["kind"], x["start"], x["end"]) for x in ranged} == {
        (u, "reporting", date(2026, 12, 15), end)
        for u in ("00004", "01")
        for end in (date(2027, 3, 14), date(2027, 12, 14))
    }
    assert all(x["na"] is None for x in ranged)
    assert {x["value"] for x in ranged if x["key"] == "r06.carried_over"} == {1}

    # 1/1/2027: month, quarter, year, and the year to date
    clock.now = datetime(2027, 1, 1, 0, 1, tzinfo=VN)
    assert await publisher.publish_round() > 0
    assert await publisher.publish_range_round() > 0
    new_year, position = await published(pool, position)
    assert {(x["unit"], x["kind"], x["start"]) for x in new_year} == {
        (u, k, date(2027, 1, 1)) for u in ("00004", "01") for k in ("month", "quarter", "year", "ytd")
    }
    ytd = {x["key"]: x["value"] for x in new_year if x["kind"] == "ytd" and x["unit"] == "00004"}
    assert ytd["r06.carried_over"] == ytd["r06.open_within_time"] == 1
    assert {x["end"] for x in new_year if x["kind"] == "ytd"} == {date(2027, 1, 1)}
    clock.now = datetime(2027, 1, 2, 9, tzinfo=VN)
    await drain(publisher)
    assert (await published(pool, position))[0] == []


async def test_a_batch_in_flight_at_the_boundary_is_waited_for(pool) -> None:
    clock = Clock(datetime(2026, 3, 31, 23, 59, 59, tzinfo=VN))
    publisher = publisher_of(pool, clock)
    await drain(publisher)  # March's boundaries recorded; nothing to publish
    # a batch reads its clock on 31/3 (so it marks only March for the dossier it leaves open) and is still
    # running when the publisher's clock passes the end of March
    late = DossierIndicatorsProjection(lambda _code: None, dossier_change_hook(lambda: clock.now))
    async with pool.acquire() as conn:
        tx = conn.transaction()
        await tx.start()
        await late.apply(conn, [consumed(received("LATE", datetime(2026, 3, 31, 16, tzinfo=VN)), unit="00070")])
        clock.now = datetime(2026, 4, 1, 0, 0, 1, tzinfo=VN)
        assert await publisher.publish_round() == -1  # the boundary waits for the batch begun before it
        assert await pool.fetchval("SELECT count(*) FROM scoring_boundaries WHERE period_start = $1", APRIL) == 0
        await tx.commit()
    assert await publisher.publish_round() > 0  # then the dossier it committed is carried into April
    events, _ = await published(pool, 0)
    april = {(x["unit"], x["kind"]) for x in events if x["start"] == APRIL}
    assert april == {(u, k) for u in ("00070", "01") for k in ("month", "quarter")}


async def test_a_pakn_that_arrives_after_the_boundary_still_reaches_the_new_month(pool) -> None:
    clock = Clock(datetime(2026, 4, 3, 9, tzinfo=VN))
    publisher = publisher_of(pool, clock)
    await drain(publisher)  # April's boundaries handled with nothing carried
    assert await pool.fetchval("SELECT count(*) FROM scoring_boundaries WHERE period_start = $1", APRIL) == 2
    # a PAKN received on 25/3, still in progress, whose receipt reaches the service only on 3/4: like an open
    # dossier, it marks the months from its receipt to the projection's day, so April gets its 5.2
    feedback = FeedbackProjection(on_change=unit_days_hook(), clock=clock)
    await apply(pool, feedback, [pakn("P", FeedbackCategory.REGULATION, at(25), unit="00025")])
    assert await publisher.publish_round() > 0
    events, _ = await published(pool, 0)
    on_time = {(x["unit"], x["kind"], x["start"]): x["value"] for x in events if x["key"] == "d766.5_2"}
    assert on_time[("00025", "month", APRIL)] == on_time[("01", "quarter", APRIL)] == 1.0
    assert on_time[("00025", "month", date(2026, 3, 1))] == 1.0
