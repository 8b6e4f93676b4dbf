"""Composition root of the dossiers service: settings -> runtime -> inbox, intake, scheduler, relay, HTTP."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import UTC, datetime

from fastapi import APIRouter, FastAPI

from contracts.registry import default_registry
from eventkit.deadletter import DeadLetterPublisher
from eventkit.heap import settle_heap_for_batches
from eventkit.pg import apply_migrations
from eventkit.projection import ProjectionRunner
from eventkit.service import Component, Runtime, ServiceSettings, service_app, store_and_relay
from services.dossiers import api, intake
from services.dossiers.compose import build_intake, judges
from services.dossiers.inbox import INBOX, DossierInbox
from services.dossiers.scheduler import OverdueScheduler
from services.dossiers.settings import DossiersSettings

__all__ = ["INBOX", "build_app"]


def _now() -> datetime:
    return datetime.now(UTC)


def build_app(
    settings: DossiersSettings | None = None,
    shell: ServiceSettings | None = None,
    clock: Callable[[], datetime] = _now,
) -> FastAPI:
    """The dossiers service as an ASGI app (nothing connects until the app starts)."""
    own = settings or DossiersSettings()
    shell = shell or ServiceSettings(name="dossiers", schema=own.db_schema)
    registry = default_registry()
    own.secret_bytes()  # fail before anything starts when the pseudonym key is missing

    async def assemble(runtime: Runtime) -> tuple[Sequence[Component], Sequence[APIRouter]]:
        await apply_migrations(runtime.pool, "dossiers.intake", intake.MIGRATIONS)
        await apply_migrations(runtime.pool, "dossiers.api", api.MIGRATIONS)
        store, relay = store_and_relay(runtime)
        the_intake = build_intake(own, store)
        inbox = ProjectionRunner(
            projection=DossierInbox(the_intake, clock),
            pool=runtime.pool,
            kafka=shell.kafka,
            registry=registry,
            dead_letters=DeadLetterPublisher(runtime.producer, INBOX),
            metrics=runtime.metrics,
        )
        scheduler = OverdueScheduler(
            runtime.pool, the_intake, clock, interval=own.overdue_interval_s, settle=own.overdue_settle_s
        )
        router = api.api_router(
            pool=runtime.pool, intake=the_intake, registry=registry, clock=clock, judge_of=judges(own)
        )
        # the inbox judges thousands of facts per batch: their objects must die young (eventkit.heap)
        settle_heap_for_batches()
        return [inbox, scheduler, relay], [router]

    return service_app(
        shell,
        registry,
        assemble,
        title="chiso dossiers",
        description="One-stop-shop dossier facts in (Kafka, HTTP, bulk import); canonical dossier events out: "
        "the lifecycle judged by the rules in force at receipt, working-time due dates, timeliness verdicts.",
        dead_letter_consumers=(INBOX,),
    )
