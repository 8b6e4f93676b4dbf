"""The commune PAR Index (Chỉ số CCHC) from a province/year criteria tree loaded as configuration (DOMAIN §6.2).

The tree (areas -> criteria -> sub-criteria, with maxima) is a YAML file per criteria set and year in
``services/scoring/config/par`` (the scoring service's own copy: it never imports the plans service). A
criterion's score, most authoritative first:

1. the latest appraisal of the criterion (``criterion.appraised``; ``criterion.zeroed`` = 0 points, e.g. for
   missing evidence), if its maximum matches the tree's;
2. for ``event`` / ``survey`` / ``hybrid`` criteria with a ``metric``: the metric computed from the events
   (dossier timeliness, apology, online share, tasks and reports on time, SIPAS...) scored by the criterion's
   rule (``linear``: ratio x max; ``bands``: the points of the highest band reached);
3. otherwise N/A with the reason (a manual criterion needs an appraisal; a metric may have no data).

The unit's own self-assessment (``criterion.self_assessed``) is shown beside each criterion and summed into a
self-assessed total, never mixed into the appraised one. A node with sub-criteria sums them (unless the node
itself was appraised). The total is the sum of the areas, N/A unless every criterion has a score (the points
available so far are reported); % of max, the class by % (configuration) and the rank within the province
(ties share a rank) follow from it.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Literal, Self

from pydantic import BaseModel, ConfigDict, Field, model_validator

__all__ = [
    "METRICS",
    "Assessment",
    "Metric",
    "NodeScore",
    "ParResult",
    "ParTree",
    "rank",
    "score_par",
]

DECIMALS = 2

#: metrics a criterion may name -> the scoring indicator key they are read from
METRICS: Mapping[str, str] = {
    "dossier_on_time_rate": "r06.on_time_rate",
    "apology_rate": "apology.issued_rate",
    "online_share": "r06.online_share",
    "digitised_rate": "d766.4_2",
    "e_result_rate": "d766.4_1",
    "tasks_on_time_rate": "tasks.on_time_rate",
    "reports_on_time_rate": "reports.on_time_rate",
    "sipas_index": "sipas.index",
}


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class Band(_Frozen):
    """Points given when the metric is at least ``min`` (a ratio 0..1)."""

    min: float = Field(ge=0)
    points: float = Field(ge=0)


class Scoring(_Frozen):
    """How a metric becomes points."""

    type: Literal["linear", "bands"]
    bands: tuple[Band, ...] = ()


class Criterion(_Frozen):
    """A criterion or sub-criterion of the tree."""

    id: str = Field(pattern=r"^\d+(\.\d+)*[a-z]?$")
    name: str
    max: float = Field(gt=0)
    method: Literal["event", "survey", "manual", "hybrid"]
    metric: str | None = None
    scoring: Scoring | None = None
    note: str = ""
    criteria: tuple[Criterion, ...] = ()

    @model_validator(mode="after")
    def _consistent(self) -> Self:
        if self.metric is not None and self.metric not in METRICS:
            msg = f"{self.id}: unknown metric {self.metric!r}; known: {sorted(METRICS)}"
            raise ValueError(msg)
        if self.metric is not None and self.scoring is None:
            msg = f"{self.id}: a metric needs a scoring rule"
            raise ValueError(msg)
        if self.criteria and abs(sum(c.max for c in self.criteria) - self.max) > 1e-9:
            msg = f"{self.id}: sub-criteria sum to {sum(c.max for c in self.criteria)}, not {self.max}"
            raise ValueError(msg)
        if self.scoring is not None and any(b.points > self.max for b in self.scoring.bands):
            msg = f"{self.id}: a band gives more than the maximum"
            raise ValueError(msg)
        return self


class Area(_Frozen):
    """An area (lĩnh vực) of the tree."""

    id: str = Field(pattern=r"^\d+$")
    name: str
    max: float = Field(gt=0)
    criteria: tuple[Criterion, ...] = Field(min_length=1)

    @model_validator(mode="after")
    def _sums(self) -> Self:
        if abs(sum(c.max for c in self.criteria) - self.max) > 1e-9:
            msg = f"area {self.id}: criteria sum to {sum(c.max for c in self.criteria)}, not {self.max}"
            raise ValueError(msg)
        return self


class ParClass(_Frozen):
    """A class (xếp loại) reached at ``min_percent`` of the maximum or more."""

    name: str
    min_percent: float = Field(ge=0, le=100)


class ParTree(_Frozen):
    """One province's criteria tree for one year and level."""

    criteria_set_id: str
    province: str = Field(pattern=r"^\d{2}$")
    year: int = Field(ge=2000, le=2100)
    level: Literal["commune", "district", "department"]
    source_decision: str
    points_note: str = Field(description="Where the maxima come from, or that they are an example")
    classes_source: str
    classes: tuple[ParClass, ...]
    areas: tuple[Area, ...] = Field(min_length=1)

    @model_validator(mode="after")
    def _consistent(self) -> Self:
        ids = [c.id for c in self.nodes()]
        if len(ids) != len(set(ids)):
            msg = "criterion ids must be unique"
            raise ValueError(msg)
        mins = [c.min_percent for c in self.classes]
        if mins != sorted(mins, reverse=True):
            msg = "classes must be listed from the highest threshold down"
            raise ValueError(msg)
        return self

    @property
    def max_points(self) -> float:
        """The maximum total."""
        return sum(a.max for a in self.areas)

    def nodes(self) -> list[Criterion]:
        """Every criterion and sub-criterion, depth first."""
        out: list[Criterion] = []

        def walk(cs: Sequence[Criterion]) -> None:
            for c in cs:
                out.append(c)
                walk(c.criteria)

        walk([c for a in self.areas for c in a.criteria])
        return out

    def metrics(self) -> set[str]:
        """The scoring indicator keys the tree's metrics read."""
        return {METRICS[c.metric] for c in self.nodes() if c.metric is not None}


@dataclass(frozen=True, slots=True)
class Assessment:
    """The latest self-assessment and appraisal (or zeroing) of one criterion of one unit and year."""

    self_score: float | None = None
    self_max: float | None = None
    appraised_score: float | None = None
    appraised_max: float | None = None
    zeroed_reason: str | None = None
    appraiser: str | None = None
    appraised_at: datetime | None = None


@dataclass(frozen=True, slots=True)
class Metric:
    """A metric's value for the unit and year (a ratio 0..1), or why it is N/A."""

    value: float | None
    detail: str = ""


@dataclass(frozen=True, slots=True)
class NodeScore:
    """The score of an area or criterion."""

    id: str
    name: str
    max: float
    method: str
    score: float | None
    basis: str  # appraised | zeroed | computed | sum | n/a
    self_score: float | None
    metric: str | None
    metric_value: float | None
    detail: str
    children: tuple[NodeScore, ...] = field(default=())


@dataclass(frozen=True, slots=True)
class ParResult:
    """The PAR Index of one unit and year under one tree."""

    criteria_set_id: str
    year: int
    total: float | None
    self_total: float | None
    max_points: float
    points_available: float
    percent: float | None
    klass: str | None
    detail: str
    areas: tuple[NodeScore, ...]


def _metric_points(c: Criterion, value: float) -> float:
    assert c.scoring is not None
    if c.scoring.type == "linear":
        return round(min(1.0, max(0.0, value)) * c.max, DECIMALS)
    reached = [b.points for b in c.scoring.bands if value >= b.min - 1e-12]
    return max(reached, default=0.0)


def _node(c: Criterion, metrics: Mapping[str, Metric], assessed: Mapping[str, Assessment]) -> NodeScore:  # noqa: PLR0911
    a = assessed.get(c.id, Assessment())
    self_score = a.self_score if a.self_max is None or abs(a.self_max - c.max) < 1e-9 else None
    children = tuple(_node(s, metrics, assessed) for s in c.criteria)
    metric = metrics.get(c.metric) if c.metric else None

    def made(score: float | None, basis: str, detail: str) -> NodeScore:
        return NodeScore(
            c.id,
            c.name,
            c.max,
            c.method,
            score,
            basis,
            self_score,
            c.metric,
            metric.value if metric else None,
            detail,
            children,
        )

    if a.appraised_score is not None:
        if a.appraised_max is not None and abs(a.appraised_max - c.max) > 1e-9:
            return made(None, "n/a", f"appraised against a maximum of {a.appraised_max:g}; the tree says {c.max:g}")
        basis = "zeroed" if a.zeroed_reason else "appraised"
        detail = f"{a.appraiser or ''}: {a.zeroed_reason}" if a.zeroed_reason else (a.appraiser or "")
        return made(a.appraised_score, basis, detail)
    if children:
        missing = [ch.id for ch in children if ch.score is None]
        if missing:
            return made(None, "n/a", f"no score yet for {', '.join(missing)}")
        return made(round(sum(ch.score or 0.0 for ch in children), DECIMALS), "sum", "")
    if c.metric is not None:
        if metric is None or metric.value is None:
            why = metric.detail if metric else "metric not computed"
            return made(None, "n/a", f"{c.metric} ({METRICS[c.metric]}) is N/A: {why}")
        rule = c.scoring.type if c.scoring else ""
        return made(_metric_points(c, metric.value), "computed", f"{c.metric} = {metric.value:.4f}, {rule}")
    why = (
        "a manual criterion is scored by its appraisal; none recorded"
        if c.method == "manual"
        else "no metric configured for this criterion and no appraisal recorded"
    )
    return made(None, "n/a", why)


def _sum_self(node: NodeScore) -> float | None:
    if node.self_score is not None:
        return node.self_score
    if not node.children:
        return None
    parts = [_sum_self(ch) for ch in node.children]
    return None if any(p is None for p in parts) else sum(p or 0.0 for p in parts)


def _available(node: NodeScore) -> float:
    if node.score is not None:
        return node.score
    return sum(_available(ch) for ch in node.children)


def score_par(tree: ParTree, metrics: Mapping[str, Metric], assessed: Mapping[str, Assessment]) -> ParResult:
    """Score every criterion, the areas, the total, % of max and the class of one unit and year."""
    areas: list[NodeScore] = []
    for area in tree.areas:
        children = tuple(_node(c, metrics, assessed) for c in area.criteria)
        missing = [ch.id for ch in children if ch.score is None]
        score = None if missing else round(sum(ch.score or 0.0 for ch in children), DECIMALS)
        self_parts = [_sum_self(ch) for ch in children]
        self_score = None if any(p is None for p in self_parts) else sum(p or 0.0 for p in self_parts)
        areas.append(
            NodeScore(
                area.id,
                area.name,
                area.max,
                "area",
                score,
                "sum" if score is not None else "n/a",
                self_score,
                None,
                None,
                f"no score yet for {', '.join(missing)}" if missing else "",
                children,
            )
        )
    available = round(sum(_available(a) for a in areas), DECIMALS)
    incomplete = [a.id for a in areas if a.score is None]
    self_parts = [a.self_score for a in areas]
    self_total = None if any(p is None for p in self_parts) else round(sum(p or 0.0 for p in self_parts), DECIMALS)
    if incomplete:
        return ParResult(
            tree.criteria_set_id,
            tree.year,
            None,
            self_total,
            tree.max_points,
            available,
            None,
            None,
            f"areas without a complete score: {', '.join(incomplete)}",
            tuple(areas),
        )
    total = round(sum(a.score or 0.0 for a in areas), DECIMALS)
    percent = round(100 * total / tree.max_points, DECIMALS)
    klass = next((c.name for c in tree.classes if percent >= c.min_percent - 1e-9), None)
    detail = "" if klass else "below the lowest configured class"
    return ParResult(
        tree.criteria_set_id,
        tree.year,
        total,
        self_total,
        tree.max_points,
        available,
        percent,
        klass,
        detail,
        tuple(areas),
    )


def rank(values: Mapping[str, float | None], *, descending: bool = True) -> dict[str, int | None]:
    """Competition ranks (1, 2, 2, 4) of the units with a value; None for N/A."""
    have = sorted(((v, k) for k, v in values.items() if v is not None), key=lambda t: -t[0] if descending else t[0])
    out: dict[str, int | None] = dict.fromkeys(values)
    previous: float | None = None
    current = 0
    for position, (v, k) in enumerate(have, 1):
        if v != previous:
            current, previous = position, v
        out[k] = current
    return out
