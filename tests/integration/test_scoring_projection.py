"""The dossier-indicators projection on the real PostgreSQL: batches fold into per-dossier rows and counter
sums; a re-emitted verdict replaces the old one, a corrected date moves the dossier to its period, and the
counters always equal a recount of the stored contributions; the read side sums rollups and explains."""

from __future__ import annotations

import asyncio
from collections import Counter
from datetime import date, datetime, timedelta, timezone

import asyncpg
import pytest
import pytest_asyncio

from contracts.dossiers import (
    Channel,
    TimelinessClass,
)
from eventkit.projection import ConsumedEvent
from services.scoring.domain.indicators import SPECS, compute
from services.scoring.domain.periods import PeriodKind
from services.scoring.projections import ConcurrentDossierWrite, DossierIndicatorsProjection
from services.scoring.readmodel import Scope, count_explained, counters, explain, open_counts, scope_of, window
from tests.integration.scoring_events import consumed, received, resolved, scoring_pool

pytestmark = pytest.mark.integration
VN = timezone(timedelta(hours=7))


@pytest_asyncio.fixture
async def pool(fresh_database: str):
    async for opened in scoring_pool(fresh_database):
        yield opened


async def apply(pool: asyncpg.Pool, events: list[ConsumedEvent]) -> None:
    projection = DossierIndicatorsProjection(lambda code: "001" if code.startswith("000") or code == "001" else None)
    async with pool.acquire() as conn, conn.transaction():
        await projection.apply(conn, events)


async def assert_counters_equal_a_recount(pool: asyncpg.Pool) -> None:
    """The incremental sums equal the stored contributions recounted from scratch (what verify will do)."""
    live = await pool.fetch(
        "SELECT unitcode, counter, period_start, value FROM indicator_counters WHERE period_kind = 'month'"
        " AND value <> 0"
    )
    recount = await pool.fetch(
        """SELECT d.unitcode, c.k AS counter, date_trunc('month', c.day)::date AS period_start, sum(c.v) AS value
           FROM dossier_facts d, unnest(d.contrib_keys, d.contrib_days, d.contrib_values) AS c(k, day, v)
           GROUP BY 1, 2, 3"""
    )
    assert {tuple(r) for r in live} == {tuple(r) for r in recount}


async def test_batches_replace_verdicts_and_move_periods(pool) -> None:
    march = datetime(2026, 3, 10, 9, tzinfo=VN)
    batch = [consumed(received(f"D{i}", march)) for i in range(5)]
    batch.append(consumed(received("D-online", march, Channel.ONLINE)))
    batch += [consumed(resolved(f"D{i}", march, march + timedelta(days=1), TimelinessClass.EARLY)) for i in range(3)]
    await apply(pool, batch)
    month = (await counters(pool, scope_of("00004"), PeriodKind.MONTH, [date(2026, 3, 1)]))[("00004", date(2026, 3, 1))]
    assert month["r06.received"] == 6
    assert month["r06.received.online"] == 1
    assert month["r06.resolved.early"] == 3
    assert month["d766.2_1.on_time"] == 3
    quarter = await counters(pool, scope_of("00004"), PeriodKind.QUARTER, [date(2026, 1, 1)])
    assert quarter[("00004", date(2026, 1, 1))]["r06.received"] == 6

    # the dossiers service re-judges D0 (late now) and a corrected end moves D1 into April: replace, not add
    await apply(
        pool,
        [
            consumed(resolved("D0", march, march + timedelta(days=5), TimelinessClass.LATE)),
            consumed(resolved("D1", march, datetime(2026, 4, 2, 10, tzinfo=VN), TimelinessClass.ON_TIME)),
        ],
    )
    sums = await counters(pool, scope_of("00004"), PeriodKind.MONTH, [date(2026, 3, 1), date(2026, 4, 1)])
    march_sums, april = sums[("00004", date(2026, 3, 1))], sums[("00004", date(2026, 4, 1))]
    assert march_sums["r06.resolved.early"] == 1  # D2 only
    assert march_sums["r06.resolved.late"] == 1  # D0, no longer early
    assert march_sums["d766.2_1.resolved"] == 2
    assert april["r06.resolved.on_time"] == 1  # D1 moved
    assert march_sums["r06.received"] == 6  # receipts did not move
    await assert_counters_equal_a_recount(pool)

    # live: at the end of March three dossiers were still open (D3, D4, D-online) and D1, which ended in April
    w = window(PeriodKind.MONTH, date(2026, 3, 1), datetime(2026, 11, 1, tzinfo=VN))
    opened = (await open_counts(pool, scope_of("00004"), [w]))[("00004", date(2026, 3, 1))]
    assert (opened.within, opened.overdue) == (4, 0)
    values = compute(list(SPECS), march_sums, opened)
    assert values["d766.2_1"].numerator == 1 + 4
    assert values["d766.2_1"].denominator == 2 + 4
    assert values["r06.on_time_rate"].value == 0.5

    # explain lists exactly the dossiers behind each side
    spec = SPECS["d766.2_1"]
    assert await count_explained(pool, scope_of("00004"), spec.denominator, w) == 6
    numerator = await explain(pool, scope_of("00004"), spec.numerator, w, limit=10, offset=0)
    assert sorted(r["dossier_id"] for r in numerator) == ["D-online", "D1", "D2", "D3", "D4"]
    page2 = await explain(pool, scope_of("00004"), spec.numerator, w, limit=2, offset=4)
    assert len(page2) == 1


async def test_province_and_legacy_district_rollups(pool) -> None:
    day = datetime(2024, 11, 5, 9, tzinfo=VN)
    await apply(
        pool,
        [
            consumed(received("A1", day), unit="00004", province="01", legacy="00004"),
            consumed(received("A2", day), unit="00008", province="01", legacy="00008"),
            consumed(received("A3", day), unit="01", province="01", legacy="001"),  # district one-stop shop
            consumed(received("B1", day), unit="00091", province="01"),
        ],
    )
    nov = date(2024, 11, 1)
    province = await counters(pool, Scope("provincecode", "01"), PeriodKind.MONTH, [nov])
    assert province[("01", nov)]["r06.received"] == 4
    by_unit = await counters(pool, Scope("provincecode", "01"), PeriodKind.MONTH, [nov], by_unit=True)
    assert Counter({u: v["r06.received"] for (u, _), v in by_unit.items()}) == {
        "00004": 1,
        "00008": 1,
        "01": 1,
        "00091": 1,
    }
    district = await counters(pool, scope_of("001"), PeriodKind.MONTH, [nov])
    assert district[("001", nov)]["r06.received"] == 3  # the three with a legacy code of district 001
    await assert_counters_equal_a_recount(pool)


async def _apply_then_fail(conn, projection: DossierIndicatorsProjection, events: list[ConsumedEvent]) -> None:
    async with conn.transaction():
        await projection.apply(conn, events)
        raise RuntimeError


_UNIT_COUNTERS = "SELECT counter, period_kind, value FROM indicator_counters WHERE unitcode = $1 ORDER BY 1, 2"


async def test_a_verdict_re_emitted_unchanged_writes_nothing_and_a_failed_batch_leaves_nothing(pool) -> None:
    march = datetime(2026, 3, 10, 9, tzinfo=VN)
    seen: list[list[str]] = []

    async def hook(_conn: object, changes) -> None:  # the subscriptions' hook: which dossiers moved
        seen.append(sorted(new.dossier_id for _, _, new, _ in changes))

    projection = DossierIndicatorsProjection(on_change=hook)
    verdict = resolved("R1", march, march + timedelta(days=1), TimelinessClass.EARLY)
    async with pool.acquire() as conn:
        async with conn.transaction():
            await projection.apply(conn, [consumed(received("R1", march)), consumed(verdict)])
        before = await conn.fetch(_UNIT_COUNTERS, "00004")
        stamp = await conn.fetchval("SELECT updated_at FROM dossier_facts WHERE dossier_id = 'R1'")
        async with conn.transaction():  # the same verdict again, and a new dossier in another commune
            await projection.apply(conn, [consumed(verdict), consumed(received("R2", march), unit="00008")])
        assert seen == [["R1"], ["R2"]]
        assert await conn.fetchval("SELECT updated_at FROM dossier_facts WHERE dossier_id = 'R1'") == stamp
        assert [tuple(r) for r in await conn.fetch(_UNIT_COUNTERS, "00004")] == [tuple(r) for r in before]
        assert await conn.fetchval("SELECT count(*) FROM indicator_counters WHERE unitcode = '00008'") > 0

        # a batch that fails after staging its rows: nothing of it stays, and the next batch on the same
        # connection starts from empty staging tables
        with pytest.raises(RuntimeError):
            await _apply_then_fail(conn, projection, [consumed(received("R3", march))])
        async with conn.transaction():
            await projection.apply(conn, [consumed(received("R4", march))])
        ids = await conn.fetch("SELECT dossier_id FROM dossier_facts ORDER BY 1")
        assert [r["dossier_id"] for r in ids] == ["R1", "R2", "R4"]
    await assert_counters_equal_a_recount(pool)
    month = (await counters(pool, scope_of("00004"), PeriodKind.MONTH, [date(2026, 3, 1)]))[("00004", date(2026, 3, 1))]
    assert month["r06.received"] == 2  # R1 and R4 (R2 is another commune's, R3 rolled back)
    assert month["r06.resolved.early"] == 1


async def test_a_dossier_first_seen_by_two_transactions_at_once_is_never_counted_twice(pool) -> None:
    """Two members of the group each get events of one new dossier (records keyed otherwise than by dossier land
    on two partitions): the second transaction's insert waits for the first, finds the row, and the batch
    fails instead of overwriting it; retried, it folds onto the stored row. The counters equal a recount."""
    march = datetime(2026, 3, 10, 9, tzinfo=VN)
    first, second = DossierIndicatorsProjection(), DossierIndicatorsProjection()
    async with pool.acquire() as a, pool.acquire() as b:
        tx_a = a.transaction()
        await tx_a.start()
        await first.apply(a, [consumed(received("RACE-1", march)), consumed(received("CALM-1", march))])
        # B found no stored RACE-1 (A has not committed); its upsert now waits on A's uncommitted row
        tx_b = b.transaction()
        await tx_b.start()
        late = consumed(resolved("RACE-1", march, march + timedelta(days=1), TimelinessClass.EARLY))
        waiting = asyncio.ensure_future(second.apply(b, [late, consumed(received("CALM-2", march))]))
        await asyncio.sleep(0.3)
        assert not waiting.done()
        await tx_a.commit()
        with pytest.raises(ConcurrentDossierWrite, match="RACE-1"):
            await waiting
        await tx_b.rollback()
        async with b.transaction():  # the runner's retry of the same batch
            await second.apply(b, [late, consumed(received("CALM-2", march))])
    month = (await counters(pool, scope_of("00004"), PeriodKind.MONTH, [date(2026, 3, 1)]))[("00004", date(2026, 3, 1))]
    assert month["r06.received"] == 3  # RACE-1, CALM-1, CALM-2: RACE-1 once
    assert month["r06.resolved.early"] == 1
    state = await pool.fetchval("SELECT state::text FROM dossier_facts WHERE dossier_id = 'RACE-1'")
    assert "resolved" in state
    await assert_counters_equal_a_recount(pool)
