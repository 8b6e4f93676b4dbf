"""``chiso scoring``: rebuild the read models from the topics (and swap them in), or verify the live ones.

Registered in :mod:`services.cli`. Only ``typer`` and the standard library are imported at module level,
so ``chiso --help`` stays fast.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated

import typer

from services.scoring.freeze_cli import freeze_command

if TYPE_CHECKING:
    from services.scoring.rebuild import RebuildReport

__all__ = ["app"]

app = typer.Typer(
    help="The scoring service: rebuild its read models from Kafka, verify the live ones.", no_args_is_help=True
)
app.command("freeze")(freeze_command)


def _run(*, swap: bool, batch: int, workers: int) -> RebuildReport:
    import asyncio  # noqa: PLC0415 - keep `chiso --help` fast

    from rich.console import Console  # noqa: PLC0415
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn  # noqa: PLC0415

    from contracts.registry import default_registry  # noqa: PLC0415
    from eventkit.settings import DatabaseSettings, KafkaSettings  # noqa: PLC0415
    from services.scoring.app import scoring_projections  # noqa: PLC0415
    from services.scoring.rebuild import rebuild  # noqa: PLC0415
    from services.scoring.settings import ScoringSettings  # noqa: PLC0415

    columns = (TextColumn("replaying"), BarColumn(), MofNCompleteColumn(), TextColumn("events"), TimeRemainingColumn())
    with Progress(*columns, console=Console(stderr=True)) as progress:
        task = progress.add_task("replay", total=None)

        def on_progress(done: int, total: int) -> None:
            progress.update(task, completed=done, total=total)

        return asyncio.run(
            rebuild(
                database_url=DatabaseSettings().url,
                schema=ScoringSettings().db_schema,
                kafka=KafkaSettings(),
                registry=default_registry(),
                projections=scoring_projections(),
                swap=swap,
                progress=on_progress,
                batch=batch,
                workers=workers,
            )
        )


def _print(report: RebuildReport, title: str) -> None:
    from rich.console import Console  # noqa: PLC0415
    from rich.table import Table  # noqa: PLC0415

    table = Table(title=title)
    for column in ("table", "live rows", "rebuilt rows", "differing keys", "examples"):
        table.add_column(column)
    for t in report.tables:
        table.add_row(t.table, str(t.live_rows), str(t.rebuilt_rows), str(t.differing_keys), "\n".join(t.examples[:5]))
    console = Console()
    console.print(table)
    console.print(f"{report.events} events replayed in {report.seconds:.1f} s; {report.differences} differing keys")


Batch = Annotated[int, typer.Option("--batch", min=1, max=100_000, help="Records per projection transaction")]
Workers = Annotated[
    int,
    typer.Option("--workers", min=1, max=32, help="Processes replaying a share of the partitions each (≤ cores)"),
]


@app.command("rebuild")
def rebuild_command(batch: Batch = 5000, workers: Workers = 1) -> None:
    """Replay the event topics from the start into fresh tables, swap them in atomically, print a comparison.

    The running service keeps serving from the live tables until the swap (one transaction); the comparison
    is taken at the swap, with both sides at the same offsets. The previous tables stay in
    ``<schema>_old_<time>`` (drop it when satisfied). Needs DATABASE_URL and KAFKA_BOOTSTRAP_SERVERS.
    """
    report = _run(swap=True, batch=batch, workers=workers)
    _print(report, f"rebuild of {report.schema}: live (before) vs rebuilt")
    typer.echo(f"swapped in; previous read models kept in schema {report.old_schema}")


@app.command("verify")
def verify_command(batch: Batch = 5000, workers: Workers = 1) -> None:
    """Recompute the read models from scratch (a throw-away rebuild) and diff them with the live ones.

    Exit code 1 when any key differs.
    """
    report = _run(swap=False, batch=batch, workers=workers)
    _print(report, f"verify of {report.schema}: live vs a clean rebuild")
    if report.differences:
        raise typer.Exit(1)
