"""``chiso catalogue import FILE``: the TTHC catalogue (CSDL QG về TTHC snapshot) into the scoring service.

Registered in :mod:`services.cli`; only ``typer`` and the standard library at module level (fast ``--help``).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

__all__ = ["app"]

app = typer.Typer(
    help="The TTHC catalogue the catalogue-dependent 766 indicators need: import it.", no_args_is_help=True
)


@app.command("import")
def import_file(
    file: Annotated[Path, typer.Argument(exists=True, dir_okay=False, help="Catalogue: .csv, .jsonl or .json rows")],
    as_json: Annotated[bool, typer.Option("--json", help="Print the summary as JSON")] = False,
) -> None:
    """Import TTHC versions (DOMAIN §2.1), one row per (ma_tthc, effective_from).

    Columns: ma_tthc, name, level (tỉnh|xã|huyện), statutory_time_value, statutory_time_unit (giờ|ngày|ngày làm
    việc|tháng), online_level (toàn trình|một phần|none), has_fee, requires_paper_result, eligible_full_online
    (true|false), decision_no, decision_date, effective_from (YYYY-MM-DD), optional subject and source. A bad row
    is rejected with its line, field, value and rule; the rest is stored. Re-importing a file changes nothing.
    Needs DATABASE_URL. Exit code 1 when any row was rejected.
    """
    import asyncio  # noqa: PLC0415 - keep `chiso --help` fast

    from rich.console import Console  # noqa: PLC0415
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn  # noqa: PLC0415

    from eventkit.settings import DatabaseSettings  # noqa: PLC0415
    from services.scoring.catalogue import import_catalogue  # noqa: PLC0415
    from services.scoring.settings import ScoringSettings  # noqa: PLC0415

    with Progress(TextColumn("storing"), BarColumn(), MofNCompleteColumn(), console=Console(stderr=True)) as bar:
        task = bar.add_task("store", total=None)

        def on_progress(done: int, total: int) -> None:
            bar.update(task, completed=done, total=total)

        summary = asyncio.run(
            import_catalogue(file, DatabaseSettings().url, ScoringSettings().db_schema, progress=on_progress)
        )
    rejected = [{"line": r.line, "field": r.field, "value": r.value, "rule": r.rule} for r in summary.rejected]
    procedures = len({p.ma_tthc for p in summary.accepted})
    if as_json:
        out = {
            "file": str(file),
            "rows": summary.rows,
            "stored": len(summary.accepted),
            "procedures": procedures,
            "rejected": rejected,
        }
        typer.echo(json.dumps(out, ensure_ascii=False))
    else:
        typer.echo(
            f"{file}: {summary.rows} rows, {len(summary.accepted)} versions of {procedures} procedures stored, "
            f"{len(rejected)} rejected"
        )
        for r in rejected:
            typer.echo(f"  line {r['line']}: {r['field']}={r['value']!r}: {r['rule']}")
    if rejected:
        raise typer.Exit(1)
