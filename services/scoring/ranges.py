"""Indicators over any day range (year-to-date, the province's reporting periods with data cut-offs, and the
calendar periods), and freezing a period at its cut-off.

A range's counters are the sums of the dossiers' stored contributions whose day lies in it (the per-dossier
read model, the same facts the month/quarter/year counters are made of), so any range is exact without a
new projection. A frozen period keeps the values computed at the freeze in ``scoring_frozen``; events of
the period arriving later change only the live values, and both are served side by side with the
correction (live - frozen). ``chiso scoring rebuild`` carries ``scoring_frozen`` over (not replayed).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date, datetime, time
from pathlib import Path
from typing import Any

import asyncpg
import yaml

from eventkit.pg import Migration, apply_migrations, create_pool
from services.scoring.catalogue import catalogue_for
from services.scoring.domain.activity import VN_TZ
from services.scoring.domain.config import D766Config
from services.scoring.domain.indicators import SPECS, D766Score, IndicatorValue, OpenCounts, compute, d766_score
from services.scoring.domain.periods import PeriodKind, period_end, period_start
from services.scoring.domain.report_periods import (
    DayRange,
    ReportScheme,
    parse_scheme,
    range_cutoff,
    report_ranges,
    ytd,
)
from services.scoring.outside_values import add_outside_values
from services.scoring.readmodel import PeriodWindow, Scope, open_counts, scope_of

__all__ = [
    "FREEZE_MIGRATIONS",
    "FREEZE_MIGRATIONS_NAME",
    "SCHEMES_DIR",
    "AlreadyFrozenError",
    "FrozenPeriod",
    "RangeResult",
    "compute_range",
    "flatten",
    "freeze",
    "freeze_units",
    "load_schemes",
    "read_frozen",
    "resolve_range",
    "units_of_province",
]

SCHEMES_DIR = Path(__file__).resolve().parent / "config" / "periods"
PERIOD_KINDS = ("month", "quarter", "year", "ytd", "report")

FREEZE_MIGRATIONS_NAME = "scoring.frozen_periods"
FREEZE_MIGRATIONS = (
    Migration(
        "0001_scoring_frozen",
        """
        CREATE TABLE scoring_frozen (
            unitcode      text NOT NULL,
            period_label  text NOT NULL,
            config        text NOT NULL,
            first_day     date NOT NULL,
            last_day      date NOT NULL,
            cut           timestamptz NOT NULL,
            frozen_at     timestamptz NOT NULL,
            indicators    jsonb NOT NULL,  -- key -> [numerator, denominator, value, na_reason]
            PRIMARY KEY (unitcode, period_label, config)
        );
        """,
    ),
)


def load_schemes(directory: Path | None = None) -> dict[str, ReportScheme]:
    """Every ``*.yaml`` reporting scheme (the shipped ones by default), by name; duplicates refused."""
    out: dict[str, ReportScheme] = {}
    for path in sorted((directory or SCHEMES_DIR).glob("*.yaml")):
        scheme = parse_scheme(yaml.safe_load(path.read_text(encoding="utf-8")))
        if scheme.scheme in out:
            msg = f"{path}: scheme {scheme.scheme!r} is defined twice"
            raise ValueError(msg)
        out[scheme.scheme] = scheme
    return out


def resolve_range(
    kind: str, start: date, schemes: Mapping[str, ReportScheme], scheme: str | None = None, report: str | None = None
) -> DayRange:
    """The day range of ``kind`` (month | quarter | year | ytd | report) for ``start``; ValueError explains."""
    if kind in ("month", "quarter", "year"):
        k = PeriodKind(kind)
        first = period_start(k, start)
        return DayRange(f"{kind}:{first.isoformat()}", first, period_end(k, first))
    if kind == "ytd":
        return ytd(start)
    if kind != "report":
        msg = f"unknown period {kind!r}; one of {', '.join(PERIOD_KINDS)}"
        raise ValueError(msg)
    if scheme is None or scheme not in schemes:
        msg = f"period=report needs scheme= one of {sorted(schemes)}"
        raise ValueError(msg)
    found = report_ranges(schemes[scheme], start, report)
    if len(found) != 1:
        which = ", ".join(r.label for r in found) or "none"
        msg = f"{len(found)} reports of {scheme} contain {start} ({which}); name one with report=<key>"
        raise ValueError(msg)
    r = found[0]
    return DayRange(f"report:{scheme}:{r.label}", r.first, r.last)


async def _range_counters(pool: asyncpg.Pool, scope: Scope, first: date, last: date) -> dict[str, float]:
    rows = await pool.fetch(
        f"""SELECT c.k AS counter, sum(c.v) AS value
            FROM dossier_facts d, unnest(d.contrib_keys, d.contrib_days, d.contrib_values) AS c(k, day, v)
            WHERE d.{scope.column} = $1 AND c.day BETWEEN $2 AND $3 GROUP BY c.k""",
        scope.value,
        first,
        last,
    )
    return {r["counter"]: round(r["value"], 6) for r in rows}


@dataclass(frozen=True, slots=True)
class RangeResult:
    """Every dossier indicator of one unit over one range, and the 766 score."""

    range: DayRange
    cut: datetime
    values: dict[str, IndicatorValue]
    score: D766Score
    catalogue_loaded: bool


async def compute_range(
    pool: asyncpg.Pool, unitcode: str, r: DayRange, config: D766Config, now: datetime
) -> RangeResult:
    """The indicators of ``unitcode`` over ``r``, open dossiers judged at the range's cut-off (or now)."""
    scope = scope_of(unitcode)
    cut = min(range_cutoff(r.last), now)
    # PeriodWindow.kind is not read by open_counts (it takes the start, begins and cut instants)
    w = PeriodWindow(PeriodKind.MONTH, r.first, r.last, datetime.combine(r.first, time(0), tzinfo=VN_TZ), cut)
    sums = await _range_counters(pool, scope, r.first, r.last)
    opened = (await open_counts(pool, scope, [w])).get((unitcode, r.first), OpenCounts())
    values = dict(compute(list(SPECS), sums, opened))
    extra = await catalogue_for(pool, unitcode, r.first, r.last, values)
    values.update(extra)
    await add_outside_values(pool, scope, [w], {(unitcode, r.first): values}, catalogue=False)  # 766 group 5
    return RangeResult(r, cut, values, d766_score(config, values), bool(extra))


Flat = dict[str, tuple[float | None, float | None, float | None, str | None]]


def flatten(result: RangeResult) -> Flat:
    """key -> (numerator, denominator, value, na_reason) of every indicator, 766 group and the 766 total."""
    out: Flat = {
        k: (v.numerator, v.denominator, v.value, v.na_reason.value if v.na_reason else None)
        for k, v in result.values.items()
    }
    for g in result.score.groups:
        for s in g.indicators:
            v = s.value
            out[s.config.key] = (v.numerator, v.denominator, v.value, v.na_reason.value if v.na_reason else None)
            out[f"{s.config.key}.points"] = (None, None, s.points, None if s.points is not None else "not_computed")
        out[f"d766.group.{g.key}"] = (None, None, g.points, None if g.points is not None else "not_computed")
    total = result.score.total
    out["d766.total"] = (None, None, total, None if total is not None else "not_computed")
    return out


@dataclass(frozen=True, slots=True)
class FrozenPeriod:
    """A stored freeze."""

    unitcode: str
    period_label: str
    config: str
    first_day: date
    last_day: date
    cut: datetime
    frozen_at: datetime
    indicators: Flat


class AlreadyFrozenError(Exception):
    """The period was frozen before (a freeze is never overwritten)."""


async def freeze(pool: asyncpg.Pool, unitcode: str, r: DayRange, config: D766Config, now: datetime) -> FrozenPeriod:
    """Store the values of ``unitcode`` over ``r`` as frozen. Refused before the cut-off (ValueError) and
    when already frozen (:class:`AlreadyFrozenError`)."""
    cut = range_cutoff(r.last)
    if now < cut:
        msg = f"{r.label} runs until {cut.isoformat()}: a period is frozen at its cut-off, not before"
        raise ValueError(msg)
    result = await compute_range(pool, unitcode, r, config, now)
    flat = flatten(result)
    inserted = await pool.fetchval(
        """INSERT INTO scoring_frozen (unitcode, period_label, config, first_day, last_day, cut, frozen_at, indicators)
           VALUES ($1, $2, $3, $4, $5, $6, $7, $8::jsonb) ON CONFLICT DO NOTHING RETURNING 1""",
        unitcode,
        r.label,
        config.version,
        r.first,
        r.last,
        cut,
        now,
        json.dumps(flat),
    )
    if inserted is None:
        msg = f"{unitcode} {r.label} ({config.version}) is already frozen"
        raise AlreadyFrozenError(msg)
    return FrozenPeriod(unitcode, r.label, config.version, r.first, r.last, cut, now, flat)


async def read_frozen(pool: asyncpg.Pool, unitcode: str, label: str, config: str) -> FrozenPeriod | None:
    """The freeze of a unit, period and configuration, if any (None also when nothing was ever frozen)."""
    try:
        row = await pool.fetchrow(
            """SELECT unitcode, period_label, config, first_day, last_day, cut, frozen_at, indicators::text AS ind
               FROM scoring_frozen WHERE unitcode = $1 AND period_label = $2 AND config = $3""",
            unitcode,
            label,
            config,
        )
    except asyncpg.UndefinedTableError:
        return None
    if row is None:
        return None
    data: dict[str, Any] = json.loads(row["ind"])
    flat: Flat = {k: (v[0], v[1], v[2], v[3]) for k, v in data.items()}
    return FrozenPeriod(
        row["unitcode"],
        row["period_label"],
        row["config"],
        row["first_day"],
        row["last_day"],
        row["cut"],
        row["frozen_at"],
        flat,
    )


async def units_of_province(pool: asyncpg.Pool, provincecode: str) -> list[str]:
    """The province and every unit with dossier facts in it (what ``freeze --province`` freezes)."""
    rows = await pool.fetch(
        "SELECT DISTINCT unitcode FROM dossier_facts WHERE provincecode = $1 ORDER BY 1", provincecode
    )
    return [provincecode, *(r["unitcode"] for r in rows)]


async def freeze_units(
    database_url: str,
    schema: str,
    *,
    unit: str | None,
    province: str | None,
    period: str,
    start: date,
    scheme: str | None,
    report: str | None,
    config_dir: Path | None,
    config: str,
    now: datetime | None = None,
) -> tuple[list[str], list[str]]:
    """Freeze one unit, or a province and its units: (frozen, already frozen). ValueError when refused."""
    from services.scoring.configs import load_configs  # noqa: PLC0415

    configs = load_configs(config_dir)
    if config not in configs:
        msg = f"unknown configuration {config!r}; known: {sorted(configs)}"
        raise ValueError(msg)
    r = resolve_range(period, start, load_schemes(), scheme, report)
    at = now or datetime.now(VN_TZ)
    pool = await create_pool(database_url, schema, min_size=1, max_size=2)
    done: list[str] = []
    skipped: list[str] = []
    try:
        await apply_migrations(pool, FREEZE_MIGRATIONS_NAME, FREEZE_MIGRATIONS)
        units = [unit] if unit is not None else await units_of_province(pool, province or "")
        for code in units:
            try:
                await freeze(pool, code, r, configs[config], at)
                done.append(code)
            except AlreadyFrozenError:
                skipped.append(code)
    finally:
        await pool.close()
    return done, skipped
