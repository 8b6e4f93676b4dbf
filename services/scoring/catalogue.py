"""The imported TTHC catalogue: reading an import file, storing the accepted versions, reading them back, and
the per-procedure dossier aggregates the catalogue-dependent 766 indicators need.

Not an event projection (like the PAPI scores, :mod:`services.scoring.papi`): ``chiso scoring rebuild``
carries the table over into the rebuilt schema with the service's other non-replayed tables. Validation and
the indicators are pure, in :mod:`services.scoring.domain.catalogue`.
"""

from __future__ import annotations

import csv
import json
from collections import defaultdict
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Any

import asyncpg

from eventkit.pg import Migration, apply_migrations, create_pool
from services.scoring.domain.catalogue import (
    Catalogue,
    Procedure,
    Rejected,
    TthcDay,
    catalogue_values,
    levels_for_scope,
    validate_rows,
)
from services.scoring.domain.indicators import IndicatorValue
from services.scoring.readmodel import Scope, scope_of

__all__ = [
    "MIGRATIONS",
    "MIGRATIONS_NAME",
    "ImportSummary",
    "catalogue_for",
    "import_catalogue",
    "load_catalogue",
    "read_rows",
    "tthc_days",
]

MIGRATIONS_NAME = "scoring.tthc_catalogue"
MIGRATIONS = (
    Migration(
        "0001_tthc_catalogue",
        """
        CREATE TABLE tthc_catalogue (
            ma_tthc                text NOT NULL,
            effective_from         date NOT NULL,
            name                   text NOT NULL,
            level                  text NOT NULL,
            statutory_time_value   float8 NOT NULL,
            statutory_time_unit    text NOT NULL,
            online_level           text NOT NULL,
            has_fee                boolean NOT NULL,
            requires_paper_result  boolean NOT NULL,
            eligible_full_online   boolean NOT NULL,
            decision_no            text NOT NULL,
            decision_date          date NOT NULL,
            subject                text NOT NULL DEFAULT '',
            source                 text NOT NULL DEFAULT '',
            imported_at            timestamptz NOT NULL DEFAULT now(),
            PRIMARY KEY (ma_tthc, effective_from)
        );
        """,
    ),
)

_COLUMNS = (
    "ma_tthc",
    "effective_from",
    "name",
    "level",
    "statutory_time_value",
    "statutory_time_unit",
    "online_level",
    "has_fee",
    "requires_paper_result",
    "eligible_full_online",
    "decision_no",
    "decision_date",
    "subject",
    "source",
)


def read_rows(path: Path) -> tuple[list[dict[str, Any]], int]:
    """The rows of a ``.csv`` (header line), ``.jsonl`` (one object a line) or ``.json`` (array) file, and the
    line number of the first row."""
    suffix = path.suffix.lower()
    if suffix == ".jsonl":
        rows = []
        for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
            if line.strip():
                value = json.loads(line, parse_float=str)
                if not isinstance(value, dict):
                    msg = f"{path}:{n}: expected a JSON object"
                    raise ValueError(msg)
                rows.append(value)
        return rows, 1
    if suffix == ".json":
        data = json.loads(path.read_text(encoding="utf-8"), parse_float=str)
        if not isinstance(data, list) or not all(isinstance(r, dict) for r in data):
            msg = f"{path}: expected a JSON array of objects"
            raise ValueError(msg)
        return data, 1
    with path.open(encoding="utf-8-sig", newline="") as handle:
        return list(csv.DictReader(handle)), 2


async def _store(pool: asyncpg.Pool, rows: list[Procedure]) -> None:
    if not rows:
        return
    await pool.execute(
        f"""INSERT INTO tthc_catalogue ({", ".join(_COLUMNS)})
            SELECT * FROM unnest($1::text[], $2::date[], $3::text[], $4::text[], $5::float8[], $6::text[],
                                 $7::text[], $8::bool[], $9::bool[], $10::bool[], $11::text[], $12::date[],
                                 $13::text[], $14::text[])
            ON CONFLICT (ma_tthc, effective_from) DO UPDATE SET
            {", ".join(f"{c} = EXCLUDED.{c}" for c in _COLUMNS[2:])}, imported_at = now()""",
        *([getattr(r, c) for r in rows] for c in _COLUMNS),
    )


async def load_catalogue(pool: asyncpg.Pool) -> Catalogue:
    """Every stored version (an empty catalogue when none was imported or the table does not exist yet)."""
    try:
        rows = await pool.fetch(f"SELECT {', '.join(_COLUMNS)} FROM tthc_catalogue")
    except asyncpg.UndefinedTableError:
        return Catalogue(())
    return Catalogue(Procedure(**dict(r)) for r in rows)


async def tthc_days(
    pool: asyncpg.Pool, scope: Scope, first: date, last: date, *, by_unit: bool = False
) -> dict[str, list[TthcDay]]:
    """The scope's dossiers received from ``first`` to ``last`` per (TTHC, receipt day), from the per-dossier
    read model (its stored contributions: the same facts the counters are made of) — per unit of the scope
    (``by_unit``), else under the scope's own code."""
    unit = "d.unitcode" if by_unit else "$1::text"
    rows = await pool.fetch(
        f"""SELECT unit, ma, day, count(*) AS received, count(*) FILTER (WHERE online) AS online,
                   count(*) FILTER (WHERE online_ok) AS online_ok, count(*) FILTER (WHERE fee AND synced) AS fee_synced,
                   count(*) FILTER (WHERE vneid) AS vneid
            FROM (SELECT {unit} AS unit, d.state ->> 'ma_tthc' AS ma, c.day,
                         'r06.received.online' = ANY(d.contrib_keys) AS online,
                         'd766.3_3.online' = ANY(d.contrib_keys) AS online_ok,
                         'd766.3_6.fee' = ANY(d.contrib_keys) AS fee,
                         'd766.1_4.synced' = ANY(d.contrib_keys) AS synced,
                         'd766.4_5b.vneid' = ANY(d.contrib_keys) AS vneid
                  FROM dossier_facts d, unnest(d.contrib_keys, d.contrib_days) AS c(k, day)
                  WHERE d.{scope.column} = $1 AND c.k = 'r06.received' AND c.day BETWEEN $2 AND $3) x
            WHERE ma IS NOT NULL GROUP BY unit, ma, day""",
        scope.value,
        first,
        last,
    )
    out: dict[str, list[TthcDay]] = defaultdict(list)
    for r in rows:
        out[r["unit"]].append(
            TthcDay(r["ma"], r["day"], r["received"], r["online"], r["online_ok"], r["fee_synced"], r["vneid"])
        )
    return out


@dataclass(frozen=True, slots=True)
class ImportSummary:
    """What an import did."""

    rows: int
    accepted: list[Procedure]
    rejected: list[Rejected]


def _chunks(rows: list[Procedure], size: int) -> Iterator[list[Procedure]]:
    for i in range(0, len(rows), size):
        yield rows[i : i + size]


async def import_catalogue(
    path: Path,
    database_url: str,
    schema: str = "scoring",
    progress: Callable[[int, int], None] | None = None,
    chunk: int = 500,
) -> ImportSummary:
    """Validate ``path`` and store the versions that pass (tables created if missing); re-importing the same
    file changes nothing. ``progress(done, total)`` after each stored chunk."""
    raw, first_line = read_rows(path)
    accepted, rejected = validate_rows(raw, first_line)
    pool = await create_pool(database_url, schema, min_size=1, max_size=2)
    try:
        await apply_migrations(pool, MIGRATIONS_NAME, MIGRATIONS)
        done = 0
        for part in _chunks(accepted, chunk):
            await _store(pool, part)
            done += len(part)
            if progress is not None:
                progress(done, len(accepted))
    finally:
        await pool.close()
    return ImportSummary(len(raw), accepted, rejected)


async def catalogue_for(
    pool: asyncpg.Pool, unitcode: str, first: date, last: date, values: Mapping[str, IndicatorValue]
) -> dict[str, IndicatorValue]:
    """The catalogue-dependent indicators of a unit over ``first``..``last`` ({} when no catalogue is loaded);
    ``values``: the unit's dossier indicators of the same period (3.3 is multiplied by its 1.4)."""
    catalogue = await load_catalogue(pool)
    if not catalogue:
        return {}
    rows = (await tthc_days(pool, scope_of(unitcode), first, last)).get(unitcode, [])
    return catalogue_values(catalogue, levels_for_scope(unitcode), last, rows, values.get("d766.1_4"))
