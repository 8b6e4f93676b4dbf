"""Reading the dossier read models: counters per scope and period, dossiers open at a cut-off, explain lists.

A scope is a unit code: 5 digits = a commune (its own rows), 2 = a province (the rollup of every unit whose
province it is: communes, and pre-2025 district work mapped to the province), 3 = a legacy district (the
pre-2025 history recorded with that district, through the envelope's ``legacyunitcode``).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime, time
from typing import Any

import asyncpg

from services.scoring.domain.activity import VN_TZ
from services.scoring.domain.indicators import OpenCounts, OpenPart, Parts
from services.scoring.domain.par import Assessment
from services.scoring.domain.periods import PeriodKind, cutoff, period_end

__all__ = [
    "PeriodWindow",
    "Scope",
    "SurveyCounters",
    "count_explained",
    "counters",
    "explain",
    "open_counts",
    "par_assessments",
    "plan_counts",
    "plan_targets",
    "scope_of",
    "survey_counters",
    "window",
]


@dataclass(frozen=True, slots=True)
class Scope:
    """Which rows a unit code sums: ``column = value``."""

    column: str
    value: str


def scope_of(unitcode: str) -> Scope:
    """The scope of a unit code (see the module docstring)."""
    column = {2: "provincecode", 3: "legacy_district", 5: "unitcode"}[len(unitcode)]
    return Scope(column, unitcode)


@dataclass(frozen=True, slots=True)
class PeriodWindow:
    """A period and the instants open dossiers are judged at: its start, and its end or now if earlier."""

    kind: PeriodKind
    start: date
    end: date
    begins: datetime
    cut: datetime


def window(kind: PeriodKind, start: date, now: datetime) -> PeriodWindow:
    """The window of the period starting on ``start``; a running period is cut at ``now`` (live counts)."""
    begins = datetime.combine(start, time(0), tzinfo=VN_TZ)
    return PeriodWindow(kind, start, period_end(kind, start), begins, min(cutoff(kind, start), now))


async def counters(
    pool: asyncpg.Pool, scope: Scope, kind: PeriodKind, starts: Sequence[date], *, by_unit: bool = False
) -> dict[tuple[str, date], dict[str, float]]:
    """Summed counters per (unit or scope, period start).

    Only months are stored (:class:`~services.scoring.projections.DossierIndicatorsProjection`): a quarter or a
    year is the sum of the months from its start to its last day, which is also what a month is (one month).
    """
    unit = "c.unitcode" if by_unit else "$1::text"
    rows = await pool.fetch(
        f"""SELECT {unit} AS unit, p.start AS period_start, c.counter, sum(c.value) AS value
            FROM unnest($2::date[], $3::date[]) AS p(start, last)
            JOIN indicator_counters c ON c.{scope.column} = $1 AND c.period_kind = 'month'
                 AND c.period_start BETWEEN p.start AND p.last
            GROUP BY 1, 2, 3""",
        scope.value,
        list(starts),
        [period_end(kind, start) for start in starts],
    )
    out: dict[tuple[str, date], dict[str, float]] = defaultdict(dict)
    for r in rows:
        out[(r["unit"], r["period_start"])][r["counter"]] = round(r["value"], 6)
    return out


# a dossier is open at instant t if received before t and not ended before t; overdue at t if the due date
# the dossiers service reported as passed (became_overdue) lies before t
_OPEN_AT_CUT = "d.received_at < p.cut AND (d.resolved_at IS NULL OR d.resolved_at >= p.cut)"
_OVERDUE_AT_CUT = "d.overdue_due_at IS NOT NULL AND d.overdue_due_at < p.cut"
_CARRIED = "d.received_at < p.begins AND (d.resolved_at IS NULL OR d.resolved_at >= p.begins)"
_OPEN_SQL = {
    OpenPart.ALL: _OPEN_AT_CUT,
    OpenPart.WITHIN: f"{_OPEN_AT_CUT} AND NOT ({_OVERDUE_AT_CUT})",
    OpenPart.OVERDUE: f"{_OPEN_AT_CUT} AND {_OVERDUE_AT_CUT}",
    OpenPart.CARRIED_OVER: _CARRIED,
}


async def open_counts(
    pool: asyncpg.Pool, scope: Scope, windows: Sequence[PeriodWindow], *, by_unit: bool = False
) -> dict[tuple[str, date], OpenCounts]:
    """Dossiers open at each window's cut-off (within time / overdue) and carried over into it."""
    unit = "d.unitcode" if by_unit else "$1::text"
    rows = await pool.fetch(
        f"""SELECT {unit} AS unit, p.start,
                   count(*) FILTER (WHERE {_OPEN_SQL[OpenPart.WITHIN]}) AS within,
                   count(*) FILTER (WHERE {_OPEN_SQL[OpenPart.OVERDUE]}) AS overdue,
                   count(*) FILTER (WHERE {_CARRIED}) AS carried
            FROM unnest($2::date[], $3::timestamptz[], $4::timestamptz[]) AS p(start, begins, cut)
            JOIN dossier_facts d ON d.{scope.column} = $1 AND d.received_at < p.cut
                 AND (d.resolved_at IS NULL OR d.resolved_at >= p.begins)
            GROUP BY 1, 2""",
        scope.value,
        [w.start for w in windows],
        [w.begins for w in windows],
        [w.cut for w in windows],
    )
    return {(r["unit"], r["start"]): OpenCounts(r["within"], r["overdue"], r["carried"]) for r in rows}


def _explain_where(scope: Scope, parts: Parts) -> str:
    clauses = []
    if parts.keys or parts.distinct_prefix:
        clauses.append(
            "EXISTS (SELECT 1 FROM unnest(d.contrib_keys, d.contrib_days) AS c(k, day)"
            " WHERE (c.k = ANY($2::text[]) OR ($3::text IS NOT NULL AND starts_with(c.k, $3::text)))"
            " AND c.day BETWEEN $4 AND $5)"
        )
    if parts.open is not None:
        clauses.append(f"({_OPEN_SQL[parts.open]})")
    where = " OR ".join(clauses) or "false"
    return f"d.{scope.column} = $1 AND ({where})"


_PERIOD = "(SELECT $6::timestamptz AS begins, $7::timestamptz AS cut) AS p"


def _explain_args(scope: Scope, parts: Parts, w: PeriodWindow) -> list[Any]:
    return [scope.value, list(parts.keys), parts.distinct_prefix, w.start, w.end, w.begins, w.cut]


async def count_explained(pool: asyncpg.Pool, scope: Scope, parts: Parts, w: PeriodWindow) -> int:
    """How many dossiers :func:`explain` pages through."""
    value = await pool.fetchval(
        f"SELECT count(*) FROM dossier_facts d, {_PERIOD} WHERE {_explain_where(scope, parts)}",
        *_explain_args(scope, parts, w),
    )
    return int(value or 0)


async def explain(
    pool: asyncpg.Pool, scope: Scope, parts: Parts, w: PeriodWindow, *, limit: int, offset: int
) -> list[dict[str, Any]]:
    """The dossiers behind one part (numerator or denominator) of an indicator, by receipt then id."""
    rows = await pool.fetch(
        f"""SELECT d.dossier_id, d.unitcode, d.legacy_unit, d.state::text AS state
            FROM dossier_facts d, {_PERIOD} WHERE {_explain_where(scope, parts)}
            ORDER BY d.received_at NULLS LAST, d.dossier_id LIMIT $8 OFFSET $9""",
        *_explain_args(scope, parts, w),
        limit,
        offset,
    )
    return [dict(r) for r in rows]


# --- surveys and plans read models (SIPAS, PAPI-proxy, tasks, reports, PAR assessments, targets) ----------
# They are kept per unit and province only: a legacy district (3 digits) has none (pre-2025 surveys and plans
# were not recorded by district here), so the callers report N/A for it.

SurveyCounters = dict[tuple[str, str], dict[str, float]]  # (instrument id, version) -> counters


async def survey_counters(
    pool: asyncpg.Pool, scope: Scope, kind: PeriodKind, starts: Sequence[date], *, by_unit: bool = False
) -> dict[tuple[str, date], SurveyCounters]:
    """Answer counters per (unit or scope, period start) and instrument version."""
    if scope.column == "legacy_district":
        return {}
    unit = "unitcode" if by_unit else "$1::text"
    rows = await pool.fetch(
        f"""SELECT {unit} AS unit, period_start, instrument_id, instrument_version, counter, sum(value) AS value
            FROM survey_counters WHERE {scope.column} = $1 AND period_kind = $2 AND period_start = ANY($3::date[])
            GROUP BY 1, 2, 3, 4, 5""",
        scope.value,
        kind.value,
        list(starts),
    )
    out: dict[tuple[str, date], SurveyCounters] = defaultdict(lambda: defaultdict(dict))
    for r in rows:
        out[(r["unit"], r["period_start"])][(r["instrument_id"], r["instrument_version"])][r["counter"]] = r["value"]
    return out


async def plan_counts(
    pool: asyncpg.Pool, scope: Scope, windows: Sequence[PeriodWindow], *, by_unit: bool = False
) -> dict[tuple[str, date], dict[str, float]]:
    """Tasks and reports due in each window: due, done, done on time (rates: ``domain.programme``).

    A task or report counts in the period its due date falls in, once the due date has passed at the window's
    cut-off or once it is done by then (facts after the cut-off are not seen); cancelled tasks and items without
    a due date do not count.
    """
    if scope.column == "legacy_district":
        return {}
    unit = "x.unitcode" if by_unit else "$1::text"
    out: dict[tuple[str, date], dict[str, float]] = defaultdict(dict)
    for table, name, done in (("plan_tasks", "tasks", "done_at"), ("plan_reports", "reports", "submitted_at")):
        cancelled = "AND x.cancelled_at IS NULL" if table == "plan_tasks" else ""
        rows = await pool.fetch(
            f"""SELECT {unit} AS unit, p.start, count(*) AS due,
                       count(*) FILTER (WHERE x.{done} < p.cut) AS done,
                       count(*) FILTER (WHERE x.on_time AND x.{done} < p.cut) AS on_time
                FROM unnest($2::date[], $3::date[], $4::date[], $5::timestamptz[]) AS p(start, last, cut_day, cut)
                JOIN {table} x ON x.{scope.column} = $1 AND x.due_date BETWEEN p.start AND p.last
                     AND (x.due_date < p.cut_day OR x.{done} < p.cut) {cancelled}
                GROUP BY 1, 2""",
            scope.value,
            [w.start for w in windows],
            [w.end for w in windows],
            [w.cut.astimezone(VN_TZ).date() for w in windows],
            [w.cut for w in windows],
        )
        for r in rows:
            counts = out[(r["unit"], r["start"])]
            counts[f"{name}.due"], counts[f"{name}.done"], counts[f"{name}.on_time"] = r["due"], r["done"], r["on_time"]
    return out


async def par_assessments(
    pool: asyncpg.Pool, scope: Scope, criteria_set_id: str, year: int, *, by_unit: bool = False
) -> dict[str, dict[str, Assessment]]:
    """The latest self-assessment and appraisal of every criterion, per unit (or the scope)."""
    if scope.column == "legacy_district":
        return {}
    rows = await pool.fetch(
        f"""SELECT unitcode, criterion_id, kind, score, max_score, zeroed_reason, appraiser, at FROM par_assessments
            WHERE {scope.column} = $1 AND criteria_set_id = $2 AND year = $3""",
        scope.value,
        criteria_set_id,
        year,
    )
    parts: dict[str, dict[str, dict[str, Any]]] = defaultdict(lambda: defaultdict(dict))
    for r in rows:
        unit = r["unitcode"] if by_unit else scope.value
        parts[unit][r["criterion_id"]][r["kind"]] = r
    out: dict[str, dict[str, Assessment]] = {}
    for unit, criteria in parts.items():
        out[unit] = {}
        for criterion, kinds in criteria.items():
            own, appraisal = kinds.get("self"), kinds.get("appraisal")
            out[unit][criterion] = Assessment(
                self_score=own["score"] if own else None,
                self_max=own["max_score"] if own else None,
                appraised_score=appraisal["score"] if appraisal else None,
                appraised_max=appraisal["max_score"] if appraisal else None,
                zeroed_reason=appraisal["zeroed_reason"] if appraisal else None,
                appraiser=appraisal["appraiser"] if appraisal else None,
                appraised_at=appraisal["at"] if appraisal else None,
            )
    return out


async def plan_targets(pool: asyncpg.Pool, unitcode: str) -> list[dict[str, Any]]:
    """Every target set for a unit, by period then id."""
    rows = await pool.fetch(
        """SELECT target_id, plan_id, indicator_key, comparison, target_value, unit_of_measure, period_start,
                  period_end, description FROM plan_targets WHERE unitcode = $1 ORDER BY period_start, target_id""",
        unitcode,
    )
    return [dict(r) for r in rows]
