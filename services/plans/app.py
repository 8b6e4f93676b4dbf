"""Composition root of the plans service: settings -> runtime -> event store, handler, HTTP API, overdue
watch, relay to ``vn.cchc.plans.events``."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import UTC, datetime

from fastapi import APIRouter, FastAPI

from contracts.registry import default_registry
from eventkit.service import Component, Runtime, ServiceSettings, service_app, store_and_relay
from services.plans.api import plans_router
from services.plans.config import build_rules, load_criteria_sets, load_indicators
from services.plans.domain import Rules
from services.plans.handler import PlansHandler
from services.plans.overdue import OverdueWatch
from services.plans.settings import PlansSettings

__all__ = ["build_app", "rules_from"]


def rules_from(settings: PlansSettings) -> Rules:
    """The domain's rules from the service's configuration (files are read here, not at import)."""
    return build_rules(
        indicators=load_indicators(settings.indicators_file),
        criteria_sets=load_criteria_sets(settings.criteria_dir),
        calendar_overrides_dir=settings.calendar_overrides_dir,
        province_code=settings.calendar_province,
    )


def build_app(
    settings: PlansSettings | None = None,
    shell: ServiceSettings | None = None,
    *,
    clock: Callable[[], datetime] | None = None,
) -> FastAPI:
    """The plans service as an ASGI app (nothing connects until the app starts)."""
    own = settings or PlansSettings()
    shell = shell or ServiceSettings(name="plans", schema=own.db_schema)
    registry = default_registry()
    now = clock or (lambda: datetime.now(UTC))

    async def assemble(runtime: Runtime) -> tuple[Sequence[Component], Sequence[APIRouter]]:
        store, relay = store_and_relay(runtime)
        handler = PlansHandler(store, rules_from(own), now, own.source)
        overdue = OverdueWatch(store=store, handler=handler, clock=now, interval_s=own.overdue_interval_s)
        return [relay, overdue], [plans_router(handler)]

    return service_app(
        shell,
        registry,
        assemble,
        title="chiso plans",
        description="CCHC plans, targets, tasks, reports, inspections and PAR criterion assessments, recorded as "
        "events on vn.cchc.plans.events.",
    )
