"""``chiso simulate``: a province's traffic through the services' real inbound interfaces.

Only typer and rich are imported with this module (``chiso --help`` stays fast); the generator, the unit
registry, the calendar and the Kafka/HTTP clients are loaded when the command runs.
"""

from __future__ import annotations

import asyncio
import os
from datetime import date, datetime, timedelta
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.console import Console

if TYPE_CHECKING:
    from collections.abc import Iterable

    from services.simulator.answers import InstrumentDoc
    from services.simulator.send import Summary, Targets
    from services.simulator.traffic import Item, Scenario

__all__ = ["simulate"]

_console = Console(stderr=True)
#: the questionnaire SIPAS responses answer (the version in force at the start date is used)
_SIPAS = "sipas-service"


class DossiersVia(StrEnum):
    """How dossier facts are sent."""

    kafka = "kafka"
    http = "http"


class SurveysVia(StrEnum):
    """How survey responses are sent."""

    kafka = "kafka"
    http = "http"
    off = "off"


def simulate(  # noqa: PLR0917 - typer passes the options
    province: Annotated[str, typer.Option(help="2-digit province code, e.g. 01 (Hà Nội: 126 communes)")],
    days: Annotated[int, typer.Option(min=1, help="Simulated calendar days")] = 30,
    rate: Annotated[float, typer.Option(min=0, help="Events sent per second of real time (0: unpaced)")] = 50.0,
    start: Annotated[
        str | None, typer.Option(help="First simulated day (YYYY-MM-DD); default: DAYS days before today")
    ] = None,
    seed: Annotated[int, typer.Option(help="Random seed: the same seed sends the same facts with the same ids")] = 7,
    communes: Annotated[int | None, typer.Option(min=1, help="Only the first N communes of the province")] = None,
    dossiers_per_day: Annotated[float, typer.Option(min=0, help="Mean dossiers per commune per working day")] = 12.0,
    survey_share: Annotated[float, typer.Option(min=0, max=1, help="Share of delivered dossiers rated in SIPAS")] = 0.2,
    tasks: Annotated[int, typer.Option(min=0, help="Plan tasks per commune (0: no plans)")] = 3,
    kafka: Annotated[
        str, typer.Option(envvar="KAFKA_BOOTSTRAP_SERVERS", help="Kafka brokers (dossier facts, survey responses)")
    ] = "127.0.0.1:9092",
    dossiers_via: Annotated[DossiersVia, typer.Option(help="Dossier facts: Kafka inbound topic or POST /v1/facts")] = (
        DossiersVia.kafka
    ),
    dossiers_url: Annotated[
        str, typer.Option(help="Dossiers service (with --dossiers-via http)")
    ] = "http://127.0.0.1:8101",
    surveys_via: Annotated[
        SurveysVia, typer.Option(help="Survey responses: Kafka inbound topic, POST /v1/responses with link tokens, off")
    ] = SurveysVia.kafka,
    surveys_url: Annotated[str, typer.Option(help="Surveys service (instrument; responses with http)")] = (
        "http://127.0.0.1:8102"
    ),
    plans_url: Annotated[str, typer.Option(help="Plans service HTTP API")] = "http://127.0.0.1:8103",
    instrument_file: Annotated[
        Path | None, typer.Option(help="SIPAS instrument file (YAML/JSON); default: asked from the surveys service")
    ] = None,
    source: Annotated[str | None, typer.Option(help="CloudEvents source of the facts (one-stop-shop system)")] = None,
    dry_run: Annotated[Path | None, typer.Option(help="Write what would be sent to this JSON-lines file")] = None,
) -> None:
    """Simulate a province: dossiers, SIPAS responses and plan tasks for its real communes, sent to the
    services as a one-stop-shop system, a survey partner and officials' software would send them."""
    from eventkit.units import UnitRegistry  # noqa: PLC0415
    from eventkit.worktime import VN_TZ, WorkingCalendar  # noqa: PLC0415
    from services.simulator.send import Targets  # noqa: PLC0415
    from services.simulator.traffic import Scenario, generate  # noqa: PLC0415

    units = UnitRegistry.load()
    if units.province(province) is None:
        raise typer.BadParameter(f"no current province {province!r} (34 provinces since 2025)", param_hint="--province")
    first = date.fromisoformat(start) if start else datetime.now(VN_TZ).date() - timedelta(days=days)
    calendar_dir = os.environ.get("CHISO_CALENDAR_DIR")
    calendar = (
        WorkingCalendar.load(province, overrides_dir=Path(calendar_dir)) if calendar_dir else WorkingCalendar.load()
    )
    instrument = None
    if surveys_via is not SurveysVia.off:
        instrument = _instrument(instrument_file, surveys_url, first, fallback=dry_run is not None)
    scenario = Scenario(
        province=province,
        days=days,
        start=first,
        seed=seed,
        communes=communes,
        dossiers_per_commune_day=dossiers_per_day,
        survey_share=survey_share,
        tasks_per_commune=tasks,
        plans=tasks > 0,
        surveys=instrument is not None,
        source=source or "",
        cutoff=datetime.now(VN_TZ),  # facts are never dated in the future
    )
    secret = os.environ.get("SURVEYS_TOKEN_SECRET")
    targets = Targets(
        kafka=kafka if dossiers_via is DossiersVia.kafka or surveys_via is SurveysVia.kafka else None,
        dossiers_url=dossiers_url if dossiers_via is DossiersVia.http else None,
        surveys_via=surveys_via.value,
        surveys_url=surveys_url,
        link_secret=secret.encode() if secret else None,
        plans_url=plans_url if tasks > 0 else None,
        dry_run=dry_run,
    )
    if dossiers_via is DossiersVia.http and targets.kafka is not None and dry_run is None:
        _console.print("dossier facts over HTTP; survey responses over Kafka")
    chosen = units.communes_of(province)
    shown = chosen[:communes] if communes else chosen
    _console.print(
        f"[bold]{units.province(province).name}[/bold]: {len(shown)} communes, "  # type: ignore[union-attr]
        f"{first} + {days} days, seed {seed}, {rate:g} events/s"
        + (f", SIPAS {instrument.version}" if instrument else "")
    )
    items = generate(scenario, chosen, calendar, instrument)
    summary = asyncio.run(_run(scenario, items, targets, rate))
    _print_summary(summary, dry_run)
    if summary.refused:
        raise typer.Exit(1)


async def _run(scenario: Scenario, items: Iterable[Item], targets: Targets, rate: float) -> Summary:
    from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn  # noqa: PLC0415

    from services.simulator.send import send_all  # noqa: PLC0415

    origin = scenario.window_start
    span = max(1.0, (scenario.end - origin).total_seconds())
    with Progress(
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        TextColumn("{task.fields[clock]}"),
        TextColumn("{task.fields[counts]}"),
        TimeElapsedColumn(),
        console=_console,
    ) as progress:
        bar = progress.add_task("simulated time", total=span, clock="", counts="")
        furthest = origin

        def on_item(item: Item, summary: Summary) -> None:
            nonlocal furthest
            furthest = max(furthest, item.at)
            progress.update(
                bar,
                completed=(furthest - origin).total_seconds(),
                clock=f"{furthest:%Y-%m-%d %H:%M}",
                counts=f"facts {sum(summary.facts.values())} · surveys {summary.surveys} · "
                f"plans {sum(summary.plans.values())}",
            )

        summary = await send_all(items, targets, rate=rate, on_item=on_item)
        progress.update(bar, completed=span)
    return summary


def _instrument(path: Path | None, surveys_url: str, day: date, *, fallback: bool) -> InstrumentDoc:
    """The SIPAS version in force on ``day``: from a file, else the surveys service, else (dry run) the
    shipped instrument files read as data."""
    import httpx  # noqa: PLC0415

    from services.simulator.answers import InstrumentDoc, load_instrument_file  # noqa: PLC0415

    if path is not None:
        return load_instrument_file(path)
    base = surveys_url.rstrip("/")
    try:
        listed = httpx.get(f"{base}/v1/instruments", timeout=10).raise_for_status().json()
        for entry in listed:
            if entry["id"] == _SIPAS and _covers(entry, day):
                url = f"{base}/v1/instruments/{_SIPAS}/versions/{entry['version']}"
                return InstrumentDoc.from_document(httpx.get(url, timeout=10).raise_for_status().json())
        msg = f"the surveys service has no {_SIPAS} version in force on {day}"
        raise typer.BadParameter(msg, param_hint="--start")
    except httpx.HTTPError as exc:
        if not fallback:
            msg = f"cannot read the instruments at {base} ({exc}): start the surveys service or use --instrument-file"
            raise typer.BadParameter(msg, param_hint="--surveys-url") from None
    # dry run without a surveys service: the files the service ships, read as data (not imported)
    shipped = Path(__file__).resolve().parents[1] / "surveys" / "instruments"
    for candidate in sorted(shipped.glob(f"{_SIPAS}-*.yaml")):
        doc = load_instrument_file(candidate)
        if doc.in_force(day):
            return doc
    msg = f"no shipped {_SIPAS} version is in force on {day}; pass --instrument-file"
    raise typer.BadParameter(msg, param_hint="--instrument-file")


def _covers(entry: dict[str, str | None], day: date) -> bool:
    begins, ends = entry.get("effective_from"), entry.get("effective_to")
    return (begins is None or date.fromisoformat(begins) <= day) and (ends is None or day <= date.fromisoformat(ends))


def _print_summary(summary: Summary, dry_run: Path | None) -> None:
    from rich.table import Table  # noqa: PLC0415

    table = Table(title=f"sent in {summary.seconds:.1f} s" + (f" (dry run: {dry_run})" if dry_run else ""))
    table.add_column("what")
    table.add_column("count", justify="right")
    for event_type, count in sorted(summary.facts.items()):
        table.add_row(event_type, str(count))
    table.add_row("[bold]dossier facts[/bold]", str(sum(summary.facts.values())))
    table.add_row("[bold]survey responses[/bold]", str(summary.surveys))
    for path, count in sorted(summary.plans.items()):
        table.add_row(f"plans API {path}", str(count))
    if summary.duplicates:
        table.add_row("already stored (idempotent re-sends)", str(summary.duplicates))
    for what, count in summary.skipped.items():
        table.add_row(f"skipped: {what}", str(count))
    Console().print(table)
    for reason, count in summary.refused.most_common(20):
        _console.print(f"[red]refused {count} times:[/red] {reason}")
