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
from services.scoring.domain.periods import PeriodKind, cutoff, period_end

__all__ = ["PeriodWindow", "Scope", "count_explained", "counters", "explain", "open_counts", "scope_of", "window"]


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
    """Summed counters per (unit or scope, period start)."""
    unit = "unitcode" if by_unit else "$1::text"
    rows = await pool.fetch(
        f"""SELECT {unit} AS unit, period_start, counter, sum(value) AS value FROM indicator_counters
            WHERE {scope.column} = $1 AND period_kind = $2 AND period_start = ANY($3::date[])
            GROUP BY 1, 2, 3""",
        scope.value,
        kind.value,
        list(starts),
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
