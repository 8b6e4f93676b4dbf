"""``chiso papi import FILE``: official PAPI provincial scores into the scoring service's read models.

Registered in :mod:`services.cli`; only ``typer`` and the standard library at module level (fast ``--help``).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

__all__ = ["app"]

app = typer.Typer(
    help="Official PAPI scores (provincial, published by UNDP/CECODES): import them.", no_args_is_help=True
)


@app.command("import")
def import_file(
    file: Annotated[Path, typer.Argument(exists=True, dir_okay=False, help="PAPI scores: .csv or .json rows")],
    as_json: Annotated[bool, typer.Option("--json", help="Print the summary as JSON")] = False,
) -> None:
    """Import published PAPI dimension, sub-dimension and total scores (DOMAIN §8.2, §11.1-11.2).

    Columns: year, province_code, province_name, dimension (1..8 or 'total'), sub_dimension ('' or e.g. '6.1'),
    name, score, source. A dimension whose sub-dimensions do not sum to it within rounding is rejected with the
    reason (and the province-year total with it); the rest is stored. Needs DATABASE_URL. Exit code 1 when any
    row was rejected. Importing the same file again changes nothing.
    """
    import asyncio  # noqa: PLC0415 - keep `chiso --help` fast

    from eventkit.settings import DatabaseSettings  # noqa: PLC0415
    from services.scoring.papi import import_papi  # noqa: PLC0415
    from services.scoring.settings import ScoringSettings  # noqa: PLC0415

    summary = asyncio.run(import_papi(file, DatabaseSettings().url, ScoringSettings().db_schema))
    rejected = [{"lines": list(r.line_numbers), "key": r.key, "reason": r.reason} for r in summary.rejected]
    if as_json:
        typer.echo(
            json.dumps(
                {"file": str(file), "rows": summary.rows, "accepted": len(summary.accepted), "rejected": rejected},
                ensure_ascii=False,
            )
        )
    else:
        typer.echo(f"{file}: {summary.rows} rows, {len(summary.accepted)} stored, {len(rejected)} rejected groups")
        for r in rejected:
            typer.echo(f"  rejected lines {r['lines']} ({r['key']}): {r['reason']}")
    if rejected:
        raise typer.Exit(1)
