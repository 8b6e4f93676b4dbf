"""766 group 5 and the catalogue values on the real PostgreSQL: PAKN and ratings projected by their own
projection (re-delivered and out-of-order batches converge), the values in the unit endpoint, the province
table, the series and the period API agree, explain lists the PAKN and ratings behind each side, and the
catalogue-dependent indicators reach the province table and the series."""

from __future__ import annotations

import uuid
from datetime import UTC, date, datetime, timedelta, timezone
from pathlib import Path

import pytest
import pytest_asyncio
from aiokafka.structs import ConsumerRecord

from contracts.base import EventPayload
from contracts.dossiers import (
    Channel,
    DossierRated,
    FeedbackCategory,
    FeedbackForwarder,
    FeedbackReceived,
    FeedbackState,
    FeedbackStateChanged,
    Rating,
    RatingChannel,
    TimelinessClass,
)
from contracts.envelope import make_envelope
from contracts.wire import encode, read_headers
from eventkit import projection as plumbing
from eventkit.pg import apply_migrations, create_pool
from eventkit.projection import ConsumedEvent
from eventkit.units import UnitRegistry
from services.scoring.app import scoring_projections
from services.scoring.catalogue import import_catalogue
from services.scoring.configs import DEFAULT_VERSION, load_configs
from services.scoring.domain.periods import PeriodKind
from services.scoring.indicator_api import IndicatorQueries, Part
from services.scoring.projections import DossierIndicatorsProjection
from services.scoring.projections_feedback import FeedbackProjection
from services.scoring.ranges import compute_range, resolve_range
from tests.integration.scoring_events import REGISTRY, received, resolved
from tests.integration.scoring_events import consumed as dossier_event

pytestmark = pytest.mark.integration
VN = timezone(timedelta(hours=7))
CONFIGS = load_configs()
EXAMPLES = Path(__file__).resolve().parents[2] / "examples" / "catalogue"
MON = datetime(2026, 3, 2, 9, tzinfo=VN)
MARCH = date(2026, 3, 1)
_offsets = iter(range(10**9))


@pytest_asyncio.fixture
async def pool(fresh_database: str):
    pool = await create_pool(fresh_database, "scoring", min_size=1, max_size=4)
    await apply_migrations(pool, "eventkit.projection", plumbing.MIGRATIONS)
    for projection in scoring_projections():
        await apply_migrations(pool, projection.name, projection.migrations)
    try:
        yield pool
    finally:
        await pool.close()


def event(payload: EventPayload, subject: str, unit: str = "00004") -> ConsumedEvent:
    envelope = make_envelope(
        payload,
        id=uuid.uuid4(),
        source="urn:chiso:dossiers",
        subject=subject,
        time=datetime(2026, 3, 2, tzinfo=UTC),
        unitcode=unit,
        provincecode="01",
    )
    key, value, headers = encode(envelope)
    record = ConsumerRecord(
        "vn.cchc.dossiers.events", 0, next(_offsets), 0, 0, key, value, None, len(key), len(value), headers
    )
    return ConsumedEvent(record, read_headers(headers), REGISTRY)


def pakn(fid: str, category: FeedbackCategory, at: datetime, **kw: object) -> ConsumedEvent:
    unit = str(kw.pop("unit", "00004"))
    data = FeedbackReceived(
        feedback_id=fid, agency_code="A", category=category, forwarded_by=FeedbackForwarder.DIRECT, received_at=at, **kw
    )
    return event(data, f"feedback:{fid}", unit)


def state(fid: str, new: FeedbackState, at: datetime, **kw: object) -> ConsumedEvent:
    data = FeedbackStateChanged(feedback_id=fid, agency_code="A", state=new, changed_at=at, **kw)
    return event(data, f"feedback:{fid}")


def rated(dossier_id: str, rating: Rating, at: datetime, unit: str = "00004") -> ConsumedEvent:
    data = DossierRated(
        dossier_id=dossier_id, agency_code="A", rated_at=at, rated_via=RatingChannel.DVCQG, rating=rating
    )
    return event(data, f"dossier:{dossier_id}", unit)


async def apply(pool, projection, events: list[ConsumedEvent]) -> None:
    async with pool.acquire() as conn, conn.transaction():
        await projection.apply(conn, events)


async def test_group_5_from_the_projected_pakn_and_ratings(pool) -> None:
    dossiers = DossierIndicatorsProjection(lambda _code: None)
    # ten dossiers received and resolved in March, two late: 2.1 = 8/10
    batch = []
    for i in range(10):
        klass = TimelinessClass.LATE if i < 2 else TimelinessClass.ON_TIME
        batch += [
            dossier_event(received(f"D{i}", MON)),
            dossier_event(resolved(f"D{i}", MON, MON + timedelta(days=1), klass)),
        ]
    await apply(pool, dossiers, batch)

    feedback = FeedbackProjection()
    first = [
        pakn("A", FeedbackCategory.REGULATION, MON),
        state("A", FeedbackState.PROCESSING, MON + timedelta(days=1)),
        pakn("B", FeedbackCategory.OFFICIAL_CONDUCT, MON, dossier_id="D5"),
        state("B", FeedbackState.REJECTED, MON + timedelta(days=3)),  # 3 working days: late
        rated("D6", Rating.DISLIKE, MON + timedelta(days=2)),
        rated("D7", Rating.SATISFIED, MON + timedelta(days=2)),
    ]
    second = [
        # A published on time, with more dislikes than likes; the same facts delivered again change nothing
        state("A", FeedbackState.PUBLISHED, MON + timedelta(days=2), likes=1, dislikes=4),
        state("A", FeedbackState.PUBLISHED, MON + timedelta(days=2), likes=1, dislikes=4),
        rated("D6", Rating.DISLIKE, MON + timedelta(days=2)),
        # C follows A up; an older like count arriving late does not replace the newer one
        pakn("C", FeedbackCategory.REGULATION, MON + timedelta(days=7), follows_up_feedback_id="A"),
        state("A", FeedbackState.AWAITING_PUBLICATION, MON + timedelta(days=1, hours=2), likes=9, dislikes=0),
    ]
    await apply(pool, feedback, first)
    await apply(pool, feedback, second)
    await apply(pool, feedback, second)  # a re-delivered batch: merges give the same rows
    row = await pool.fetchrow("SELECT * FROM feedback_items WHERE feedback_id = 'A'")
    assert (row["likes"], row["dislikes"]) == (1, 4)
    assert row["awaiting_publication_at"] == MON + timedelta(days=1, hours=2)
    assert row["finished_at"] == MON + timedelta(days=1, hours=2)
    assert await pool.fetchval("SELECT count(*) FROM dossier_ratings") == 2

    now = MON + timedelta(days=60)
    queries = IndicatorQueries(pool, CONFIGS, DEFAULT_VERSION, UnitRegistry.load, now=lambda: now)
    out = await queries.unit("00004", PeriodKind.MONTH, MARCH, None)
    mdhl = next(g for g in out.d766.groups if g.key == "mdhl")
    got = {i.key: (i.numerator, i.denominator, i.value) for i in mdhl.indicators}
    assert got["d766.5_1"] == (2, 3, 0.6667)  # A, C of A, B, C
    # measured: A (handled), B (refused), C (in progress past 15 working days at 1 April): on time A only
    assert got["d766.5_2"] == (1, 3, 0.3333)
    assert got["d766.5_3"] == (0, 3, 0.0)  # A disliked and followed up, B late, C overdue at the cut-off
    # 10 dossiers, 2 late, complaints on D5 (PAKN B) and D6 (dislike): (10 - 2 - 2) / 10
    assert got["d766.5_4"] == (6, 10, 0.6)
    assert mdhl.points == round(6 * 1 / 3, 2) + 0.0 + round(0.6 * 6 / 0.9, 2)

    # the province table, the series and the period API carry the same values
    table = await queries._table(  # the computation itself, not the 1 s cache of rendered tables
        provincecode="01", indicator="d766.5_4", period=PeriodKind.MONTH, start=MARCH, version=None, order="desc"
    )
    mine = next(r for r in table.rows if r.unitcode == "00004")
    assert (mine.value, mine.rank) == (0.6, 1)
    group = await queries._table(  # the computation itself, not the 1 s cache of rendered tables
        provincecode="01", indicator="d766.group.mdhl", period=PeriodKind.MONTH, start=MARCH, version=None, order="desc"
    )
    assert next(r for r in group.rows if r.unitcode == "00004").value == mdhl.points
    series = await queries.series(
        unitcode="00004",
        indicator="d766.5_2",
        period=PeriodKind.MONTH,
        since=date(2026, 2, 1),
        until=MARCH,
        version=None,
    )
    assert [(p.value, p.na_reason) for p in series.points] == [(None, "empty_denominator"), (0.3333, None)]
    province = await queries.unit("01", PeriodKind.MONTH, MARCH, None)
    rollup = {i.key: i.value for g in province.d766.groups for i in g.indicators}
    assert rollup["d766.5_4"] == 0.6
    ranged = await compute_range(
        pool, "00004", resolve_range("ytd", date(2026, 3, 31), {}), CONFIGS[DEFAULT_VERSION], now
    )
    assert ranged.values["d766.5_3"].denominator == 3

    # explain: which PAKN and ratings are behind each side
    async def explained(indicator: str, part: Part) -> list[tuple[str, str]]:
        page = await queries.explain(
            unitcode="00004",
            indicator=indicator,
            period=PeriodKind.MONTH,
            start=MARCH,
            part=part,
            page=1,
            size=50,
            version=None,
        )
        return [(f.kind, f.id) for f in page.feedback] or [("dossier", d.dossier_id) for d in page.dossiers]

    assert await explained("d766.5_2", Part.NUMERATOR) == [("pakn", "A")]
    assert await explained("d766.5_2", Part.DENOMINATOR) == [("pakn", "A"), ("pakn", "B"), ("pakn", "C")]
    assert await explained("d766.5_4", Part.NUMERATOR) == [("pakn", "B"), ("rating", "D6")]
    assert len(await explained("d766.5_4", Part.DENOMINATOR)) == 10


async def test_catalogue_values_in_the_province_table_and_the_series(pool, fresh_database: str) -> None:
    march = datetime(2024, 3, 5, 9, tzinfo=VN)
    dossiers = DossierIndicatorsProjection(lambda _code: None)
    await apply(
        pool,
        dossiers,
        [
            dossier_event(received("D1", march, Channel.ONLINE), time=march),
            dossier_event(received("D2", march), unit="00008", time=march),
        ],
    )
    queries = IndicatorQueries(
        pool, CONFIGS, DEFAULT_VERSION, UnitRegistry.load, now=lambda: march + timedelta(days=60)
    )
    month = date(2024, 3, 1)
    before = await queries._table(  # the computation itself, not the 1 s cache of rendered tables
        provincecode="01", indicator="d766.3_2", period=PeriodKind.MONTH, start=month, version=None, order="desc"
    )
    assert {r.na_reason for r in before.rows} == {"missing_reference_data"}
    await import_catalogue(EXAMPLES / "tthc-example.csv", fresh_database, "scoring")
    for unit in ("00004", "00008"):
        one = await queries.unit(unit, PeriodKind.MONTH, month, None)
        expected = {i.key: i for g in one.d766.groups for i in g.indicators}
        for key in ("d766.3_1", "d766.3_2", "d766.3_full_online", "d766.group.clgq"):
            table = await queries._table(  # the computation itself, not the 1 s cache of rendered tables
                provincecode="01", indicator=key, period=PeriodKind.MONTH, start=month, version=None, order="desc"
            )
            row = next(r for r in table.rows if r.unitcode == unit)
            series = await queries.series(
                unitcode=unit, indicator=key, period=PeriodKind.MONTH, since=month, until=month, version=None
            )
            if key.startswith("d766.group."):
                want = next(g.points for g in one.d766.groups if g.key == "clgq")
            else:
                want = expected[key].value
            assert row.value == want == series.points[0].value, key
    table = await queries._table(  # the computation itself, not the 1 s cache of rendered tables
        provincecode="01", indicator="d766.3_2", period=PeriodKind.MONTH, start=month, version=None, order="desc"
    )
    values = {r.unitcode: r.value for r in table.rows if r.unitcode in {"00004", "00008"}}
    assert values == {"00004": 0.25, "00008": 0.0}  # an online dossier on 1.001193 at 00004 only
