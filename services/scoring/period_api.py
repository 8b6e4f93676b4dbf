"""Indicators over year-to-date and the province's reporting periods, with frozen values and corrections.

``GET /units/{code}/period-indicators?period=ytd|report|month|quarter|year&start=…[&scheme=…&report=…]``:
every dossier indicator and the 766 score of the range, live; when the period was frozen
(``chiso scoring freeze``), each value also carries the frozen value and the correction (live - frozen) made
by events that arrived after the freeze. ``GET /report-schemes``: the configured reporting schemes.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import date, datetime
from typing import Annotated

import asyncpg
from fastapi import APIRouter, HTTPException, Path, Query
from pydantic import BaseModel, ConfigDict, Field

from services.scoring.domain.activity import VN_TZ
from services.scoring.domain.config import D766Config
from services.scoring.domain.report_periods import ReportScheme
from services.scoring.ranges import PERIOD_KINDS, compute_range, flatten, load_schemes, read_frozen, resolve_range

__all__ = ["period_router"]


class _Out(BaseModel):
    model_config = ConfigDict(frozen=True)


class PeriodValue(_Out):
    """One value, live and (when the period is frozen) as frozen, with the correction."""

    key: str = Field(description="Indicator key; '<766 key>.points', 'd766.group.<key>', 'd766.total'")
    numerator: float | None
    denominator: float | None
    value: float | None = Field(description="Live value; null = N/A (see na_reason)")
    na_reason: str | None
    frozen_numerator: float | None = None
    frozen_denominator: float | None = None
    frozen_value: float | None = None
    frozen_na_reason: str | None = None
    correction: float | None = Field(default=None, description="live - frozen value (null if either is N/A)")
    corrected: bool = Field(default=False, description="Late events changed this value after the freeze")


class PeriodIndicators(_Out):
    """A unit's indicators over a day range (calendar, year-to-date or a reporting period)."""

    unitcode: str
    period: str = Field(description="e.g. 'ytd:2026-03-20', 'report:default-15th:q1:2024', 'month:2026-03-01'")
    first_day: date
    last_day: date
    cut_off: datetime
    computed_at: datetime
    config: str
    catalogue_loaded: bool = Field(description="Catalogue-dependent 766 indicators are N/A without a catalogue")
    frozen_at: datetime | None = Field(description="When the period was frozen; null = not frozen")
    corrections: int = Field(description="How many values late events changed after the freeze")
    values: list[PeriodValue]


class SchemeOut(_Out):
    """A reporting scheme (configuration)."""

    scheme: str
    name: str
    source: str
    applies_to: str
    periods: list[dict[str, object]]


def period_router(
    pool: asyncpg.Pool,
    configs: Mapping[str, D766Config],
    default_config: str,
    now: Callable[[], datetime] | None = None,
    schemes: Mapping[str, ReportScheme] | None = None,
) -> APIRouter:
    """Routes over day ranges and frozen periods."""
    router = APIRouter(tags=["indicators"])
    clock = now or (lambda: datetime.now(VN_TZ))
    known = schemes if schemes is not None else load_schemes()

    @router.get("/report-schemes", summary="The reporting periods with data cut-offs (configuration)")
    async def report_schemes() -> list[SchemeOut]:
        return [
            SchemeOut(
                scheme=s.scheme,
                name=s.name,
                source=s.source,
                applies_to=s.applies_to,
                periods=[p.model_dump() for p in s.periods],
            )
            for s in known.values()
        ]

    @router.get(
        "/units/{unitcode}/period-indicators",
        summary="A unit's indicators over year-to-date, a reporting period or a calendar period; frozen + live",
    )
    async def period_indicators(
        *,
        unitcode: Annotated[str, Path(pattern=r"^(\d{2}|\d{3}|\d{5})$")],
        period: Annotated[str, Query(description=f"One of {', '.join(PERIOD_KINDS)}")],
        start: Annotated[date, Query(description="ytd: the last day; report/calendar: any day of the period")],
        scheme: Annotated[str | None, Query(description="Reporting scheme (period=report)")] = None,
        report: Annotated[str | None, Query(description="Report key of the scheme, e.g. q1 (period=report)")] = None,
        config: Annotated[str | None, Query(description="766 configuration version")] = None,
    ) -> PeriodIndicators:
        cfg = configs.get(config or default_config)
        if cfg is None:
            raise HTTPException(404, f"unknown configuration {config!r}; known: {sorted(configs)}")
        try:
            r = resolve_range(period, start, known, scheme, report)
        except ValueError as exc:
            raise HTTPException(422, str(exc)) from exc
        result = await compute_range(pool, unitcode, r, cfg, clock())
        live = flatten(result)
        frozen = await read_frozen(pool, unitcode, r.label, cfg.version)
        values: list[PeriodValue] = []
        corrections = 0
        for key in sorted(set(live) | set(frozen.indicators if frozen else {})):
            num, den, value, reason = live.get(key, (None, None, None, "not_computed"))
            if frozen is None:
                values.append(PeriodValue(key=key, numerator=num, denominator=den, value=value, na_reason=reason))
                continue
            f_num, f_den, f_value, f_reason = frozen.indicators.get(key, (None, None, None, "not_computed"))
            corrected = (num, den, value, reason) != (f_num, f_den, f_value, f_reason)
            corrections += corrected
            delta = round(value - f_value, 6) if value is not None and f_value is not None else None
            values.append(
                PeriodValue(
                    key=key,
                    numerator=num,
                    denominator=den,
                    value=value,
                    na_reason=reason,
                    frozen_numerator=f_num,
                    frozen_denominator=f_den,
                    frozen_value=f_value,
                    frozen_na_reason=f_reason,
                    correction=delta,
                    corrected=corrected,
                )
            )
        return PeriodIndicators(
            unitcode=unitcode,
            period=r.label,
            first_day=r.first,
            last_day=r.last,
            cut_off=result.cut,
            computed_at=clock(),
            config=cfg.version,
            catalogue_loaded=result.catalogue_loaded,
            frozen_at=frozen.frozen_at if frozen else None,
            corrections=corrections,
            values=values,
        )

    return router
