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

__all__ = ["due_date"]


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
