"""Explain for the task-, report- and survey-based indicators, and the PAR evidence export.

- tasks / reports rates (``tasks.on_time_rate``, ``tasks.completed_rate``, ``reports.on_time_rate``): the tasks or
  reports behind the numerator or denominator, by the same rule :func:`services.scoring.readmodel.plan_counts`
  counts them with (due in the period, due date passed at the cut-off or done by then; cancelled tasks not);
- survey values (``sipas.*``, ``papi_proxy.*``): the responses of the unit in the period on the instrument
  versions whose aggregator gives the key. The read model keeps answer counts, not each response's answers, so
  both sides list the responses behind the value (the numerator is a count of answers among them);
- the PAR evidence export: one CSV row per criterion of the province's tree with where its score comes from
  (an appraisal or zeroing and the evidence refs carried by the plans events, a metric and its inputs, or
  why it is N/A).
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import asyncpg

from services.scoring.domain.activity import VN_TZ
from services.scoring.domain.indicators import IndicatorValue
from services.scoring.domain.par import METRICS, NodeScore
from services.scoring.domain.surveys import Aggregator
from services.scoring.readmodel import PeriodWindow, Scope

__all__ = [
    "PLAN_EXPLAIN",
    "EvidenceRow",
    "evidence_csv",
    "evidence_rows",
    "explain_plan",
    "explain_survey",
    "par_evidence",
    "survey_refs",
]

# key -> (table, id column, done column, numerator condition)
PLAN_EXPLAIN: Mapping[str, tuple[str, str, str, str]] = {
    "tasks.on_time_rate": ("plan_tasks", "task_id", "done_at", "x.on_time AND x.done_at < $5"),
    "tasks.completed_rate": ("plan_tasks", "task_id", "done_at", "x.done_at < $5"),
    "reports.on_time_rate": ("plan_reports", "report_id", "submitted_at", "x.on_time AND x.submitted_at < $5"),
}


def _plan_where(scope: Scope, key: str, numerator: bool) -> str:
    table, _, done, num = PLAN_EXPLAIN[key]
    cancelled = " AND x.cancelled_at IS NULL" if table == "plan_tasks" else ""
    side = f" AND {num}" if numerator else ""
    return (
        f"FROM {table} x WHERE x.{scope.column} = $1 AND x.due_date BETWEEN $2 AND $3"
        f" AND (x.due_date < $4 OR x.{done} < $5){cancelled}{side}"
    )


async def explain_plan(
    pool: asyncpg.Pool, scope: Scope, key: str, numerator: bool, w: PeriodWindow, *, limit: int, offset: int
) -> tuple[int, list[dict[str, Any]]]:
    """The total and one page of the tasks or reports on one side of a tasks / reports rate."""
    if scope.column == "legacy_district":
        return 0, []
    table, id_column, done, _ = PLAN_EXPLAIN[key]
    where = _plan_where(scope, key, numerator)
    args = (scope.value, w.start, w.end, w.cut.astimezone(VN_TZ).date(), w.cut)
    total = await pool.fetchval(f"SELECT count(*) {where}", *args)
    extra = ", x.plan_id, x.cancelled_at" if table == "plan_tasks" else ", NULL AS plan_id, NULL AS cancelled_at"
    rows = await pool.fetch(
        f"""SELECT x.{id_column} AS id, '{table.removeprefix("plan_").rstrip("s")}' AS kind, x.unitcode, x.title,
                   x.due_date, x.{done} AS done_at, x.on_time{extra}
            {where} ORDER BY x.due_date, x.{id_column} LIMIT {int(limit)} OFFSET {int(offset)}""",
        *args,
    )
    return int(total), [dict(r) for r in rows]


def survey_refs(aggregators: Mapping[tuple[str, str], Aggregator], key: str) -> list[tuple[str, str]]:
    """The instrument versions whose aggregator gives the flat key's prefix (``sipas``, ``papi_proxy``)."""
    prefix = key.split(".", maxsplit=1)[0]
    return sorted(ref for ref, agg in aggregators.items() if agg.key_prefix == prefix)


async def explain_survey(
    pool: asyncpg.Pool, scope: Scope, refs: Sequence[tuple[str, str]], w: PeriodWindow, *, limit: int, offset: int
) -> tuple[int, list[dict[str, Any]]]:
    """The total and one page of the responses of the scope in the period on the given instrument versions."""
    if scope.column == "legacy_district" or not refs:
        return 0, []
    where = f"""FROM survey_responses r
                JOIN unnest($4::text[], $5::text[]) AS v(id, version)
                  ON r.instrument_id = v.id AND r.instrument_version = v.version
                WHERE r.{scope.column} = $1 AND r.day BETWEEN $2 AND $3"""
    args = (scope.value, w.start, w.end, [r[0] for r in refs], [r[1] for r in refs])
    total = await pool.fetchval(f"SELECT count(*) {where}", *args)
    rows = await pool.fetch(
        f"""SELECT r.response_id, r.unitcode, r.instrument_id, r.instrument_version, r.day, r.channel,
                   r.linked_dossier_id
            {where} ORDER BY r.day, r.response_id LIMIT {int(limit)} OFFSET {int(offset)}""",
        *args,
    )
    return int(total), [dict(r) for r in rows]


async def par_evidence(
    pool: asyncpg.Pool, unitcode: str, criteria_set_id: str, year: int
) -> dict[tuple[str, str], list[dict[str, Any]]]:
    """The evidence refs of each (criterion, self | appraisal) assessment of a commune."""
    rows = await pool.fetch(
        """SELECT criterion_id, kind, evidence FROM par_assessments
           WHERE unitcode = $1 AND criteria_set_id = $2 AND year = $3""",
        unitcode,
        criteria_set_id,
        year,
    )
    out: dict[tuple[str, str], list[dict[str, Any]]] = {}
    for r in rows:
        value = r["evidence"]
        out[(r["criterion_id"], r["kind"])] = json.loads(value) if isinstance(value, str) else list(value or [])
    return out


@dataclass(frozen=True, slots=True)
class EvidenceRow:
    """One criterion of the PAR evidence export."""

    area: str
    criterion: str
    name: str
    max: float
    score: float | None
    self_score: float | None
    source: str  # appraisal | zeroed | metric | n/a
    detail: str
    metric: str
    metric_value: float | None
    numerator: float | None
    denominator: float | None
    evidence: str


_COLUMNS = (
    "area",
    "criterion",
    "name",
    "max",
    "score",
    "self_score",
    "source",
    "detail",
    "metric",
    "metric_value",
    "numerator",
    "denominator",
    "evidence",
)
_SOURCES = {"appraised": "appraisal", "zeroed": "zeroed", "computed": "metric"}


def _refs(refs: Iterable[Mapping[str, Any]]) -> str:
    fields = ("document_number", "document_date", "description", "link", "sha256")
    return " | ".join("; ".join(str(e[f]) for f in fields if e.get(f)) for e in refs)


def _leaves(node: NodeScore, area: str) -> Iterable[tuple[str, NodeScore]]:
    if not node.children:
        yield area, node
    for child in node.children:
        yield from _leaves(child, area)


def evidence_rows(
    areas: Sequence[NodeScore],
    evidence: Mapping[tuple[str, str], Sequence[Mapping[str, Any]]],
    values: Mapping[str, IndicatorValue],
) -> list[EvidenceRow]:
    """Every criterion (leaf of the tree) with the source of its score."""
    out = []
    for area in areas:
        for area_id, leaf in _leaves(area, area.id):
            source = _SOURCES.get(leaf.basis, "n/a")
            refs: Sequence[Mapping[str, Any]] = ()
            if source in ("appraisal", "zeroed"):
                refs = evidence.get((leaf.id, "appraisal"), ())
            elif leaf.self_score is not None:
                refs = evidence.get((leaf.id, "self"), ())
            metric = leaf.metric or ""
            v = values.get(METRICS.get(metric, "")) if metric else None
            out.append(
                EvidenceRow(
                    area=area_id,
                    criterion=leaf.id,
                    name=leaf.name,
                    max=leaf.max,
                    score=leaf.score,
                    self_score=leaf.self_score,
                    source=source,
                    detail=leaf.detail,
                    metric=metric,
                    metric_value=leaf.metric_value,
                    numerator=v.numerator if v else None,
                    denominator=v.denominator if v else None,
                    evidence=_refs(refs),
                )
            )
    return out


def evidence_csv(rows: Sequence[EvidenceRow]) -> str:
    """The export as CSV (UTF-8, a header row, empty cells for nulls)."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(_COLUMNS)
    for r in rows:
        writer.writerow(["" if (x := getattr(r, c)) is None else x for c in _COLUMNS])
    return buffer.getvalue()
