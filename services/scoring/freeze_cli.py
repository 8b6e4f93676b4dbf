"""``chiso scoring freeze``: store a period's values at its cut-off (registered in :mod:`services.scoring.cli`)."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

import typer

__all__ = ["freeze_command"]


def freeze_command(
    *,
    period: Annotated[str, typer.Option("--period", help="month | quarter | year | ytd | report")],
    start: Annotated[datetime, typer.Option("--start", formats=["%Y-%m-%d"], help="A day of the period")],
    unit: Annotated[str | None, typer.Option("--unit", help="One unit code (commune, province, district)")] = None,
    province: Annotated[
        str | None, typer.Option("--province", help="The province and every unit with dossiers in it")
    ] = None,
    scheme: Annotated[str | None, typer.Option("--scheme", help="Reporting scheme (period report)")] = None,
    report: Annotated[str | None, typer.Option("--report", help="Report key of the scheme, e.g. q1")] = None,
    config: Annotated[str | None, typer.Option("--config", help="766 configuration version")] = None,
) -> None:
    """Freeze a period at its cut-off: its values are stored; later events show as corrections beside them.

    Refused before the period's cut-off; a unit and period already frozen is left as it is (reported). Served
    by ``GET /units/{code}/period-indicators`` (frozen value, live value, correction). Needs DATABASE_URL.
    """
    import asyncio  # noqa: PLC0415 - keep `chiso --help` fast

    from eventkit.settings import DatabaseSettings  # noqa: PLC0415
    from services.scoring.settings import ScoringSettings  # noqa: PLC0415

    if (unit is None) == (province is None):
        raise typer.BadParameter("give exactly one of --unit and --province")
    from services.scoring.ranges import freeze_units  # noqa: PLC0415

    settings = ScoringSettings()
    try:
        done, skipped = asyncio.run(
            freeze_units(
                DatabaseSettings().url,
                settings.db_schema,
                unit=unit,
                province=province,
                period=period,
                start=start.date(),
                scheme=scheme,
                report=report,
                config_dir=settings.d766_config_dir,
                config=config or settings.d766_default,
            )
        )
    except ValueError as exc:
        typer.echo(f"refused: {exc}", err=True)
        raise typer.Exit(2) from exc
    typer.echo(f"frozen {len(done)} unit(s): {', '.join(done)}")
    if skipped:
        typer.echo(f"already frozen, left as they were: {', '.join(skipped)}")
