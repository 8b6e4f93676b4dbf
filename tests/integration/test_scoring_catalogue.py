"""The TTHC catalogue on the real PostgreSQL: import (bad rows rejected, re-import idempotent), the
catalogue-dependent 766 indicators in the existing unit endpoint's computation, and the rebuild swap carrying
the catalogue and the frozen periods over into the rebuilt schema."""

from __future__ import annotations

import uuid
from datetime import UTC, date, datetime, timedelta, timezone
from pathlib import Path

import pytest
import pytest_asyncio
from aiokafka.structs import ConsumerRecord

from contracts.dossiers import Channel, DossierComponent, DossierReceived, StatutoryTime, TimeUnit
from contracts.envelope import make_envelope
from contracts.registry import default_registry
from contracts.wire import encode, read_headers
from eventkit import projection as plumbing
from eventkit.pg import apply_migrations, create_pool
from eventkit.projection import ConsumedEvent
from eventkit.units import UnitRegistry
from services.scoring.app import scoring_projections
from services.scoring.catalogue import import_catalogue, load_catalogue
from services.scoring.configs import DEFAULT_VERSION, load_configs
from services.scoring.domain.periods import PeriodKind
from services.scoring.indicator_api import IndicatorQueries
from services.scoring.projections import DossierIndicatorsProjection
from services.scoring.ranges import FREEZE_MIGRATIONS, FREEZE_MIGRATIONS_NAME, compute_range, freeze, resolve_range
from services.scoring.rebuild import _swap

pytestmark = pytest.mark.integration
VN = timezone(timedelta(hours=7))
REGISTRY = default_registry()
EXAMPLES = Path(__file__).resolve().parents[2] / "examples" / "catalogue"
CONFIGS = load_configs()
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


def consumed(payload) -> ConsumedEvent:
    envelope = make_envelope(
        payload,
        id=uuid.uuid4(),
        source="urn:chiso:dossiers",
        subject=f"dossier:{payload.dossier_id}",
        time=datetime(2024, 3, 2, tzinfo=UTC),
        unitcode="00004",
        provincecode="01",
    )
    key, value, headers = encode(envelope)
    record = ConsumerRecord(
        "vn.cchc.dossiers.events", 0, next(_offsets), 0, 0, key, value, None, len(key), len(value), headers
    )
    return ConsumedEvent(record, read_headers(headers), REGISTRY)


def received(dossier_id: str, ma_tthc: str, channel: Channel, at: datetime) -> DossierReceived:
    return DossierReceived(
        dossier_id=dossier_id,
        agency_code="A",
        channel=channel,
        ma_tthc=ma_tthc,
        procedure_version="v",
        applicant_type="individual",
        applicant_ref="b" * 64,
        received_at=at,
        due_at=at + timedelta(days=3),
        statutory_time=StatutoryTime(value=3, unit=TimeUnit.WORKING_DAYS),
        components=(
            DossierComponent(component_code="TP1", digitized=True, reused_from_store=False, reused_digital_data=False),
        ),
    )


async def test_import_rejects_bad_rows_and_is_idempotent(pool, fresh_database: str) -> None:
    assert not await load_catalogue(pool)  # nothing imported: no table yet, an empty catalogue
    seen: list[tuple[int, int]] = []
    summary = await import_catalogue(
        EXAMPLES / "tthc-example.csv", fresh_database, "scoring", progress=lambda d, t: seen.append((d, t))
    )
    assert (summary.rows, len(summary.accepted), summary.rejected) == (7, 7, [])
    assert seen[-1] == (7, 7)
    again = await import_catalogue(EXAMPLES / "tthc-example.csv", fresh_database, "scoring")
    assert len(again.accepted) == 7
    assert await pool.fetchval("SELECT count(*) FROM tthc_catalogue") == 7
    bad = await import_catalogue(EXAMPLES / "bad-rows.csv", fresh_database, "scoring")
    assert (len(bad.accepted), len(bad.rejected)) == (0, 5)
    assert await pool.fetchval("SELECT count(*) FROM tthc_catalogue") == 7
    catalogue = await load_catalogue(pool)
    v1 = catalogue.in_force("1.001193", date(2025, 6, 30))
    v2 = catalogue.in_force("1.001193", date(2025, 7, 1))
    assert v1 is not None
    assert v2 is not None
    assert (v1.online_level, v2.online_level) == ("partial", "full")


async def test_catalogue_indicators_in_the_unit_endpoint(pool, fresh_database: str) -> None:
    march = datetime(2024, 3, 5, 9, tzinfo=VN)
    await apply_projection(
        pool,
        [
            consumed(received("D1", "1.001193", Channel.ONLINE, march)),
            consumed(received("D2", "1.001193", Channel.DIRECT, march)),
            consumed(received("D3", "2.000635", Channel.DIRECT, march)),
        ],
    )
    queries = IndicatorQueries(
        pool, CONFIGS, DEFAULT_VERSION, UnitRegistry.load, now=lambda: march + timedelta(days=60)
    )

    def d766(out) -> dict[str, object]:
        return {i.key: i for g in out.d766.groups for i in g.indicators}

    before = d766(await queries.unit("00004", PeriodKind.MONTH, date(2024, 3, 1), None))
    assert before["d766.3_1"].na_reason == "missing_reference_data"

    await import_catalogue(EXAMPLES / "tthc-example.csv", fresh_database, "scoring")
    after = d766(await queries.unit("00004", PeriodKind.MONTH, date(2024, 3, 1), None))
    # commune TTHC in force on 31/03/2024 (example file): 1.001193, 2.000635, 1.001776, 1.000894, 2.001263;
    # with DVCTT: all but 1.000894 -> 4/5
    assert (after["d766.3_1"].numerator, after["d766.3_1"].denominator, after["d766.3_1"].value) == (4, 5, 0.8)
    # DVC with an online dossier: 1.001193 only -> 1/4
    assert after["d766.3_2"].value == 0.25
    # dossiers of TTHC eligible for toàn trình: D1, D2 (1.001193), D3 (2.000635) = 3; online on a toàn trình
    # TTHC: none (1.001193 is một phần until 2025-07-01) -> 0/3
    full = after["d766.3_full_online"]
    assert (full.numerator, full.denominator, full.value) == (0, 3, 0.0)
    # fee TTHC of the commune level: 2.000635, 1.001776, 2.001263; none with a synced fee dossier -> 0/3
    assert (after["d766.3_5a"].numerator, after["d766.3_5a"].denominator) == (0, 3)
    # the same through the range path (ytd)
    r = resolve_range("ytd", date(2024, 3, 31), {})
    ranged = await compute_range(pool, "00004", r, CONFIGS[DEFAULT_VERSION], march + timedelta(days=60))
    assert ranged.catalogue_loaded
    assert ranged.values["d766.3_1"].value == 0.8


async def apply_projection(pool, events: list[ConsumedEvent]) -> None:
    projection = DossierIndicatorsProjection(lambda _code: None)
    async with pool.acquire() as conn, conn.transaction():
        await projection.apply(conn, events)


async def test_the_rebuild_swap_carries_the_catalogue_and_the_frozen_periods(pool, fresh_database: str) -> None:
    await import_catalogue(EXAMPLES / "tthc-example.csv", fresh_database, "scoring")
    await apply_migrations(pool, FREEZE_MIGRATIONS_NAME, FREEZE_MIGRATIONS)
    r = resolve_range("month", date(2024, 1, 1), {})
    await freeze(pool, "00004", r, CONFIGS[DEFAULT_VERSION], datetime(2024, 3, 1, tzinfo=VN))
    fresh = await create_pool(fresh_database, "scoring_fresh", min_size=1, max_size=2)
    try:
        await apply_migrations(fresh, "eventkit.projection", plumbing.MIGRATIONS)
        for projection in scoring_projections():
            await apply_migrations(fresh, projection.name, projection.migrations)
    finally:
        await fresh.close()
    replayed = [
        r["tablename"]
        for r in await pool.fetch("SELECT tablename FROM pg_tables WHERE schemaname = 'scoring_fresh'")
        if r["tablename"] not in {"schema_migrations", "projection_offsets", "projection_processed"}
    ]
    async with pool.acquire() as conn, conn.transaction():
        await _swap(conn, "scoring", "scoring_fresh", "scoring_old_test", replayed)
    assert await pool.fetchval("SELECT count(*) FROM scoring.tthc_catalogue") == 7
    assert await pool.fetchval("SELECT count(*) FROM scoring.scoring_frozen") == 1
    migrated = await pool.fetch("SELECT component FROM scoring.schema_migrations")
    assert {"scoring.tthc_catalogue", "scoring.frozen_periods"} <= {m["component"] for m in migrated}
