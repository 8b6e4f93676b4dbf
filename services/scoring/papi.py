"""Official PAPI scores: reading an import file, storing the accepted rows, reading them back.

The validation (sub-dimensions sum to the dimension within rounding, totals to the dimensions) is pure, in
:mod:`services.scoring.domain.papi`; this module does the I/O. A re-import replaces the rows it names
(year, province, dimension, sub-dimension) in one statement, so importing a file twice changes nothing.
"""

from __future__ import annotations

import csv
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import asyncpg

from eventkit.pg import Migration, apply_migrations, create_pool
from services.scoring.domain.papi import PapiRow, Rejected, validate_rows

__all__ = ["MIGRATIONS", "MIGRATIONS_NAME", "ImportSummary", "import_papi", "read_papi", "read_rows", "store"]

MIGRATIONS_NAME = "scoring.papi_scores"
MIGRATIONS = (
    Migration(
        "0001_papi_scores",
        """
        CREATE TABLE papi_scores (
            year           int NOT NULL,
            province_code  text NOT NULL,
            province_name  text NOT NULL,
            dimension      int NOT NULL,   -- 0 = the total (sum of the dimensions)
            sub_dimension  text NOT NULL,  -- '' = the dimension itself
            name           text NOT NULL,
            score          float8 NOT NULL,
            decimals       int NOT NULL,
            source         text NOT NULL,
            imported_at    timestamptz NOT NULL DEFAULT now(),
            PRIMARY KEY (province_code, year, dimension, sub_dimension)
        );
        """,
    ),
)


def read_rows(path: Path) -> list[dict[str, Any]]:
    """The flat rows of a ``.csv`` (header line) or ``.json`` (array of objects) file; values kept as text."""
    if path.suffix.lower() == ".json":
        data = json.loads(path.read_text(encoding="utf-8"), parse_float=str)
        if not isinstance(data, list) or not all(isinstance(r, dict) for r in data):
            msg = f"{path}: expected a JSON array of objects"
            raise ValueError(msg)
        return data
    with path.open(encoding="utf-8-sig", newline="") as handle:
        return list(csv.DictReader(handle))


async def store(pool: asyncpg.Pool, rows: list[PapiRow]) -> None:
    """Upsert the accepted rows (one statement)."""
    if not rows:
        return
    await pool.execute(
        """INSERT INTO papi_scores (year, province_code, province_name, dimension, sub_dimension, name, score,
                                    decimals, source)
           SELECT * FROM unnest($1::int[], $2::text[], $3::text[], $4::int[], $5::text[], $6::text[], $7::float8[],
                                $8::int[], $9::text[])
           ON CONFLICT (province_code, year, dimension, sub_dimension) DO UPDATE SET
               province_name = EXCLUDED.province_name, name = EXCLUDED.name, score = EXCLUDED.score,
               decimals = EXCLUDED.decimals, source = EXCLUDED.source, imported_at = now()""",
        [r.year for r in rows],
        [r.province_code for r in rows],
        [r.province_name for r in rows],
        [r.dimension for r in rows],
        [r.sub_dimension for r in rows],
        [r.name for r in rows],
        [r.score for r in rows],
        [r.decimals for r in rows],
        [r.source for r in rows],
    )


async def read_papi(pool: asyncpg.Pool, province_code: str, year: int | None) -> list[dict[str, Any]]:
    """The stored rows of a province (one year or all), by year, dimension, sub-dimension."""
    rows = await pool.fetch(
        """SELECT year, province_code, province_name, dimension, sub_dimension, name, score, decimals, source
           FROM papi_scores WHERE province_code = $1 AND ($2::int IS NULL OR year = $2)
           ORDER BY year, dimension, sub_dimension""",
        province_code,
        year,
    )
    return [dict(r) for r in rows]


@dataclass(frozen=True, slots=True)
class ImportSummary:
    """What an import did."""

    rows: int
    accepted: list[PapiRow]
    rejected: list[Rejected]


async def import_papi(path: Path, database_url: str, schema: str = "scoring") -> ImportSummary:
    """Validate ``path`` and store what passes (the scoring service's schema; tables created if missing)."""
    raw = read_rows(path)
    accepted, rejected = validate_rows(raw)
    pool = await create_pool(database_url, schema, min_size=1, max_size=2)
    try:
        await apply_migrations(pool, MIGRATIONS_NAME, MIGRATIONS)
        await store(pool, accepted)
    finally:
        await pool.close()
    return ImportSummary(len(raw), accepted, rejected)
