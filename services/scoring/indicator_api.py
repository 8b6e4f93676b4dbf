"""The dashboards' indicator API: one unit's indicators, the province table, time series, explain.

Values are computed on read from the counters (and the dossiers open at the period's cut-off): the counters
are kept by the projection exactly once, and the formulas and point allocations are configuration, so a
new configuration version applies to the whole history at once without a rebuild.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable, Coroutine, Mapping, Sequence
from datetime import date, datetime
from enum import StrEnum
from typing import Annotated, Any, Literal

import asyncpg
from fastapi import APIRouter, HTTPException, Path, Query, Request
from fastapi.responses import PlainTextResponse, Response
from fastapi.routing import APIRoute
from pydantic import BaseModel, ConfigDict, Field

from eventkit.units import Unit, UnitRegistry
from services.scoring.catalogue import catalogue_for
from services.scoring.configs import load_aggregators, load_par_trees, load_target_map
from services.scoring.domain.activity import VN_TZ
from services.scoring.domain.config import D766Config
from services.scoring.domain.indicators import (
    REPORT06,
    SPECS,
    D766Score,
    GroupScore,
    IndicatorValue,
    Kind,
    NaReason,
    OpenCounts,
    ScoredIndicator,
    compute,
    d766_score,
)
from services.scoring.domain.par import METRICS, Metric, NodeScore, ParResult, ParTree, rank, score_par
from services.scoring.domain.periods import PeriodKind, period_start, periods_between
from services.scoring.domain.programme import PLAN_KEYS, plan_values, survey_blocks, survey_keys, survey_values
from services.scoring.domain.surveys import Aggregator, SurveyValue
from services.scoring.domain.targets import TargetMap, compare, mapping_for, period_of
from services.scoring.explain_more import (
    PLAN_EXPLAIN,
    evidence_csv,
    evidence_rows,
    explain_plan,
    explain_survey,
    par_evidence,
    survey_refs,
)
from services.scoring.feedback import FEEDBACK_KEYS, ExplainedFeedback, explain_feedback
from services.scoring.outside_values import add_outside_values, needs_outside_values
from services.scoring.papi import read_papi
from services.scoring.province_table import Cell, CellMemo, plan_column
from services.scoring.readmodel import (
    PeriodWindow,
    Scope,
    SurveyCounters,
    count_explained,
    counters,
    explain,
    open_counts,
    par_assessments,
    plan_counts,
    plan_targets,
    scope_of,
    survey_counters,
)
from services.scoring.readmodel import window as make_window
from services.scoring.table_cache import FreshCache

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
    surveys: list[SurveyBlock] = Field(default=[], description="SIPAS and PAPI-proxy, per instrument version")
    plans: list[IndicatorOut] = Field(default=[], description="Tasks and reports on time")
    par: ParOut | None = Field(default=None, description="PAR Index of the period's year (communes)")
    par_na_reason: str | None = None


class SurveyIndicatorOut(_Out):
    """A survey indicator: n, value (fraction 0..1) and its 95% interval, or N/A with the reason."""

    key: str
    name: str
    numerator: float | None
    n: float = Field(description="The denominator (respondents or answers); 0 -> N/A")
    value: float | None
    ci_low: float | None = Field(description="95% interval, lower bound")
    ci_high: float | None = Field(description="95% interval, upper bound")
    ci_method: str = Field(description="wilson (a proportion) or normal_conservative (a mean of proportions)")
    na_reason: str | None
    detail: str
    source: str


class SurveyBlock(_Out):
    """The indicators of one instrument version answered in the period (SIPAS or the PAPI-proxy)."""

    instrument_id: str
    instrument_version: str
    kind: str = Field(description="sipas | papi_proxy | unconfigured (no aggregator for this version: N/A)")
    label: str = Field(description="What the values are; a PAPI-proxy is never PAPI")
    indicators: list[SurveyIndicatorOut]


class ParNodeOut(_Out):
    """An area or criterion of the PAR tree and its score."""

    id: str
    name: str
    max: float
    method: str
    score: float | None
    basis: str = Field(description="appraised | zeroed | computed (from events) | sum | n/a")
    self_score: float | None
    metric: str | None
    metric_value: float | None
    detail: str
    children: list[ParNodeOut]


class ParOut(_Out):
    """The PAR Index of a commune for a year under its province's criteria tree."""

    criteria_set_id: str
    province: str
    year: int
    level: str
    source_decision: str
    points_note: str
    total: float | None
    self_total: float | None
    max_points: float
    points_available: float
    percent: float | None
    classification: str | None
    classes_source: str
    rank: int | None = Field(description="Rank by % of max among the province's communes with a total")
    ranked: int = Field(description="Communes of the province with a total")
    detail: str
    areas: list[ParNodeOut]


class TargetOut(_Out):
    """A plan target against the indicator the scoring service computes for its period."""

    target_id: str
    plan_id: str
    plan_indicator: str
    description: str
    comparison: str
    target_value: float
    unit_of_measure: str
    period_start: date
    period_end: date
    scoring_indicator: str | None
    actual: float | None = Field(description="In the target's unit (a ratio x100 for percent)")
    met: bool | None
    final: bool = Field(description="False while the period runs: the verdict may change")
    gap: float | None
    na_reason: str | None
    detail: str


class Targets(_Out):
    """Every target set for a unit."""

    unitcode: str
    computed_at: datetime
    targets: list[TargetOut]


class PapiScore(_Out):
    """An official PAPI score: a dimension, a sub-dimension or the total (dimension 0)."""

    year: int
    province_code: str
    province_name: str
    dimension: int
    sub_dimension: str
    name: str
    score: float
    source: str


class PapiScores(_Out):
    """The imported official PAPI scores of a province (``chiso papi import``)."""

    province_code: str
    label: str
    scores: list[PapiScore]


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


class ExplainedTask(_Out):
    """A task or report behind a tasks / reports rate."""

    id: str
    kind: Literal["task", "report"]
    unitcode: str
    plan_id: str | None
    title: str | None
    due_date: date | None
    done_at: datetime | None = Field(description="Completed (task) or submitted (report)")
    on_time: bool | None
    cancelled_at: datetime | None


class ExplainedResponse(_Out):
    """A survey response behind a SIPAS or PAPI-proxy value."""

    response_id: str
    unitcode: str
    instrument_id: str
    instrument_version: str
    day: date
    channel: str
    linked_dossier_id: str | None


class Explanation(_Out):
    """A page of the dossiers (or tasks / reports, or survey responses) behind one side of an indicator."""

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
    tasks: list[ExplainedTask] = Field(default=[], description="For tasks.* and reports.* rates")
    responses: list[ExplainedResponse] = Field(default=[], description="For sipas.* and papi_proxy.* values")
    feedback: list[ExplainedFeedback] = Field(default=[], description="PAKN and ratings, for 766 group 5 (5.1-5.4)")
    note: str = Field(default="", description="What the listed items are, where it is not obvious")


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
        key=g.key,
        dvcqg_key=g.dvcqg_key,
        name=g.name,
        max_points=g.max_points,
        points=g.points,
        points_available=g.points_available,
        max_available=g.max_available,
        detail=g.detail,
        indicators=[_out(s.value, s) for s in g.indicators],
    )


def _d766_out(score: D766Score, config: D766Config) -> D766Out:
    return D766Out(
        version=score.version,
        name=config.name,
        total=score.total,
        max_points=score.max_points,
        band=score.band,
        bands_source=config.bands_source,
        detail=score.detail,
        groups=[_group_out(g) for g in score.groups],
    )


def _pick(
    key: str, values: Mapping[str, IndicatorValue], score: D766Score
) -> tuple[float | None, float | None, float | None, str | None]:
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


#: how long a computed province table is served to further requests for the same table (seconds)
TABLE_TTL_S = 1.0
_TABLE_CACHE_SIZE = 256
_CHECKED_QUERIES = 4096
#: (province, indicator, period kind, period start, configuration version, order): one province table question
TableKey = tuple[str, str, PeriodKind, date, str, str]


class IndicatorQueries:
    """The computations behind the routes (kept out of the route functions so each stays a thin adapter)."""

    def __init__(
        self,
        pool: asyncpg.Pool,
        configs: Mapping[str, D766Config],
        default_config: str,
        units: Callable[[], UnitRegistry],
        now: Callable[[], datetime] | None = None,
        *,
        aggregators: Mapping[tuple[str, str], Aggregator] | None = None,
        par_trees: Mapping[tuple[str, int], ParTree] | None = None,
        target_map: TargetMap | None = None,
    ) -> None:
        self._pool = pool
        self._configs = configs
        self._default = default_config
        self._units = units
        self._clock = now or (lambda: datetime.now(VN_TZ))
        self._aggregators = aggregators if aggregators is not None else load_aggregators()
        self._par_trees = par_trees if par_trees is not None else load_par_trees()
        self._targets = target_map or load_target_map()
        self._survey_keys = survey_keys(self._aggregators)
        self._extra_keys = self._survey_keys | set(PLAN_KEYS) | set(PAR_KEYS)
        self._tables = FreshCache(self._render_table, max_age_s=TABLE_TTL_S, max_entries=_TABLE_CACHE_SIZE)
        #: (province, raw query string) -> the question it was checked as (only answers that were not 4xx)
        self._checked: dict[tuple[str, bytes], TableKey] = {}
        self._cells = CellMemo()

    def config(self, version: str | None) -> D766Config:
        """A configuration version (404 if unknown)."""
        config = self._configs.get(version or self._default)
        if config is None:
            raise HTTPException(404, f"unknown configuration {version!r}; known: {sorted(self._configs)}")
        return config

    def check_key(self, key: str, config: D766Config) -> None:
        """422 unless ``key`` is an indicator, a 766 group or the 766 total."""
        groups = {f"d766.group.{g.key}" for g in config.groups}
        if key in SPECS or config.indicator(key) or key == "d766.total" or key in groups:
            return
        if key in self._extra_keys:
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
        values.update(await catalogue_for(self._pool, unitcode, w.start, w.end, values))  # {} without a catalogue
        await add_outside_values(self._pool, scope, [w], {(unitcode, w.start): values}, catalogue=False)  # group 5
        surveys, plans = await self.extras(scope, [w])
        blocks = survey_blocks(self._aggregators, surveys.get((unitcode, w.start), {}))
        par, par_reason = await self.unit_par(unitcode, w.start.year)
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
            surveys=[_block_out(agg, ref, vals) for agg, ref, vals in blocks],
            plans=[_out(v) for v in plan_values(plans.get((unitcode, w.start), {})).values()],
            par=par,
            par_na_reason=par_reason,
        )

    async def extras(
        self, scope: Scope, windows: list[PeriodWindow], *, by_unit: bool = False
    ) -> tuple[dict[tuple[str, date], SurveyCounters], dict[tuple[str, date], dict[str, float]]]:
        """Survey counters and plan counts per (unit or scope, period)."""
        surveys = await survey_counters(self._pool, scope, windows[0].kind, [w.start for w in windows], by_unit=by_unit)
        plans = await plan_counts(self._pool, scope, windows, by_unit=by_unit)
        return surveys, plans

    async def flat(
        self, scope: Scope, windows: list[PeriodWindow], key: str | None, *, by_unit: bool = False
    ) -> dict[tuple[str, date], dict[str, IndicatorValue]]:
        """Every flat indicator value (dossiers, plans, surveys; PAR for ``par.*`` keys) per (unit, period)."""
        data = await self.evaluate(scope, windows, by_unit=by_unit)
        surveys, plans = await self.extras(scope, windows, by_unit=by_unit)
        out: dict[tuple[str, date], dict[str, IndicatorValue]] = {}
        for k in set(data) | set(surveys) | set(plans):
            sums, opened = data.get(k, ({}, OpenCounts()))
            values = dict(compute(list(SPECS), sums, opened))
            values.update(plan_values(plans.get(k, {})))
            values.update(survey_values(self._aggregators, survey_blocks(self._aggregators, surveys.get(k, {}))))
            out[k] = values
        if key is not None and key.startswith("par."):
            for w in windows:
                for unit, values in out.items():
                    if unit[1] == w.start:
                        values.update(await self._par_values(unit[0], w.start.year))
        return out

    async def _par_values(self, unitcode: str, year: int) -> dict[str, IndicatorValue]:
        par, reason = await self.unit_par(unitcode, year)
        return _par_flat(par, reason)

    def _tree(self, province: str, year: int) -> ParTree | None:
        return self._par_trees.get((province, year))

    async def province_par(self, province: str, year: int) -> tuple[ParTree, dict[str, ParResult]] | None:
        """The PAR Index of every current commune of a province for a year (None: no tree configured)."""
        tree = self._tree(province, year)
        if tree is None:
            return None
        w = make_window(PeriodKind.YEAR, date(year, 1, 1), self._clock())
        scope = Scope("provincecode", province)
        flat = await self.flat(scope, [w], None, by_unit=True)
        assessed = await par_assessments(self._pool, scope, tree.criteria_set_id, year, by_unit=True)
        empty = dict(compute(list(SPECS), {}, OpenCounts()))
        empty.update(plan_values({}))
        empty.update(survey_values(self._aggregators, []))
        results = {}
        for unit in self._units().communes_of(province):
            values = flat.get((unit.code, w.start), empty)
            metrics = {
                name: Metric(values[key].value, values[key].detail or (values[key].na_reason or ""))
                for name, key in METRICS.items()
                if key in values
            }
            results[unit.code] = score_par(tree, metrics, assessed.get(unit.code, {}))
        return tree, results

    async def province_par_values(self, province: str, year: int) -> dict[str, dict[str, IndicatorValue]]:
        """The flat PAR values (``par.*``) of every commune of a province (empty: no tree configured)."""
        found = await self.province_par(province, year)
        if found is None:
            return {}
        ranks = rank({u: r.percent for u, r in found[1].items()})
        return {u: _par_flat_result(r, ranks[u]) for u, r in found[1].items()}

    async def unit_par(self, unitcode: str, year: int) -> tuple[ParOut | None, str | None]:
        """The PAR Index of a commune and its rank in the province, or why there is none."""
        if len(unitcode) != 5:
            return None, "the PAR Index is per commune: see /provinces/{code}/communes?indicator=par.percent"
        commune = self._units().commune(unitcode)
        if commune is None:
            return None, f"{unitcode} is not a current commune"
        found = await self.province_par(commune.province_code, year)
        if found is None:
            return None, f"no PAR criteria tree configured for province {commune.province_code} and {year}"
        tree, results = found
        ranks = rank({u: r.percent for u, r in results.items()})
        result = results[unitcode]
        return _par_out(tree, result, ranks[unitcode], sum(r is not None for r in ranks.values())), None

    async def targets(self, unitcode: str) -> Targets:
        """Every target set for the unit against the actual of its indicator and period."""
        now = self._clock()
        out = []
        for t in await plan_targets(self._pool, unitcode):
            mapping = mapping_for(self._targets.mappings, t["indicator_key"])
            kind = period_of(t["period_start"], t["period_end"])
            actual: float | None = None
            reason: str | None = None
            detail = mapping.reason
            final = make_window(kind or PeriodKind.YEAR, t["period_start"], now).cut < now if kind else False
            if mapping.indicator is None:
                reason = "not_computed"
            elif kind is None:
                reason, detail = "not_applicable", "the target's period is not a calendar month, quarter or year"
            else:
                w = make_window(kind, t["period_start"], now)
                values = (await self.flat(scope_of(unitcode), [w], mapping.indicator)).get((unitcode, w.start))
                value = values.get(mapping.indicator) if values else None
                if value is None:
                    reason, detail = "empty_denominator", f"no data for {mapping.indicator} in this period"
                elif value.value is None:
                    reason = value.na_reason.value if value.na_reason else "not_computed"
                    detail = f"{mapping.indicator}: {value.detail}"
                else:
                    actual = round(value.value * mapping.scale, 4)
            verdict = compare(actual, t["comparison"], t["target_value"])
            out.append(
                TargetOut(
                    target_id=t["target_id"],
                    plan_id=t["plan_id"],
                    plan_indicator=t["indicator_key"],
                    description=t["description"],
                    comparison=t["comparison"],
                    target_value=t["target_value"],
                    unit_of_measure=t["unit_of_measure"],
                    period_start=t["period_start"],
                    period_end=t["period_end"],
                    scoring_indicator=mapping.indicator,
                    actual=actual,
                    met=verdict.met,
                    final=final,
                    gap=verdict.gap,
                    na_reason=reason,
                    detail=detail,
                )
            )
        return Targets(unitcode=unitcode, computed_at=now, targets=out)

    async def papi(self, provincecode: str, year: int | None) -> PapiScores:
        """The imported official PAPI scores of a province."""
        rows = await read_papi(self._pool, provincecode, year)
        return PapiScores(
            province_code=provincecode,
            label="PAPI (official, imported; UNDP/CECODES)",
            scores=[PapiScore(**{k: r[k] for k in PapiScore.model_fields}) for r in rows],
        )

    def table_key(
        self, *, provincecode: str, indicator: str, period: PeriodKind, start: date, version: str | None, order: str
    ) -> TableKey:
        """The province table question, checked (404/422 here, so an error is never cached) and normalised: any
        day of the period, and the default configuration named or not, make one question."""
        cfg = self.config(version)
        self.check_key(indicator, cfg)
        if not self._units().communes_of(provincecode):
            raise HTTPException(404, f"no current province {provincecode!r}")
        return (provincecode, indicator, period, period_start(period, start), cfg.version, order)

    def remember_checked(self, provincecode: str, query_string: bytes, key: TableKey) -> None:
        """``query_string`` (raw) asks ``key`` of the province: the next time it can skip the checks."""
        if len(self._checked) >= _CHECKED_QUERIES:
            self._checked.clear()  # bounded: a flood of distinct query strings only costs the checks again
        self._checked[(provincecode, query_string)] = key

    def checked_table(self, provincecode: str, query_string: bytes) -> TableKey | None:
        """The question a path's province and raw query string were checked as, if they were."""
        return self._checked.get((provincecode, query_string))

    async def table_json(self, key: TableKey) -> bytes:
        """The province table (see :meth:`_table`) as JSON, from a cache of rendered tables: a dashboard wall of
        100 clients asking for it shares one computation per ``TABLE_TTL_S`` (see ``table_cache``: never older
        than that — the "live within a second" the issue asks for — and refreshed in the background while the
        previous answer is still young enough to serve)."""
        return await self._tables.get(key)

    async def _render_table(self, key: TableKey) -> bytes:
        provincecode, indicator, period, start, version, order = key
        table = await self._table(
            provincecode=provincecode, indicator=indicator, period=period, start=start, version=version, order=order
        )
        return table.model_dump_json().encode()

    async def _table(
        self, *, provincecode: str, indicator: str, period: PeriodKind, start: date, version: str | None, order: str
    ) -> ProvinceTable:
        """Every current commune of the province, ranked; communes without data are listed as N/A, last."""
        cfg = self.config(version)
        self.check_key(indicator, cfg)
        communes = self._units().communes_of(provincecode)
        if not communes:
            raise HTTPException(404, f"no current province {provincecode!r}")
        w = make_window(period, period_start(period, start), self._clock())
        rows = []
        if indicator in self._extra_keys:
            extra = await self._extra_table(provincecode, indicator, w)
            for unit in communes:
                v = extra.get(unit.code)
                rows.append((unit, *(_pick_value(v) if v else (None, None, None, "empty_denominator"))))
        else:
            rows.extend(await self._dossier_column(provincecode, indicator, cfg, w, communes))
        sign = -1 if order == "desc" else 1
        rows.sort(key=lambda r: (r[1] is None, sign * (r[1] or 0.0), r[0].code))
        ranked: list[RankedRow] = []
        rank, previous = 0, None
        for position, (unit, value, num, den, reason) in enumerate(rows, 1):
            if value is not None and value != previous:
                rank, previous = position, value  # ties share a rank (1, 2, 2, 4)
            ranked.append(
                RankedRow(
                    rank=rank if value is not None else None,
                    unitcode=unit.code,
                    name=unit.name,
                    value=value,
                    numerator=num,
                    denominator=den,
                    na_reason=reason,
                )
            )
        return ProvinceTable(
            provincecode=provincecode,
            indicator=indicator,
            config=cfg.version,
            period_kind=period,
            period_start=w.start,
            period_end=w.end,
            rows=ranked,
        )

    async def _dossier_column(
        self, provincecode: str, indicator: str, cfg: D766Config, w: PeriodWindow, communes: Sequence[Unit]
    ) -> list[tuple[Unit, float | None, float | None, float | None, str | None]]:
        """(commune, value, numerator, denominator, N/A reason) of a counter-based key, computing only what the
        key needs (``province_table.plan_column``); the counters and the open dossiers are read concurrently."""
        plan = plan_column(indicator, cfg)
        scope = Scope("provincecode", provincecode)
        catalogue, feedback = needs_outside_values(indicator, cfg)  # catalogue and group-5 values
        outside = catalogue or feedback
        # the outside values read d766.1_4 and d766.2_1 (which need the open counts): every spec'd value then
        keys = tuple(SPECS) if outside else plan.keys
        if plan.needs_open or outside:
            sums, opened = await asyncio.gather(
                counters(self._pool, scope, w.kind, [w.start], by_unit=True),
                open_counts(self._pool, scope, [w], by_unit=True),
            )
        else:
            sums, opened = await counters(self._pool, scope, w.kind, [w.start], by_unit=True), {}
        none = OpenCounts()
        no_score = D766Score(cfg.version, None, cfg.max_points, None, "", ())
        column_key, scoring = (indicator, cfg.version), plan.score
        with_outside: dict[tuple[str, date], dict[str, IndicatorValue]] = {}
        if outside:
            for unit in communes:
                k = (unit.code, w.start)
                with_outside[k] = compute(keys, sums.get(k, {}), opened.get(k, none))
            await add_outside_values(
                self._pool, scope, [w], with_outside, by_unit=True, catalogue=catalogue, feedback=feedback
            )

        def column() -> list[tuple[Unit, float | None, float | None, float | None, str | None]]:
            out = []
            for unit in communes:
                k = (unit.code, w.start)
                sums_k, opened_k = sums.get(k, {}), opened.get(k, none)
                known = with_outside.get(k)
                if scoring is None:  # a few µs a commune
                    values = known if known is not None else compute(keys, sums_k, opened_k)
                    out.append((unit, *_pick(indicator, values, no_score)))
                else:

                    def scored(
                        sums_k: dict[str, float] = sums_k,
                        opened_k: OpenCounts = opened_k,
                        known: dict[str, IndicatorValue] | None = known,
                    ) -> Cell:
                        values = known if known is not None else compute(keys, sums_k, opened_k)
                        return _pick(indicator, values, d766_score(scoring, values))

                    # the catalogue and group-5 values are inputs of the cell too: a change there scores it again
                    extra = tuple(sorted((n, v) for n, v in known.items() if n not in SPECS)) if known else ()
                    out.append((unit, *self._cells.cell(column_key, sums_k, opened_k, scored, extra)))
            return out

        if scoring is None:
            return column()
        # scoring the communes whose inputs changed (all 168 at worst: ≈ 75 ms of CPU) runs in a thread, so the
        # event loop keeps serving the cached tables meanwhile (the GIL is handed over every few milliseconds)
        return await asyncio.to_thread(column)

    async def _extra_table(self, provincecode: str, indicator: str, w: PeriodWindow) -> dict[str, IndicatorValue]:
        if indicator.startswith("par."):
            found = await self.province_par(provincecode, w.start.year)
            if found is None:
                return {}
            _, results = found
            ranks = rank({u: r.percent for u, r in results.items()})
            return {u: _par_flat_result(r, ranks[u])[indicator] for u, r in results.items()}
        flat = await self.flat(Scope("provincecode", provincecode), [w], indicator, by_unit=True)
        return {u: values[indicator] for (u, start), values in flat.items() if start == w.start and indicator in values}

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
        extra = indicator in self._extra_keys
        data = await self.evaluate(scope_of(unitcode), windows) if not extra else {}
        flat = await self.flat(scope_of(unitcode), windows, indicator) if extra else {}
        computed = {}
        if not extra:  # dossier values, then the catalogue and group-5 values the indicator needs
            for w in windows:
                sums, opened = data.get((unitcode, w.start), ({}, OpenCounts()))
                computed[(unitcode, w.start)] = compute(list(SPECS), sums, opened)
            catalogue, feedback = needs_outside_values(indicator, cfg)
            await add_outside_values(
                self._pool, scope_of(unitcode), windows, computed, catalogue=catalogue, feedback=feedback
            )
        points = []
        for w in windows:
            if extra:
                v = flat.get((unitcode, w.start), {}).get(indicator)
                if v is None and indicator.startswith("par."):
                    v = (await self._par_values(unitcode, w.start.year)).get(indicator)
                value, num, den, reason = _pick_value(v) if v else (None, None, None, "empty_denominator")
            else:
                values = computed[(unitcode, w.start)]
                value, num, den, reason = _pick(indicator, values, d766_score(cfg, values))
            points.append(
                SeriesPoint(
                    period_start=w.start,
                    period_end=w.end,
                    value=value,
                    numerator=num,
                    denominator=den,
                    na_reason=reason,
                )
            )
        return Series(unitcode=unitcode, indicator=indicator, config=cfg.version, period_kind=period, points=points)

    async def explain(
        self,
        *,
        unitcode: str,
        indicator: str,
        period: PeriodKind,
        start: date,
        part: Part,
        page: int,
        size: int,
        version: str | None,
    ) -> Explanation:
        """One page of the dossiers behind a side of the indicator, by the same spec that computes it."""
        if indicator in PLAN_EXPLAIN or indicator in self._survey_keys:
            w = make_window(period, period_start(period, start), self._clock())
            return await self._explain_extra(unitcode, indicator, w, part=part, page=page, size=size)
        if indicator in FEEDBACK_KEYS:
            w = make_window(period, period_start(period, start), self._clock())
            found = await explain_feedback(
                self._pool,
                scope_of(unitcode),
                indicator,
                part is Part.NUMERATOR,
                w,
                limit=size,
                offset=(page - 1) * size,
            )
            return Explanation(
                unitcode=unitcode,
                indicator=indicator,
                part=part,
                period_kind=period,
                period_start=w.start,
                period_end=w.end,
                total=found.total,
                page=page,
                size=size,
                dossiers=[_explained(r) for r in found.dossier_rows],
                feedback=found.items,
                note=found.note,
            )
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
            unitcode=unitcode,
            indicator=indicator,
            part=part,
            period_kind=period,
            period_start=w.start,
            period_end=w.end,
            total=total,
            page=page,
            size=size,
            dossiers=[_explained(r) for r in rows],
        )

    async def _explain_extra(
        self, unitcode: str, indicator: str, w: PeriodWindow, *, part: Part, page: int, size: int
    ) -> Explanation:
        scope = scope_of(unitcode)
        tasks: list[ExplainedTask] = []
        responses: list[ExplainedResponse] = []
        if indicator in PLAN_EXPLAIN:
            numerator = part is Part.NUMERATOR
            total, rows = await explain_plan(
                self._pool, scope, indicator, numerator, w, limit=size, offset=(page - 1) * size
            )
            tasks = [ExplainedTask(**r) for r in rows]
            note = "due in the period (due date passed at the cut-off, or done by then); cancelled tasks not counted"
        else:
            refs = survey_refs(self._aggregators, indicator)
            total, rows = await explain_survey(self._pool, scope, refs, w, limit=size, offset=(page - 1) * size)
            responses = [ExplainedResponse(**r) for r in rows]
            note = (
                "the responses on " + ", ".join("@".join(r) for r in refs) + " in the period; the read model keeps "
                "answer counts, not each response's answers, so both sides list the responses behind the value"
            )
        return Explanation(
            unitcode=unitcode,
            indicator=indicator,
            part=part,
            period_kind=w.kind,
            period_start=w.start,
            period_end=w.end,
            total=total,
            page=page,
            size=size,
            dossiers=[],
            tasks=tasks,
            responses=responses,
            note=note,
        )

    async def par_evidence_csv(self, unitcode: str, year: int) -> str:
        """Per PAR criterion of a commune: its score's source (appraisal + evidence, metric + inputs, N/A)."""
        commune = self._units().commune(unitcode)
        if commune is None:
            raise HTTPException(404, f"{unitcode} is not a current commune")
        found = await self.province_par(commune.province_code, year)
        if found is None:
            raise HTTPException(404, f"no PAR criteria tree configured for province {commune.province_code} and {year}")
        tree, results = found
        evidence = await par_evidence(self._pool, unitcode, tree.criteria_set_id, year)
        w = make_window(PeriodKind.YEAR, date(year, 1, 1), self._clock())
        values = (await self.flat(scope_of(unitcode), [w], None)).get((unitcode, w.start), {})
        return evidence_csv(evidence_rows(results[unitcode].areas, evidence, values))


_MAX_PERIODS = 240
_SCOPE_NAMES: dict[str, Literal["commune", "province", "legacy_district"]] = {
    "unitcode": "commune",
    "provincecode": "province",
    "legacy_district": "legacy_district",
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

    async def province_table(
        request: Request,
        *,
        provincecode: ProvinceCode,
        indicator: IndicatorKey,
        period: Period,
        start: Start,
        config: ConfigVersion = None,
        order: Annotated[Literal["desc", "asc"], Query(description="desc: highest value ranks first")] = "desc",
    ) -> Response:
        key = queries.table_key(
            provincecode=provincecode, indicator=indicator, period=period, start=start, version=config, order=order
        )
        queries.remember_checked(provincecode, request.scope["query_string"], key)
        return Response(await queries.table_json(key), media_type="application/json")  # rendered once per refresh

    class TableRoute(APIRoute):
        """A query string already checked once is answered straight from the cache: FastAPI's parameter
        handling costs as much as the rest of the request (≈ 250 µs of the ≈ 550 µs profiled), and the
        question — hence the answer — is the same for the same path and query string."""

        def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
            slow = super().get_route_handler()

            async def handler(request: Request) -> Response:
                key = queries.checked_table(request.path_params.get("provincecode", ""), request.scope["query_string"])
                if key is None:
                    return await slow(request)
                return Response(await queries.table_json(key), media_type="application/json")

            return handler

    router.add_api_route(
        "/provinces/{provincecode}/communes",
        province_table,
        methods=["GET"],
        summary="All communes of a province ranked by an indicator (live within a second)",
        response_model=ProvinceTable,  # the documented answer; the route returns the cached rendered bytes
        route_class_override=TableRoute,
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
            unitcode=unitcode,
            indicator=indicator,
            period=period,
            start=start,
            part=part,
            page=page,
            size=size,
            version=config,
        )

    @router.get(
        "/units/{unitcode}/par/evidence.csv",
        summary="Per PAR criterion of a commune: where its score comes from (appraisal and evidence, metric, N/A)",
        response_class=PlainTextResponse,
        responses={200: {"content": {"text/csv": {}}}},
    )
    async def par_evidence_export(
        *,
        unitcode: Annotated[str, Path(pattern=r"^\d{5}$", description="5-digit commune code")],
        year: Annotated[int, Query(ge=2000, le=2100)],
    ) -> PlainTextResponse:
        body = await queries.par_evidence_csv(unitcode, year)
        return PlainTextResponse(
            body,
            media_type="text/csv; charset=utf-8",
            headers={"Content-Disposition": f'attachment; filename="par-evidence-{unitcode}-{year}.csv"'},
        )

    @router.get("/units/{unitcode}/targets", summary="Every plan target of a unit against its actual")
    async def unit_targets(*, unitcode: UnitCode) -> Targets:
        return await queries.targets(unitcode)

    @router.get("/provinces/{provincecode}/papi", summary="Official PAPI scores of a province (imported)")
    async def papi_scores(
        *, provincecode: ProvinceCode, year: Annotated[int | None, Query(ge=2000, le=2100)] = None
    ) -> PapiScores:
        return await queries.papi(provincecode, year)

    return router


def _explained(row: Mapping[str, object]) -> ExplainedDossier:
    state = json.loads(str(row["state"]))
    return ExplainedDossier(
        dossier_id=str(row["dossier_id"]),
        unitcode=str(row["unitcode"]),
        legacy_unit=row["legacy_unit"] if row["legacy_unit"] is None else str(row["legacy_unit"]),
        **{
            k: state.get(k)
            for k in (
                "ma_tthc",
                "channel",
                "received_at",
                "due_at",
                "resolved_at",
                "final_status",
                "report06_class",
                "on_time_766",
                "overdue_due_at",
            )
        },
    )


PAR_KEYS = ("par.total", "par.percent", "par.self_total", "par.rank")
_PAR_SOURCE = "DOMAIN §6.2: the province's criteria tree (configuration)"


def _pick_value(v: IndicatorValue) -> tuple[float | None, float | None, float | None, str | None]:
    return v.value, v.numerator, v.denominator, v.na_reason.value if v.na_reason else None


def _par_flat_result(result: ParResult | None, position: int | None, reason: str = "") -> dict[str, IndicatorValue]:
    def v(key: str, name: str, value: float | None, num: float | None, den: float | None) -> IndicatorValue:
        na = None if value is not None else NaReason.NOT_COMPUTED
        detail = "" if value is not None else (reason or (result.detail if result else ""))
        kind = Kind.RATIO if key == "par.percent" else Kind.COUNT
        return IndicatorValue(key, name, kind, num, den, value, na, detail, _PAR_SOURCE)

    r = result
    return {
        "par.total": v(
            "par.total",
            "Chỉ số CCHC (điểm)",
            r.total if r else None,
            r.total if r else None,
            r.max_points if r else None,
        ),
        "par.percent": v(
            "par.percent",
            "Chỉ số CCHC (% điểm tối đa)",
            r.percent if r else None,
            r.total if r else None,
            r.max_points if r else None,
        ),
        "par.self_total": v(
            "par.self_total",
            "Điểm tự đánh giá",
            r.self_total if r else None,
            r.self_total if r else None,
            r.max_points if r else None,
        ),
        "par.rank": v("par.rank", "Thứ hạng trong tỉnh", float(position) if position else None, None, None),
    }


def _par_flat(par: ParOut | None, reason: str | None) -> dict[str, IndicatorValue]:
    if par is None:
        return _par_flat_result(None, None, reason or "")
    result = ParResult(
        par.criteria_set_id,
        par.year,
        par.total,
        par.self_total,
        par.max_points,
        par.points_available,
        par.percent,
        par.classification,
        par.detail,
        (),
    )
    return _par_flat_result(result, par.rank)


def _node_out(n: NodeScore) -> ParNodeOut:
    return ParNodeOut(
        id=n.id,
        name=n.name,
        max=n.max,
        method=n.method,
        score=n.score,
        basis=n.basis,
        self_score=n.self_score,
        metric=n.metric,
        metric_value=n.metric_value,
        detail=n.detail,
        children=[_node_out(c) for c in n.children],
    )


def _par_out(tree: ParTree, r: ParResult, position: int | None, ranked: int) -> ParOut:
    return ParOut(
        criteria_set_id=tree.criteria_set_id,
        province=tree.province,
        year=tree.year,
        level=tree.level,
        source_decision=tree.source_decision,
        points_note=tree.points_note,
        total=r.total,
        self_total=r.self_total,
        max_points=r.max_points,
        points_available=r.points_available,
        percent=r.percent,
        classification=r.klass,
        classes_source=tree.classes_source,
        rank=position,
        ranked=ranked,
        detail=r.detail,
        areas=[_node_out(a) for a in r.areas],
    )


def _survey_out(v: SurveyValue) -> SurveyIndicatorOut:
    return SurveyIndicatorOut(
        key=v.key,
        name=v.name,
        numerator=v.numerator,
        n=v.n,
        value=v.value,
        ci_low=v.ci_low,
        ci_high=v.ci_high,
        ci_method=v.ci_method,
        na_reason=v.na_reason,
        detail=v.detail,
        source=v.source,
    )


def _block_out(agg: Aggregator | None, ref: tuple[str, str], values: list[SurveyValue]) -> SurveyBlock:
    if agg is None:
        return SurveyBlock(
            instrument_id=ref[0],
            instrument_version=ref[1],
            kind="unconfigured",
            label="no aggregator configured for this instrument version: N/A",
            indicators=[],
        )
    return SurveyBlock(
        instrument_id=ref[0],
        instrument_version=ref[1],
        kind=agg.kind,
        label=agg.label,
        indicators=[_survey_out(v) for v in values],
    )
