"""Composition root of the dossiers service: settings -> runtime -> inbox, relay, HTTP."""

from __future__ import annotations

from collections.abc import Sequence

from fastapi import APIRouter, FastAPI

from contracts.envelope import make_envelope
from contracts.registry import default_registry
from contracts.topics import DOSSIERS_INBOUND
from eventkit.deadletter import DeadLetterPublisher
from eventkit.inbox import Append, Inbox
from eventkit.projection import ConsumedEvent, ProjectionRunner
from eventkit.service import Component, Runtime, ServiceSettings, service_app, store_and_relay
from services.dossiers.domain import decide_inbound_fact
from services.dossiers.settings import DossiersSettings

__all__ = ["INBOX", "build_app"]

#: the consumer of the inbound topic (its consumer group and dead-letter topic are named after it)
INBOX = "dossiers.inbound"


def build_app(settings: DossiersSettings | None = None, shell: ServiceSettings | None = None) -> FastAPI:
    """The dossiers service as an ASGI app (nothing connects until the app starts)."""
    own = settings or DossiersSettings()
    shell = shell or ServiceSettings(name="dossiers", schema=own.db_schema)
    registry = default_registry()

    def accept(event: ConsumedEvent) -> Sequence[Append] | str:
        decision = decide_inbound_fact(event.attributes.to_attributes(), event.data)
        if isinstance(decision, str):
            return decision
        canonical = make_envelope(
            event.data,
            id=decision.event_id,
            source=own.source,
            subject=decision.stream_id,
            time=event.attributes.time,
            unitcode=event.attributes.unitcode,
            provincecode=event.attributes.provincecode,
            correlationid=event.attributes.correlationid or str(event.attributes.id),
            causationid=str(event.attributes.id),
        )
        return [Append(decision.stream_id, None, [canonical])]

    async def assemble(runtime: Runtime) -> tuple[Sequence[Component], Sequence[APIRouter]]:
        store, relay = store_and_relay(runtime)
        inbox = ProjectionRunner(
            projection=Inbox(name=INBOX, topic=DOSSIERS_INBOUND, store=store, accept=accept),
            pool=runtime.pool,
            kafka=shell.kafka,
            registry=registry,
            dead_letters=DeadLetterPublisher(runtime.producer, INBOX),
            metrics=runtime.metrics,
        )
        return [inbox, relay], []

    return service_app(
        shell,
        registry,
        assemble,
        title="chiso dossiers",
        description="One-stop-shop dossier facts in; canonical dossier events out.",
        dead_letter_consumers=(INBOX,),
    )
