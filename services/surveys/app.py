"""Composition root of the surveys service: settings -> runtime -> event store relay, HTTP.

Its ways in (HTTP API, imports) and its domain arrive with the surveys issue; the shell already runs the
event store, the relay to ``SURVEYS_EVENTS`` and /health, /ready, /metrics.
"""

from __future__ import annotations

from collections.abc import Sequence

from fastapi import APIRouter, FastAPI

from contracts.registry import default_registry
from eventkit.service import Component, Runtime, ServiceSettings, service_app, store_and_relay
from services.surveys.settings import SurveysSettings

__all__ = ["build_app"]


def build_app(settings: SurveysSettings | None = None, shell: ServiceSettings | None = None) -> FastAPI:
    """The surveys service as an ASGI app (nothing connects until the app starts)."""
    own = settings or SurveysSettings()
    shell = shell or ServiceSettings(name="surveys", schema=own.db_schema)
    registry = default_registry()

    async def assemble(runtime: Runtime) -> tuple[Sequence[Component], Sequence[APIRouter]]:
        _, relay = store_and_relay(runtime)
        return [relay], []

    return service_app(shell, registry, assemble, title="chiso surveys", description="chiso surveys service")
