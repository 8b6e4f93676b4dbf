"""Composition root of the scoring service: settings -> runtime -> projections, query API."""

from __future__ import annotations

from collections.abc import Sequence

from fastapi import APIRouter, FastAPI

from contracts.registry import default_registry
from eventkit.deadletter import DeadLetterPublisher
from eventkit.pg import apply_migrations
from eventkit.projection import ProjectionRunner
from eventkit.service import Component, Runtime, ServiceSettings, service_app
from services.scoring.projections import UnitActivityProjection
from services.scoring.queries import query_router
from services.scoring.settings import ScoringSettings

__all__ = ["build_app"]


def build_app(settings: ScoringSettings | None = None, shell: ServiceSettings | None = None) -> FastAPI:
    """The scoring service as an ASGI app (nothing connects until the app starts)."""
    own = settings or ScoringSettings()
    projections = [UnitActivityProjection()]
    shell = shell or ServiceSettings(name="scoring", schema=own.db_schema)
    registry = default_registry()

    async def assemble(runtime: Runtime) -> tuple[Sequence[Component], Sequence[APIRouter]]:
        runners = []
        for projection in projections:
            await apply_migrations(runtime.pool, projection.name, projection.migrations)
            runners.append(
                ProjectionRunner(
                    projection=projection,
                    pool=runtime.pool,
                    kafka=shell.kafka,
                    registry=registry,
                    dead_letters=DeadLetterPublisher(runtime.producer, projection.name),
                    metrics=runtime.metrics,
                    max_records=own.max_batch,
                )
            )
        return runners, [query_router(runtime.pool)]

    return service_app(
        shell,
        registry,
        assemble,
        title="chiso scoring",
        description="Live per-commune indicators projected from the dossiers, surveys and plans events.",
        dead_letter_consumers=tuple(p.name for p in projections),
    )
