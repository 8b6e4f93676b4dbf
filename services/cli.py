"""``chiso``: the command line of the whole system (each issue adds its subcommands here).

Imports of the services happen inside the commands, so ``chiso --help`` is fast and builds nothing.
"""

from __future__ import annotations

import asyncio
import contextlib
import signal
from collections.abc import Iterator
from enum import StrEnum
from importlib import import_module
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.console import Console
from rich.progress import Progress
from rich.table import Table

from infra.cli import app as infra_app
from services.dossiers.cli import app as dossiers_app
from services.dossiers.cli import due_date
from services.plans.cli import app as plans_app
from services.scoring.catalogue_cli import app as catalogue_app
from services.scoring.cli import app as scoring_app
from services.scoring.papi_cli import app as papi_app
from services.simulator.cli import simulate
from services.surveys.cli import app as surveys_app

if TYPE_CHECKING:
    from fastapi import FastAPI

__all__ = ["app", "main"]

app = typer.Typer(
    help="chiso: live administrative-reform indicators (PAR Index, SIPAS, PAPI, Decision 766) per commune.",
    no_args_is_help=True,
)
app.add_typer(infra_app, name="infra", help="Local Kafka broker and PostgreSQL without Docker.")
deadletters_app = typer.Typer(help="Records consumers could not process: list them, replay them.", no_args_is_help=True)
app.add_typer(deadletters_app, name="deadletters")
contracts_app = typer.Typer(help="Generated contract artefacts: JSON Schemas and AsyncAPI documents.")
app.add_typer(contracts_app, name="contracts")
topics_app = typer.Typer(help="Kafka topics of the system.")
app.add_typer(topics_app, name="topics")
app.add_typer(plans_app, name="plans")
app.add_typer(dossiers_app, name="dossiers")
app.add_typer(surveys_app, name="surveys")
app.add_typer(papi_app, name="papi")
app.add_typer(scoring_app, name="scoring")
app.add_typer(catalogue_app, name="catalogue")
app.command("due-date")(due_date)
app.command("simulate")(simulate)  # the generator and its clients are imported when it runs

_console = Console(stderr=True)
_REPO = Path(__file__).resolve().parents[1]


class Service(StrEnum):
    """The runnable services."""

    dossiers = "dossiers"
    surveys = "surveys"
    plans = "plans"
    scoring = "scoring"
    all = "all"


def _build(service: str) -> tuple[FastAPI, str, int]:
    """The service's app and where it listens: every service has ``app.build_app`` and ``<Name>Settings``."""
    settings_cls = getattr(import_module(f"services.{service}.settings"), f"{service.capitalize()}Settings")
    settings = settings_cls()
    build_app = import_module(f"services.{service}.app").build_app
    return build_app(settings), settings.http_host, settings.http_port


@app.command()
def run(service: Annotated[Service, typer.Argument(help="Which service, or all of them in one process")]) -> None:
    """Run a service (HTTP API, /health, /ready, /metrics, and its Kafka consumers and relay); Ctrl-C stops it."""
    import uvicorn  # noqa: PLC0415

    from eventkit.http_server import CoalescingHttpToolsProtocol  # noqa: PLC0415

    class _Server(uvicorn.Server):
        # several servers share one process: the command owns SIGINT/SIGTERM and stops them all together
        @contextlib.contextmanager
        def capture_signals(self) -> Iterator[None]:
            yield

    names = [s.value for s in Service if s is not Service.all] if service is Service.all else [service.value]
    servers: list[uvicorn.Server] = []
    for name in names:
        asgi, host, port = _build(name)
        config = uvicorn.Config(
            asgi, host=host, port=port, log_config=None, lifespan="on", http=CoalescingHttpToolsProtocol
        )
        servers.append(_Server(config))
        _console.print(f"[bold]{name}[/bold] on http://{host}:{port}  (/health /ready /metrics /docs)")

    async def serve_all() -> None:
        loop = asyncio.get_running_loop()

        def stop_all() -> None:
            for server in servers:
                server.should_exit = True

        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop_all)
        await asyncio.gather(*(s.serve() for s in servers))

    asyncio.run(serve_all())


@deadletters_app.command("list")
def deadletters_list(
    consumer: Annotated[str, typer.Argument(help="Consumer name, e.g. dossiers.inbound or scoring.unit_activity")],
    limit: Annotated[int, typer.Option(help="Show at most this many")] = 100,
) -> None:
    """List the dead letters of a consumer: where each came from and why it failed."""
    from eventkit.deadletter import read_dead_letters  # noqa: PLC0415
    from eventkit.settings import KafkaSettings  # noqa: PLC0415

    letters = asyncio.run(read_dead_letters(KafkaSettings().bootstrap_servers, consumer, limit=limit))
    table = Table(title=f"dead letters of {consumer} ({len(letters)})")
    for column in ("dlq offset", "origin", "type", "failed at", "reason"):
        table.add_column(column)
    for d in letters:
        table.add_row(
            f"{d.dlq_partition}:{d.dlq_offset}",
            f"{d.origin_topic}[{d.origin_partition}]@{d.origin_offset}",
            d.event_type or "-",
            d.failed_at,
            d.reason,
        )
    Console().print(table)


@deadletters_app.command("replay")
def deadletters_replay(
    consumer: Annotated[str, typer.Argument(help="Consumer name whose dead letters to replay")],
    offset: Annotated[list[int] | None, typer.Option(help="Dead-letter offset to replay (repeatable)")] = None,
    replay_all: Annotated[bool, typer.Option("--all", help="Replay every dead letter of the consumer")] = False,
) -> None:
    """Publish dead letters back to their origin topic (after the cause was fixed); duplicates are ignored."""
    from eventkit.deadletter import read_dead_letters, replay_dead_letters  # noqa: PLC0415
    from eventkit.kafka import build_producer  # noqa: PLC0415
    from eventkit.settings import KafkaSettings  # noqa: PLC0415

    if not replay_all and not offset:
        raise typer.BadParameter("name --offset N (repeatable) or --all")
    kafka = KafkaSettings()

    async def replay() -> int:
        letters = await read_dead_letters(kafka.bootstrap_servers, consumer, limit=1_000_000)
        chosen = letters if replay_all else [d for d in letters if d.dlq_offset in set(offset or ())]
        producer = build_producer(kafka, "deadletters-replay")
        await producer.start()
        try:
            with Progress(console=_console) as progress:
                task = progress.add_task("replaying", total=len(chosen))
                for letter in chosen:
                    await replay_dead_letters(producer, [letter])
                    progress.advance(task)
        finally:
            await producer.stop()
        return len(chosen)

    _console.print(f"replayed {asyncio.run(replay())} dead letter(s) of {consumer}")


@contracts_app.command("generate")
def contracts_generate() -> None:
    """Write the JSON Schema of every event type and the AsyncAPI document of every service."""
    from contracts.registry import default_registry  # noqa: PLC0415
    from contracts.schemagen import write_schemas  # noqa: PLC0415
    from services.asyncapi import write_asyncapi  # noqa: PLC0415

    schemas = write_schemas(_REPO / "contracts" / "schemas", default_registry())
    documents = write_asyncapi(_REPO / "contracts" / "asyncapi")
    _console.print(f"wrote {len(schemas)} schemas and {len(documents)} AsyncAPI documents")


@contracts_app.command("check")
def contracts_check() -> None:
    """Fail when a committed artefact differs from the code (run `chiso contracts generate`)."""
    from contracts.registry import default_registry  # noqa: PLC0415
    from contracts.schemagen import check_drift  # noqa: PLC0415
    from services.asyncapi import check_asyncapi  # noqa: PLC0415

    problems = check_drift(_REPO / "contracts" / "schemas", default_registry())
    problems += check_asyncapi(_REPO / "contracts" / "asyncapi")
    for problem in problems:
        _console.print(f"[red]{problem}[/red]")
    if problems:
        raise typer.Exit(1)
    _console.print("contracts: no drift")


@topics_app.command("provision")
def topics_provision() -> None:
    """Create the system's topics (event topics keep their history forever) if they are missing."""
    from contracts.topics import TOPICS  # noqa: PLC0415
    from eventkit.settings import KafkaSettings  # noqa: PLC0415
    from infra.topics import provision_topics, topic_spec  # noqa: PLC0415

    specs = [topic_spec(t) for t in TOPICS]
    created: Any = asyncio.run(provision_topics(KafkaSettings().bootstrap_servers, specs))
    _console.print(f"created {len(created)} topic(s): {', '.join(created) or '-'}")


def main() -> None:
    """Console entry point."""
    app()
