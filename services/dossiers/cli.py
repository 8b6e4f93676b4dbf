"""``chiso due-date``: the due date (ngày hẹn trả) of a dossier from the shared working-time calendar.

Registered in :mod:`services.cli`. Only ``typer`` and the standard library are imported at module level;
the calendar (and ``holidays``, ``yaml``) load inside the command, so ``chiso --help`` stays fast.
"""

from __future__ import annotations

import json
from datetime import datetime
from pathlib import Path
from typing import Annotated

import typer

__all__ = ["app", "due_date"]


def _parse_received(value: str) -> datetime:
    """ISO 8601 instant; a naive one is a wall-clock time in Việt Nam (+07:00), the one-stop shop's clock."""
    from eventkit.worktime import VN_TZ  # noqa: PLC0415

    try:
        received = datetime.fromisoformat(value)
    except ValueError:
        msg = f"not an ISO 8601 date-time: {value!r} (e.g. 2026-02-13T10:00:00+07:00)"
        raise typer.BadParameter(msg, param_hint="--received") from None
    if received.tzinfo is None:
        received = received.replace(tzinfo=VN_TZ)
    return received.astimezone(VN_TZ)


def due_date(
    *,
    received: Annotated[
        str,
        typer.Option(
            "--received",
            help="When the dossier was received, ISO 8601 (2026-02-13T10:00:00+07:00); "
            "without an offset it is read as Việt Nam time (+07:00)",
        ),
    ],
    working_days: Annotated[
        float | None, typer.Option("--working-days", min=0, help="Limit in working days (ngày làm việc)")
    ] = None,
    working_hours: Annotated[
        float | None, typer.Option("--working-hours", min=0, help="Limit in working hours (giờ làm việc)")
    ] = None,
    province: Annotated[
        str | None, typer.Option("--province", help="Province code: also apply <calendar-dir>/<CODE>.yaml")
    ] = None,
    calendar_dir: Annotated[
        Path | None,
        typer.Option(
            "--calendar-dir",
            envvar="CHISO_CALENDAR_DIR",
            file_okay=False,
            help="Directory of province override files (env CHISO_CALENDAR_DIR)",
        ),
    ] = None,
    as_json: Annotated[
        bool, typer.Option("--json", help="Print received, normalized_start, due_at and calendar_version as JSON")
    ] = False,
) -> None:
    """Print the due date of a limit in working days or working hours (DOMAIN §3.2, canonical form)."""
    from eventkit.worktime import CalendarConfigError, WorkingCalendar  # noqa: PLC0415

    if (working_days is None) == (working_hours is None):
        msg = "give exactly one of --working-days and --working-hours"
        raise typer.BadParameter(msg, param_hint="'--working-days' / '--working-hours'")
    start = _parse_received(received)
    if province is not None and calendar_dir is None:
        msg = "--province needs the directory of override files: --calendar-dir or CHISO_CALENDAR_DIR"
        raise typer.BadParameter(msg, param_hint="--province")
    try:
        calendar = WorkingCalendar.load(province, overrides_dir=calendar_dir)
    except CalendarConfigError as e:
        typer.echo(f"invalid calendar override: {e}", err=True)
        raise typer.Exit(1) from None
    except ValueError as e:  # a province code that cannot name a file
        raise typer.BadParameter(str(e), param_hint="--province") from None
    if province is not None and calendar_dir is not None and not (calendar_dir / f"{province}.yaml").is_file():
        typer.echo(f"no {province}.yaml in {calendar_dir}: the national calendar applies", err=True)
    try:
        if working_days is not None:
            due = calendar.due_at(start, working_days, "working_days")
        else:
            assert working_hours is not None  # exactly one is set, checked above
            due = calendar.due_at(start, working_hours, "working_hours")
    except ValueError as e:  # outside the calendar's years
        typer.echo(str(e), err=True)
        raise typer.Exit(1) from None
    if as_json:
        document = {
            "received": start.isoformat(),
            "normalized_start": calendar.normalize(start).isoformat(),
            "due_at": due.isoformat(),
            "calendar_version": calendar.version,
        }
        typer.echo(json.dumps(document, ensure_ascii=False))
    else:
        typer.echo(due.isoformat())


app = typer.Typer(help="The dossiers service: bulk backfill of DVCQG exports.", no_args_is_help=True)


@app.command("import")
def import_file(  # noqa: PLR0917 - typer passes the options
    file: Annotated[Path, typer.Argument(exists=True, dir_okay=False, help="DVCQG export: .jsonl/.ndjson or .csv")],
    unit: Annotated[
        str | None, typer.Option("--unit", help="Commune code for records without MaDVHC (2025 or pre-2025 code)")
    ] = None,
    source: Annotated[
        str, typer.Option("--source", help="Partner the facts are attributed to (keep it stable across exports)")
    ] = "urn:dvcqg:export",
    batch: Annotated[int, typer.Option("--batch", min=1, max=20_000, help="Records per transaction")] = 1000,
    rejects: Annotated[
        Path | None, typer.Option("--rejects", help="Where rejected records go (default: FILE.rejects.jsonl)")
    ] = None,
    restart: Annotated[bool, typer.Option("--restart", help="Forget this file's progress and start over")] = False,
    workers: Annotated[
        int,
        typer.Option(
            "--workers",
            min=1,
            max=16,
            help="Import processes, the records split by dossier (a resumed import needs the same number)",
        ),
    ] = 1,
    as_json: Annotated[bool, typer.Option("--json", help="Print the summary as JSON")] = False,
) -> None:
    """Import a DVCQG export through the dossiers domain (resumable; prints accepted/rejected with reasons).

    Needs DATABASE_URL (the dossiers service's database) and DOSSIERS_PSEUDONYM_SECRET (the service's key).
    The running service's relay publishes the imported events.
    """
    import asyncio  # noqa: PLC0415 - keep `chiso --help` fast

    from rich.console import Console  # noqa: PLC0415
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn  # noqa: PLC0415
    from rich.table import Table  # noqa: PLC0415

    from eventkit.settings import DatabaseSettings  # noqa: PLC0415
    from services.dossiers.importer import run_import  # noqa: PLC0415
    from services.dossiers.settings import DossiersSettings  # noqa: PLC0415

    console = Console(stderr=True)
    settings = DossiersSettings()
    try:
        settings.secret_bytes()
    except RuntimeError as exc:
        console.print(f"[red]{exc}[/red]")
        raise typer.Exit(2) from None
    columns = (TextColumn("importing"), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn())
    with Progress(*columns, console=console, disable=as_json) as progress:
        task = progress.add_task("import", total=None)

        def on_progress(done: int, total: int) -> None:
            progress.update(task, completed=done, total=total)

        try:
            summary = asyncio.run(
                run_import(
                    file,
                    settings=settings,
                    database_url=DatabaseSettings().url,
                    unit=unit,
                    source=source,
                    batch_size=batch,
                    rejects_path=rejects,
                    restart=restart,
                    on_progress=on_progress,
                    workers=workers,
                )
            )
        except ValueError as exc:  # a refused resume, an unreadable export: said, not a traceback
            console.print(f"[red]{exc}[/red]")
            raise typer.Exit(2) from None
    if as_json:
        typer.echo(
            json.dumps(
                {
                    "file": summary.path,
                    "records": summary.total,
                    "resumed_from": summary.resumed_from,
                    "accepted": summary.accepted,
                    "duplicates": summary.duplicates,
                    "rejected": summary.rejected,
                    "events": summary.events,
                    "seconds": round(summary.seconds, 3),
                    "records_per_second": round(summary.records_per_second, 1),
                    "rejections_by_rule": dict(summary.reasons.most_common()),
                    "rejects_file": summary.rejects_path,
                },
                ensure_ascii=False,
            )
        )
        return
    table = Table(title=f"import of {summary.path}")
    table.add_column("records")
    table.add_column("accepted")
    table.add_column("already stored")
    table.add_column("rejected")
    table.add_column("events stored")
    table.add_column("records/s")
    table.add_row(
        str(summary.total),
        str(summary.accepted),
        str(summary.duplicates),
        str(summary.rejected),
        str(summary.events),
        f"{summary.records_per_second:,.0f}",
    )
    out = Console()
    out.print(table)
    if summary.resumed_from:
        out.print(f"resumed after record {summary.resumed_from}")
    if summary.reasons:
        reasons = Table(title="rejected, by rule")
        reasons.add_column("records")
        reasons.add_column("rule")
        for rule, count in summary.reasons.most_common(15):
            reasons.add_row(str(count), rule)
        out.print(reasons)
        for number, reason in summary.examples[:10]:
            out.print(f"  record {number}: {reason}")
        out.print(f"rejected records (with the original) are in {summary.rejects_path}")
