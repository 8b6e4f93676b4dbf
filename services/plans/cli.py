"""``chiso plans …``: the plans service's commands (registered in :mod:`services.cli`).

Heavy imports happen inside the commands, so ``chiso --help`` stays fast and builds nothing.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

__all__ = ["app"]

app = typer.Typer(help="Plans, targets, tasks, reports, inspections, PAR assessments.", no_args_is_help=True)
_console = Console(stderr=True)


@app.command("import")
def import_file(
    file: Annotated[Path, typer.Argument(help="Plan file (YAML or JSON), e.g. examples/plans/003_ba-nam-2024.yaml")],
) -> None:
    """Import a whole plan into the plans event store (DATABASE_URL); idempotent: re-importing stores nothing."""
    import asyncio  # noqa: PLC0415
    from datetime import UTC, datetime  # noqa: PLC0415

    from rich.progress import Progress  # noqa: PLC0415

    from eventkit import postgres  # noqa: PLC0415
    from eventkit.pg import apply_migrations, create_pool  # noqa: PLC0415
    from eventkit.postgres import PostgresEventStore  # noqa: PLC0415
    from eventkit.settings import DatabaseSettings  # noqa: PLC0415
    from services.plans.app import rules_from  # noqa: PLC0415
    from services.plans.handler import PlansHandler  # noqa: PLC0415
    from services.plans.importer import ImportSummary, PlanFileError, entries, import_plan, read_plan_file  # noqa: PLC0415
    from services.plans.settings import PlansSettings  # noqa: PLC0415

    try:
        document = read_plan_file(file)
        total = sum(1 for _ in entries(document))
    except PlanFileError as exc:
        _console.print(f"[red]{exc}[/red]")
        raise typer.Exit(2) from exc
    settings = PlansSettings()
    database = DatabaseSettings()

    async def run() -> ImportSummary:
        from contracts.registry import default_registry  # noqa: PLC0415

        pool = await create_pool(database.url, settings.db_schema, min_size=1, max_size=2)
        try:
            await apply_migrations(pool, "eventkit.store", postgres.MIGRATIONS)
            handler = PlansHandler(
                PostgresEventStore(pool, default_registry()),
                rules_from(settings),
                lambda: datetime.now(UTC),
                settings.source,
            )
            with Progress(console=_console) as progress:
                bar = progress.add_task(f"importing {file.name}", total=total)
                return await import_plan(handler, document, progress=lambda _: progress.advance(bar))
        finally:
            await pool.close()

    summary = asyncio.run(run())
    # the summary line is plain text (scripts read it); the table is for people
    typer.echo(
        f"{file.name}: {summary.recorded} recorded, {summary.unchanged} unchanged, {len(summary.refused)} refused"
    )
    table = Table(title="events stored")
    table.add_column("event type")
    table.add_column("stored", justify="right")
    for event_type, count in sorted(summary.events.items()):
        table.add_row(event_type, str(count))
    Console().print(table)
    for label, reason in summary.refused:
        _console.print(f"[red]refused[/red] {label}: {reason}")
    if summary.refused:
        raise typer.Exit(1)
