"""The province table is computed once per question per TTL, however many dashboards ask at once."""

from __future__ import annotations

import asyncio
from datetime import date

import pytest
from fastapi import HTTPException

from services.scoring.domain.periods import PeriodKind
from services.scoring.indicator_api import IndicatorQueries


def queries() -> tuple[IndicatorQueries, list[tuple[str, str]]]:
    made = IndicatorQueries(None, {}, "none", lambda: None)  # type: ignore[arg-type]  # no database is touched
    calls: list[tuple[str, str]] = []

    async def fake_table(**kwargs):
        calls.append((kwargs["provincecode"], kwargs["indicator"]))
        await asyncio.sleep(0.01)  # long enough for the other requests to arrive while it runs
        if kwargs["provincecode"] == "99":
            raise HTTPException(404, "no current province '99'")
        return {"province": kwargs["provincecode"], "call": len(calls)}

    made._table = fake_table  # type: ignore[method-assign]
    return made, calls


def ask(q: IndicatorQueries, province: str = "79", indicator: str = "r06.on_time_rate"):
    return q.table(
        provincecode=province,
        indicator=indicator,
        period=PeriodKind.MONTH,
        start=date(2026, 3, 1),
        version=None,
        order="desc",
    )


async def test_concurrent_requests_for_one_table_share_one_computation() -> None:
    q, calls = queries()
    answers = await asyncio.gather(*(ask(q) for _ in range(50)))
    assert calls == [("79", "r06.on_time_rate")]
    assert all(a == answers[0] for a in answers)
    await ask(q, indicator="d766.2_1")  # another question is computed on its own
    assert len(calls) == 2


async def test_the_answer_is_recomputed_once_the_ttl_has_passed() -> None:
    q, calls = queries()
    q.table_ttl_s = 0.0
    first = await ask(q)
    second = await ask(q)
    assert len(calls) == 2
    assert first != second


async def test_an_error_is_not_remembered() -> None:
    q, calls = queries()
    for _ in range(2):
        with pytest.raises(HTTPException):
            await ask(q, province="99")
    assert len(calls) == 2
