"""The dashboards' indicator API: one unit's indicators, the province table, time series, explain.

Values are computed on read from the counters (and the dossiers open at the period's cut-off): the counters
are kept by the projection exactly once, and the formulas and point allocations are configuration, so a
new configuration version applies to the whole history at once without a rebuild.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from datetime import date, datetime
from enum import StrEnum
from typing import Annotated, Literal

import asyncpg
from fastapi import APIRouter, HTTPException, Path, Query
from pydantic import BaseModel, ConfigDict, Field

from eventkit.units import UnitRegistry
from services.scoring.domain.activity import VN_TZ
from services.scoring.domain.config import D766Config
from services.scoring.domain.indicators import (
    REPORT06,
    SPECS,
    D766Score,
    GroupScore,
    IndicatorValue,
    OpenCounts,
    ScoredIndicator,
    compute,
    d766_score,
)
from services.scoring.domain.periods import PeriodKind, period_start, periods_between
from services.scoring.readmodel import PeriodWindow, Scope, count_explained, counters, explain, open_counts, scope_of
from services.scoring.readmodel import window as make_window

__all__ = ["IndicatorQueries", "indicator_router"]

UnitCode = Annotated[
    str,
    Path(
        pattern=r"^(\d{2}|\d{3}|\d{5})$",
        description="5-digit commune, 2-digit province (rollup of its units) or 3-digit pre-2025 district",
    ),
]
ProvinceCode = Annotated[str, Path(pattern=r"^\d{2}$", description="2-digit province code")]
Period = Annotated[PeriodKind, Query(description="Kind of period")]
Start = Annotated[date, Query(description="Any day of the period (the period containing it is used)")]


class _Out(BaseModel):
    model_config = ConfigDict(frozen=True)


class IndicatorOut(_Out):
    """One indicator value: parts, value or N/A with the reason, and its source; 766 points when scored."""

    key: str = Field(description="Stable key, e.g. 'r06.on_time_rate', 'd766.2_1'")
    name: str
    kind: Literal["count", "ratio", "mean"]
    numerator: float | None
    denominator: float | None
    value: float | None = Field(description="Null = N/A (see na_reason); ratios are fractions 0..1")
    na_reason: str | None
    detail: str = Field(description="Why N/A, or the approximation used")
    source: str = Field(description="Where the definition (and for 766 the points) come from, DOMAIN tags")
    unit: str = Field(default="", description="Unit of a mean, e.g. working_hours")
    points: float | None = Field(default=None, description="766 points earned (null: N/A or not a 766 indicator)")
    max_points: float | None = Field(default=None, description="766 maximum points in this configuration")
    target: float | None = Field(default=None, description="766 target T of the §5.2 rule")


class GroupOut(_Out):
    """A 766 group: points (null unless every scored indicator has a value), and what could be scored."""

    key: str
    dvcqg_key: str
    name: str
    max_points: float
    points: float | None
    points_available: float
    max_available: float
    detail: str
    indicators: list[IndicatorOut]


class D766Out(_Out):
    """The Decision 766 index of a unit and period under one configuration version."""

    version: str
    name: str
    total: float | None
    max_points: float
    band: str | None
    bands_source: str
    detail: str
    groups: list[GroupOut]


class UnitIndicators(_Out):
    """Every indicator of one unit (or rollup) for one period."""

    unitcode: str
    scope: Literal["commune", "province", "legacy_district"]
    period_kind: PeriodKind
    period_start: date
    period_end: date
    cut_off: datetime = Field(description="Instant the open dossiers are judged at (period end, or now)")
    computed_at: datetime
    report06: list[IndicatorOut]
    d766: D766Out


class RankedRow(_Out):
    """One commune in the province table."""

    rank: int | None = Field(description="1 = best; null when N/A (listed last)")
    unitcode: str
    name: str
    value: float | None
    numerator: float | None
    denominator: float | None
    na_reason: str | None


class ProvinceTable(_Out):
    """All communes of a province ranked by one indicator."""

    provincecode: str
    indicator: str
    config: str
    period_kind: PeriodKind
    period_start: date
    period_end: date
    rows: list[RankedRow]


class SeriesPoint(_Out):
    """The indicator in one period."""

    period_start: date
    period_end: date
    value: float | None
    numerator: float | None
    denominator: float | None
    na_reason: str | None


class Series(_Out):
    """An indicator of a unit over consecutive periods."""

    unitcode: str
    indicator: str
    config: str
    period_kind: PeriodKind
    points: list[SeriesPoint]


class Part(StrEnum):
    """Which side of a ratio to explain."""

    NUMERATOR = "numerator"
    DENOMINATOR = "denominator"


class ExplainedDossier(_Out):
    """A dossier behind an indicator value, with the facts that put it there."""

    dossier_id: str
    unitcode: str
    legacy_unit: str | None
    ma_tthc: str | None
    channel: str | None
    received_at: datetime | None
    due_at: datetime | None
    resolved_at: datetime | None
    final_status: str | None
    report06_class: str | None
    on_time_766: bool | None
    overdue_due_at: datetime | None


class Explanation(_Out):
    """A page of the dossiers behind one side of an indicator."""

    unitcode: str
    indicator: str
    part: Part
    period_kind: PeriodKind
    period_start: date
    period_end: date
    total: int = Field(description="Dossiers on this side (for a distinct-TTHC ratio: the dossiers behind them)")
    page: int
    size: int
    dossiers: list[ExplainedDossier]


def _out(v: IndicatorValue, scored: ScoredIndicator | None = None) -> IndicatorOut:
    return IndicatorOut(
        key=v.key,
        name=v.name,
        kind=v.kind.value,
        numerator=v.numerator,
        denominator=v.denominator,
        value=v.value,
        na_reason=v.na_reason.value if v.na_reason else None,
        detail=v.detail,
        source=v.source,
        unit=v.unit,
        points=scored.points if scored else None,
        max_points=scored.config.points if scored else None,
        target=scored.config.target if scored else None,
    )


def _group_out(g: GroupScore) -> GroupOut:
    return GroupOut(
        key=g.key, dvcqg_key=g.dvcqg_key, name=g.name, max_points=g.max_points, points=g.points,
        points_available=g.points_available, max_available=g.max_available, detail=g.detail,
        indicators=[_out(s.value, s) for s in g.indicators],
    )


def _d766_out(score: D766Score, config: D766Config) -> D766Out:
    return D766Out(version=score.version, name=config.name, total=score.total, max_points=score.max_points,
                   band=score.band, bands_source=config.bands_source, detail=score.detail,
                   groups=[_group_out(g) for g in score.groups])


def _pick(key: str, values: Mapping[str, IndicatorValue], score: D766Score) -> tuple[
    float | None, float | None, float | None, str | None
]:
    """(value, numerator, denominator, na_reason) of any rankable key: an indicator, a 766 group or the total."""
    if key == "d766.total":
        return score.total, None, None, None if score.total is not None else "not_computed"
    if key.startswith("d766.group."):
        group = next(g for g in score.groups if g.key == key.removeprefix("d766.group."))
        return group.points, None, None, None if group.points is not None else "not_computed"
    for g in score.groups:
        for s in g.indicators:
            if s.config.key == key:
                v = s.value
                return v.value, v.numerator, v.denominator, v.na_reason.value if v.na_reason else None
    v = values[key]
    return v.value, v.numerator, v.denominator, v.na_reason.value if v.na_reason else None


class IndicatorQueries:
    """The computations behind the routes (kept out of the route functions so each stays a thin adapter)."""

    def __init__(
        self,
        pool: asyncpg.Pool,
        configs: Mapping[str, D766Config],
        default_config: str,
        units: Callable[[], UnitRegistry],
        now: Callable[[], datetime] | None = None,
    ) -> None:
        self._pool = pool
        self._configs = configs
        self._default = default_config
        self._units = units
        self._clock = now or (lambda: datetime.now(VN_TZ))

    def config(self, version: str | None) -> D766Config:
        """A configuration version (404 if unknown)."""
        config = self._configs.get(version or self._default)
        if config is None:
            raise HTTPException(404, f"unknown configuration {version!r}; known: {sorted(self._configs)}")
        return config

    @staticmethod
    def check_key(key: str, config: D766Config) -> None:
        """422 unless ``key`` is an indicator, a 766 group or the 766 total."""
        groups = {f"d766.group.{g.key}" for g in config.groups}
        if key in SPECS or config.indicator(key) or key == "d766.total" or key in groups:
            return
        raise HTTPException(422, f"unknown indicator {key!r}")

    async def evaluate(
        self, scope: Scope, windows: list[PeriodWindow], *, by_unit: bool = False
    ) -> dict[tuple[str, date], tuple[dict[str, float], OpenCounts]]:
        """Counters and open dossiers per (unit or scope, period)."""
        sums = await counters(self._pool, scope, windows[0].kind, [w.start for w in windows], by_unit=by_unit)
        opened = await open_counts(self._pool, scope, windows, by_unit=by_unit)
        return {k: (sums.get(k, {}), opened.get(k, OpenCounts())) for k in set(sums) | set(opened)}

    async def unit(self, unitcode: str, period: PeriodKind, start: date, version: str | None) -> UnitIndicators:
        """Every indicator of one unit and period."""
        cfg = self.config(version)
        scope = scope_of(unitcode)
        w = make_window(period, period_start(period, start), self._clock())
        sums, opened = (await self.evaluate(scope, [w])).get((unitcode, w.start), ({}, OpenCounts()))
        values = compute(list(SPECS), sums, opened)
        return UnitIndicators(
            unitcode=unitcode,
            scope=_SCOPE_NAMES[scope.column],
            period_kind=period,
            period_start=w.start,
            period_end=w.end,
            cut_off=w.cut,
            computed_at=self._clock(),
            report06=[_out(values[k]) for k in REPORT06],
            d766=_d766_out(d766_score(cfg, values), cfg),
        )

    async def table(
        self, *, provincecode: str, indicator: str, period: PeriodKind, start: date, version: str | None, order: str
    ) -> ProvinceTable:
        """Every current commune of the province, ranked; communes without data are listed as N/A, last."""
        cfg = self.config(version)
        self.check_key(indicator, cfg)
        communes = self._units().communes_of(provincecode)
        if not communes:
            raise HTTPException(404, f"no current province {provincecode!r}")
        w = make_window(period, period_start(period, start), self._clock())
        data = await self.evaluate(Scope("provincecode", provincecode), [w], by_unit=True)
        rows = []
        for unit in communes:
            sums, opened = data.get((unit.code, w.start), ({}, OpenCounts()))
            values = compute(list(SPECS), sums, opened)
            rows.append((unit, *_pick(indicator, values, d766_score(cfg, values))))
        sign = -1 if order == "desc" else 1
        rows.sort(key=lambda r: (r[1] is None, sign * (r[1] or 0.0), r[0].code))
        ranked: list[RankedRow] = []
        rank, previous = 0, None
        for position, (unit, value, num, den, reason) in enumerate(rows, 1):
            if value is not None and value != previous:
                rank, previous = position, value  # ties share a rank (1, 2, 2, 4)
            ranked.append(RankedRow(rank=rank if value is not None else None, unitcode=unit.code, name=unit.name,
                                    value=value, numerator=num, denominator=den, na_reason=reason))
        return ProvinceTable(provincecode=provincecode, indicator=indicator, config=cfg.version, period_kind=period,
                             period_start=w.start, period_end=w.end, rows=ranked)

    async def series(
        self, *, unitcode: str, indicator: str, period: PeriodKind, since: date, until: date, version: str | None
    ) -> Series:
        """The indicator in each period from ``since`` to ``until``."""
        cfg = self.config(version)
        self.check_key(indicator, cfg)
        starts = periods_between(period, since, until)
        if not starts or len(starts) > _MAX_PERIODS:
            raise HTTPException(422, f"give 1 to {_MAX_PERIODS} periods (from <= to)")
        now = self._clock()
        windows = [make_window(period, s, now) for s in starts]
        data = await self.evaluate(scope_of(unitcode), windows)
        points = []
        for w in windows:
            sums, opened = data.get((unitcode, w.start), ({}, OpenCounts()))
            values = compute(list(SPECS), sums, opened)
            value, num, den, reason = _pick(indicator, values, d766_score(cfg, values))
            points.append(SeriesPoint(period_start=w.start, period_end=w.end, value=value, numerator=num,
                                      denominator=den, na_reason=reason))
        return Series(unitcode=unitcode, indicator=indicator, config=cfg.version, period_kind=period, points=points)

    async def explain(
        self, *, unitcode: str, indicator: str, period: PeriodKind, start: date, part: Part, page: int, size: int,
        version: str | None,
    ) -> Explanation:
        """One page of the dossiers behind a side of the indicator, by the same spec that computes it."""
        cfg = self.config(version)
        configured = cfg.indicator(indicator)
        spec = SPECS.get(configured.computation if configured else indicator)
        if spec is None:
            raise HTTPException(422, f"{indicator!r} is not computed from dossiers (nothing to explain)")
        parts = spec.numerator if part is Part.NUMERATOR else spec.denominator
        if parts is None:
            raise HTTPException(422, f"{indicator!r} is a count: explain its numerator")
        scope = scope_of(unitcode)
        w = make_window(period, period_start(period, start), self._clock())
        total = await count_explained(self._pool, scope, parts, w)
        rows = await explain(self._pool, scope, parts, w, limit=size, offset=(page - 1) * size)
        return Explanation(
            unitcode=unitcode, indicator=indicator, part=part, period_kind=period, period_start=w.start,
            period_end=w.end, total=total, page=page, size=size, dossiers=[_explained(r) for r in rows],
        )


_MAX_PERIODS = 240
_SCOPE_NAMES: dict[str, Literal["commune", "province", "legacy_district"]] = {
    "unitcode": "commune", "provincecode": "province", "legacy_district": "legacy_district",
}
ConfigVersion = Annotated[str | None, Query(description="766 configuration version (default: the 2026 DVCQG table)")]
IndicatorKey = Annotated[str, Query(description="Indicator key, 'd766.group.<key>' or 'd766.total'")]


def indicator_router(queries: IndicatorQueries) -> APIRouter:
    """Routes computing indicators from the dossier read models."""
    router = APIRouter(tags=["indicators"])

    @router.get("/units/{unitcode}/indicators", summary="Every indicator of a unit (or rollup) for a period")
    async def unit_indicators(
        *, unitcode: UnitCode, period: Period, start: Start, config: ConfigVersion = None
    ) -> UnitIndicators:
        return await queries.unit(unitcode, period, start, config)

    @router.get("/provinces/{provincecode}/communes", summary="All communes of a province ranked by an indicator")
    async def province_table(
        *,
        provincecode: ProvinceCode,
        indicator: IndicatorKey,
        period: Period,
        start: Start,
        config: ConfigVersion = None,
        order: Annotated[Literal["desc", "asc"], Query(description="desc: highest value ranks first")] = "desc",
    ) -> ProvinceTable:
        return await queries.table(
            provincecode=provincecode, indicator=indicator, period=period, start=start, version=config, order=order
        )

    @router.get("/units/{unitcode}/series", summary="An indicator of a unit over consecutive periods")
    async def series(
        *,
        unitcode: UnitCode,
        indicator: IndicatorKey,
        period: Period,
        since: Annotated[date, Query(alias="from", description="A day of the first period")],
        until: Annotated[date, Query(alias="to", description="A day of the last period")],
        config: ConfigVersion = None,
    ) -> Series:
        return await queries.series(
            unitcode=unitcode, indicator=indicator, period=period, since=since, until=until, version=config
        )

    @router.get("/units/{unitcode}/explain", summary="The dossiers behind an indicator's numerator or denominator")
    async def explain_indicator(
        *,
        unitcode: UnitCode,
        indicator: IndicatorKey,
        period: Period,
        start: Start,
        part: Annotated[Part, Query(description="numerator or denominator")] = Part.NUMERATOR,
        page: Annotated[int, Query(ge=1, le=100_000)] = 1,
        size: Annotated[int, Query(ge=1, le=500)] = 50,
        config: ConfigVersion = None,
    ) -> Explanation:
        return await queries.explain(
            unitcode=unitcode, indicator=indicator, period=period, start=start, part=part, page=page, size=size,
            version=config,
        )

    return router


def _explained(row: Mapping[str, object]) -> ExplainedDossier:
    state = json.loads(str(row["state"]))
    return ExplainedDossier(
        dossier_id=str(row["dossier_id"]),
        unitcode=str(row["unitcode"]),
        legacy_unit=row["legacy_unit"] if row["legacy_unit"] is None else str(row["legacy_unit"]),
        **{k: state.get(k) for k in ("ma_tthc", "channel", "received_at", "due_at", "resolved_at", "final_status",
                                     "report06_class", "on_time_766", "overdue_due_at")},
    )
