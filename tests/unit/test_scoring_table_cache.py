"""The province table is computed once per question at a time, never served older than the bound, and the
cache stays bounded (``services.scoring.table_cache``; the clock is a fake, so nothing here depends on timing)."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from datetime import date

import httpx
import pytest
from fastapi import FastAPI, HTTPException, Request, Response

from eventkit.units import UnitRegistry
from services.scoring import indicator_api
from services.scoring.configs import load_configs
from services.scoring.domain.indicators import IndicatorValue, Kind, OpenCounts
from services.scoring.domain.periods import PeriodKind
from services.scoring.indicator_api import IndicatorQueries, ProvinceTable, RankedRow, indicator_router
from services.scoring.province_table import Cell, CellMemo
from services.scoring.table_cache import FreshCache
from services.scoring.table_lane import TableLane


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


class Computation:
    """Renders ``<key>#<n>`` (n = how many computations of any key so far); can be held open or made to fail."""

    def __init__(self) -> None:
        self.calls: list[str] = []
        self.gate: asyncio.Event | None = None
        self.fail: set[str] = set()

    async def __call__(self, key: str) -> bytes:
        self.calls.append(key)
        n = len(self.calls)
        if self.gate is not None:
            await self.gate.wait()
        else:
            await asyncio.sleep(0)  # the other requests arrive while it runs
        if key in self.fail:
            raise HTTPException(503, "database unavailable")
        return f"{key}#{n}".encode()


def cache(**kwargs: object) -> tuple[FreshCache[str], Computation, Clock]:
    compute, clock = Computation(), Clock()
    options = {"max_age_s": 1.0, "refresh_after_s": 0.5, "min_lead_s": 0.2, **kwargs}
    return FreshCache(compute, clock=clock, **options), compute, clock  # type: ignore[arg-type]


async def settle() -> None:
    for _ in range(5):  # lets background refreshes run to completion
        await asyncio.sleep(0)


async def test_concurrent_requests_for_one_question_share_one_computation() -> None:
    c, compute, _ = cache()
    answers = await asyncio.gather(*(c.get("79/r06") for _ in range(50)))
    assert compute.calls == ["79/r06"]
    assert set(answers) == {b"79/r06#1"}


async def test_questions_are_kept_apart() -> None:
    c, compute, _ = cache()
    a, b = await asyncio.gather(c.get("79/r06"), c.get("79/d766"))
    assert (a, b) == (b"79/r06#1", b"79/d766#2")
    assert await c.get("79/r06") == b"79/r06#1"
    assert sorted(compute.calls) == ["79/d766", "79/r06"]


async def test_a_young_answer_is_served_without_computing_again() -> None:
    c, compute, clock = cache()
    await c.get("k")
    clock.now += 0.79  # a quick computation is refreshed 0.2 s (min_lead_s) before the age bound
    assert await c.get("k") == b"k#1"
    await settle()
    assert len(compute.calls) == 1


async def test_a_slow_computation_is_refreshed_earlier() -> None:
    c, compute, clock = cache()
    compute.gate = asyncio.Event()
    first = asyncio.ensure_future(c.get("k"))
    await settle()
    clock.now += 0.2  # it took 0.2 s: the refresh starts 3 x 0.2 s before the bound, but not before 0.5 s
    compute.gate.set()
    await first
    compute.gate = None
    clock.now += 0.49 - 0.2
    await c.get("k")
    await settle()
    assert len(compute.calls) == 1
    clock.now += 0.02
    assert await c.get("k") == b"k#1"
    await settle()
    assert len(compute.calls) == 2


async def test_an_ageing_answer_is_served_while_one_refresh_runs_in_the_background() -> None:
    c, compute, clock = cache()
    await c.get("k")
    clock.now += 0.85
    compute.gate = asyncio.Event()
    # nobody waits for the refresh: every request still gets the previous answer, and only one refresh starts
    assert [await c.get("k") for _ in range(20)] == [b"k#1"] * 20
    await settle()
    assert len(compute.calls) == 2
    compute.gate.set()
    await settle()
    assert await c.get("k") == b"k#2"
    assert len(compute.calls) == 2


async def test_an_answer_at_the_age_bound_is_never_served() -> None:
    c, compute, clock = cache()
    await c.get("k")
    clock.now += 1.0
    compute.gate = asyncio.Event()
    waiting = [asyncio.ensure_future(c.get("k")) for _ in range(10)]
    await settle()
    assert not any(w.done() for w in waiting)  # they wait for the new computation rather than get the old one
    compute.gate.set()
    assert set(await asyncio.gather(*waiting)) == {b"k#2"}
    assert len(compute.calls) == 2


async def test_the_age_counts_from_the_start_of_the_computation() -> None:
    c, compute, clock = cache()
    compute.gate = asyncio.Event()
    first = asyncio.ensure_future(c.get("k"))
    await settle()
    clock.now += 0.8  # the computation is slow: its answer is already 0.8 s old when it arrives
    compute.gate.set()
    assert await first == b"k#1"
    compute.gate = None
    clock.now += 0.2  # 1.0 s after the computation started: no longer served
    assert await c.get("k") == b"k#2"


async def test_an_error_is_not_remembered() -> None:
    c, compute, _ = cache()
    compute.fail.add("99")
    for _ in range(2):
        with pytest.raises(HTTPException):
            await c.get("99")
    assert compute.calls == ["99", "99"]
    compute.fail.clear()
    assert await c.get("99") == b"99#3"


async def test_a_failed_refresh_keeps_the_previous_answer_until_it_expires() -> None:
    c, compute, clock = cache()
    await c.get("k")
    compute.fail.add("k")
    clock.now += 0.85
    assert await c.get("k") == b"k#1"
    await settle()  # the background refresh failed
    clock.now += 0.1
    assert await c.get("k") == b"k#1"  # still young enough; another refresh was tried
    await settle()
    assert len(compute.calls) == 3
    clock.now += 0.1
    with pytest.raises(HTTPException):
        await c.get("k")  # expired: the error is the answer, not the stale table


async def test_a_client_going_away_does_not_cancel_the_shared_computation() -> None:
    c, compute, _ = cache()
    compute.gate = asyncio.Event()
    leaving, staying = asyncio.ensure_future(c.get("k")), asyncio.ensure_future(c.get("k"))
    await settle()
    leaving.cancel()
    await settle()
    compute.gate.set()
    assert await staying == b"k#1"
    assert len(compute.calls) == 1


async def test_the_least_recently_asked_question_goes_first() -> None:
    c, compute, _ = cache(max_entries=2)
    for key in ("a", "b", "a", "c"):  # c pushes out b, the least recently asked
        await c.get(key)
    assert len(c) == 2
    assert await c.get("a") == b"a#1"
    assert await c.get("b") == b"b#4"  # computed again
    assert len(c) == 2
    assert compute.calls == ["a", "b", "c", "b"]


# --- the province table route over the cache -----------------------------------------------------------


def queries() -> tuple[IndicatorQueries, list[dict[str, object]]]:
    made = IndicatorQueries(None, load_configs(), "d766-m766-2026.1", UnitRegistry.load)  # type: ignore[arg-type]
    asked: list[dict[str, object]] = []

    async def fake_table(**kwargs: object) -> ProvinceTable:  # no database: the cache and the route are tested
        asked.append(kwargs)
        await asyncio.sleep(0)
        row = RankedRow(rank=1, unitcode="26734", name="Phường Sài Gòn", value=0.5, numerator=1, denominator=2,
                        na_reason=None)  # fmt: skip
        return ProvinceTable(
            provincecode=str(kwargs["provincecode"]),
            indicator=str(kwargs["indicator"]),
            config=str(kwargs["version"]),
            period_kind=PeriodKind.MONTH,
            period_start=kwargs["start"],  # type: ignore[arg-type]
            period_end=date(2026, 3, 31),
            rows=[row],
        )

    made._table = fake_table  # type: ignore[method-assign]
    return made, asked


async def test_any_day_of_the_period_and_the_default_configuration_share_one_table() -> None:
    q, asked = queries()
    ask = {"provincecode": "79", "indicator": "r06.on_time_rate", "period": PeriodKind.MONTH, "order": "desc"}

    def key(**more: object) -> tuple[object, ...]:
        return q.table_key(**{**ask, "start": date(2026, 3, 1), "version": None, **more})  # type: ignore[arg-type]

    answers = await asyncio.gather(
        q.table_json(key()), q.table_json(key(start=date(2026, 3, 20), version="d766-m766-2026.1"))
    )
    assert len(asked) == 1
    assert asked[0]["start"] == date(2026, 3, 1)
    assert answers[0] == answers[1]
    await q.table_json(key(version="d766-td-2024.1"))
    await q.table_json(key(order="asc"))
    assert len(asked) == 3


async def test_the_route_serves_the_rendered_table_and_documents_it() -> None:
    q, asked = queries()
    checks = []
    check = q.table_key

    def counted(**kwargs: object) -> tuple[object, ...]:
        checks.append(kwargs)
        return check(**kwargs)  # type: ignore[arg-type]

    q.table_key = counted  # type: ignore[assignment,method-assign]
    app = FastAPI()
    app.include_router(indicator_router(q))
    params = {"indicator": "r06.on_time_rate", "period": "month", "start": "2026-03-15"}
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app), base_url="http://t") as api:
        first = await api.get("/provinces/79/communes", params=params)
        second = await api.get("/provinces/79/communes", params=params)  # the same query string: the fast path
        assert len(checks) == 1
        other_day = await api.get("/provinces/79/communes", params={**params, "start": "2026-03-02"})
        unknown = await api.get("/provinces/79/communes", params={**params, "indicator": "nope"})
        nowhere = await api.get("/provinces/00/communes", params=params)
        bad_day = await api.get("/provinces/79/communes", params={**params, "start": "2026-02-30"})
        again = [await api.get("/provinces/79/communes", params={**params, "indicator": "nope"}) for _ in range(2)]
        schema = (await api.get("/openapi.json")).json()
    assert first.status_code == 200
    assert first.headers["content-type"] == "application/json"
    body = ProvinceTable.model_validate_json(first.content)
    assert (body.provincecode, body.period_start, body.rows[0].unitcode) == ("79", date(2026, 3, 1), "26734")
    assert second.content == first.content == other_day.content
    assert len(asked) == 1
    # refused before the cache and never remembered as checked: each time the same refusal
    assert (unknown.status_code, nowhere.status_code, bad_day.status_code) == (422, 404, 422)
    assert [a.status_code for a in again] == [422, 422]
    ok = schema["paths"]["/provinces/{provincecode}/communes"]["get"]["responses"]["200"]
    assert ok["content"]["application/json"]["schema"] == {"$ref": "#/components/schemas/ProvinceTable"}


async def test_the_table_lane_answers_a_known_question_below_the_app_and_leaves_the_rest_to_it() -> None:
    q, asked = queries()
    reached: list[str] = []
    app = FastAPI()
    app.include_router(indicator_router(q))

    @app.middleware("http")
    async def count(request: Request, call_next: Callable[[Request], Awaitable[Response]]) -> Response:
        reached.append(request.url.path)  # what got past the lane into the app
        return await call_next(request)

    app.add_middleware(TableLane, queries=lambda: q)
    params = {"indicator": "r06.on_time_rate", "period": "month", "start": "2026-03-15"}
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app), base_url="http://t") as api:
        first = await api.get("/provinces/79/communes", params=params)  # unknown yet: checked by the route
        second = await api.get("/provinces/79/communes", params=params)  # known: the lane
        other_province = await api.get("/provinces/01/communes", params=params)  # same query, other path
        unknown = [await api.get("/provinces/79/communes", params={**params, "indicator": "nope"}) for _ in range(2)]
        posted = await api.post("/provinces/79/communes", params=params)
    assert first.status_code == second.status_code == 200
    assert second.content == first.content
    assert second.headers["content-type"] == "application/json"
    assert int(second.headers["content-length"]) == len(second.content)
    assert ProvinceTable.model_validate_json(other_province.content).provincecode == "01"
    assert [u.status_code for u in unknown] == [422, 422]  # refusals are never known: the route refuses each
    assert posted.status_code == 405
    assert reached == ["/provinces/79/communes", "/provinces/01/communes"] + ["/provinces/79/communes"] * 3
    assert len(asked) == 2  # 79 and 01: the lane reads the same cache of rendered tables


async def test_the_table_lane_passes_everything_on_before_the_service_has_started() -> None:
    app = FastAPI()

    @app.get("/provinces/{code}/communes")
    async def table(code: str) -> dict[str, str]:
        return {"from": "app"}

    app.add_middleware(TableLane, queries=lambda: None)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app), base_url="http://t") as api:
        answer = await api.get("/provinces/79/communes?indicator=x")
    assert answer.json() == {"from": "app"}


# --- scored cells are reused while a commune's inputs do not change ---------------------------------------


def test_a_scored_cell_is_made_again_only_when_its_inputs_change() -> None:
    memo = CellMemo(max_entries=3)
    made: list[str] = []

    def make(label: str) -> Callable[[], Cell]:
        return lambda: (made.append(label), (0.5, 1.0, 2.0, None))[1]  # type: ignore[return-value]

    total = ("d766.total", "d766-m766-2026.1")
    memo.cell(total, {"r06.received": 2.0, "r06.on_time": 1.0}, OpenCounts(1, 0, 0), make("a"))
    memo.cell(total, {"r06.on_time": 1.0, "r06.received": 2.0}, OpenCounts(1, 0, 0), make("b"))  # same inputs
    memo.cell(total, {"r06.received": 3.0, "r06.on_time": 1.0}, OpenCounts(1, 0, 0), make("c"))  # a new dossier
    memo.cell(total, {"r06.received": 3.0, "r06.on_time": 1.0}, OpenCounts(0, 1, 0), make("d"))  # became overdue
    assert made == ["a", "c", "d"]
    memo.cell(("d766.total", "d766-td-2024.1"), {"r06.received": 2.0}, OpenCounts(), make("e"))  # another column
    assert made == ["a", "c", "d", "e"]
    memo.cell(total, {"r06.received": 2.0, "r06.on_time": 1.0}, OpenCounts(1, 0, 0), make("f"))  # bound: cleared
    assert made == ["a", "c", "d", "e", "f"]


async def test_a_766_table_equals_its_scoring_from_scratch_when_cells_are_reused(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The same counters twice: the second table comes from reused cells and must be the same table."""
    configs = load_configs()
    q = IndicatorQueries(None, configs, "d766-m766-2026.1", UnitRegistry.load)  # type: ignore[arg-type]
    communes = UnitRegistry.load().communes_of("79")
    sums = {
        (u.code, date(2026, 3, 1)): {
            "r06.received": float(10 + i % 7),
            "d766.2_1.resolved": float(9 + i % 5),
            "d766.2_1.on_time": float(i % 9),
        }
        for i, u in enumerate(communes)
    }

    async def fake_counters(*_: object, **__: object) -> dict[tuple[str, date], dict[str, float]]:
        return sums

    async def fake_open(*_: object, **__: object) -> dict[tuple[str, date], OpenCounts]:
        return {(u.code, date(2026, 3, 1)): OpenCounts(i % 3, i % 2, 0) for i, u in enumerate(communes)}

    satisfied = {"share": 0.95}

    async def fake_outside(
        _pool: object, _scope: object, _windows: object, values: dict[object, dict[str, IndicatorValue]], **_: object
    ) -> None:
        """Group 5.4 as the feedback read model would give it: one value for every commune."""
        for unit_values in values.values():
            share = satisfied["share"]
            unit_values["d766.5_4"] = IndicatorValue(
                "d766.5_4", "5.4", Kind.RATIO, share * 100, 100.0, share, None, "", "test"
            )

    monkeypatch.setattr(indicator_api, "counters", fake_counters)  # no database: the read model's answers
    monkeypatch.setattr(indicator_api, "open_counts", fake_open)
    monkeypatch.setattr(indicator_api, "add_outside_values", fake_outside)
    ask = {"provincecode": "79", "period": PeriodKind.MONTH, "start": date(2026, 3, 1), "order": "desc"}
    for key in ("d766.total", "d766.2_1", "d766.group.tdgq"):
        first = await q._table(**ask, indicator=key, version=None)  # type: ignore[arg-type]
        misses = q._cells.misses
        second = await q._table(**ask, indicator=key, version=None)  # type: ignore[arg-type]
        assert q._cells.misses == misses  # nothing scored again
        assert second == first
    assert [r.value for r in first.rows if r.value is not None]  # the group scored: the cells are real values

    # an outside value (group 5) is an input of the cell: when it changes, the cell is scored again
    before = await q._table(**ask, indicator="d766.5_4", version=None)  # type: ignore[arg-type]
    assert {r.value for r in before.rows} == {0.95}
    misses = q._cells.misses
    satisfied["share"] = 0.5
    after = await q._table(**ask, indicator="d766.5_4", version=None)  # type: ignore[arg-type]
    assert q._cells.misses > misses
    assert {r.value for r in after.rows} == {0.5}
