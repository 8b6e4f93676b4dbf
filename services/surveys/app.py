"""Composition root of the surveys service: settings -> runtime -> inbox, HTTP group commit, relay, HTTP.

Ways in: the HTTP API (kiosks, tablets, the QR/SMS form page), the Kafka inbound topic (partner survey
systems) and ``chiso surveys import`` (paper results; a separate process writing the same store). All three
go through one intake; the relay publishes the response events to ``vn.cchc.surveys.events``.
"""

from __future__ import annotations

import functools
import time
from collections.abc import Callable, Sequence
from datetime import UTC, datetime

from fastapi import APIRouter, FastAPI

from contracts.registry import default_registry
from eventkit.deadletter import DeadLetterPublisher
from eventkit.heap import settle_heap
from eventkit.logging import get_logger
from eventkit.projection import ProjectionRunner
from eventkit.service import Component, Runtime, ServiceSettings, service_app, store_and_relay
from services.surveys import api
from services.surveys.catalog import load_catalog
from services.surveys.committer import GroupCommitter
from services.surveys.compose import build_intake
from services.surveys.inbox import INBOX, SurveyInbox
from services.surveys.ratelimit import DeviceRateLimiter
from services.surveys.settings import SurveysSettings
from services.surveys.submissions import LaneApp, SubmissionEndpoint
from services.surveys.tokens import LinkSigner

__all__ = ["INBOX", "build_app"]

_log = get_logger("surveys.app")


def _now() -> datetime:
    return datetime.now(UTC)


def _settle_heap(young_threshold: int) -> None:
    """Keep the cyclic garbage collector off what lives as long as the process, and run it less often.

    Everything loaded so far (the unit registry, the instruments, pydantic's and FastAPI's schemas: ~10^5
    objects) stays until the process ends, yet every full collection walked it again; and with the default
    threshold (a young collection every 700 allocations) a submission's few hundred allocations started one
    every other request, each walking the objects of all requests in flight. Measured: ~6 % of the service's
    CPU. Frozen objects are never collected (they are not garbage); garbage cycles made later are still
    collected, only in larger, rarer rounds.
    """
    settle_heap(young_threshold)


def build_app(
    settings: SurveysSettings | None = None,
    shell: ServiceSettings | None = None,
    clock: Callable[[], datetime] = _now,
    monotonic: Callable[[], float] = time.monotonic,
) -> FastAPI:
    """The surveys service as an ASGI app (nothing connects until the app starts)."""
    own = settings or SurveysSettings()
    shell = shell or ServiceSettings(name="surveys", schema=own.db_schema)
    registry = default_registry()
    # read now, so a bad province file or a short key stops the service before it binds its port
    catalog = load_catalog(own.instruments_dir)
    signer = LinkSigner(own.secret_bytes())
    # the submission endpoint needs the database: it exists from the lifespan's start (assemble) on
    opened: list[SubmissionEndpoint] = []

    async def assemble(runtime: Runtime) -> tuple[Sequence[Component], Sequence[APIRouter]]:
        if own.token_secret is None:
            _log.warning("SURVEYS_TOKEN_SECRET is not set: links are signed with a key of this process only")
        store, relay = store_and_relay(runtime, relay_linger_s=own.relay_linger_ms / 1000)
        intake = build_intake(own, store, registry, catalog)
        inbox = ProjectionRunner(
            projection=SurveyInbox(intake, clock),
            pool=runtime.pool,
            kafka=shell.kafka,
            registry=registry,
            dead_letters=DeadLetterPublisher(runtime.producer, INBOX),
            metrics=runtime.metrics,
        )
        committer = GroupCommitter(
            runtime.pool,
            intake,
            clock,
            workers=own.commit_workers,
            max_batch=own.commit_max_batch,
            metrics=runtime.metrics,
        )
        endpoint = SubmissionEndpoint(
            committer=committer,
            signer=signer,
            limiter=DeviceRateLimiter(own.kiosk_rate_per_minute, own.kiosk_burst, monotonic),
            clock=clock,
            link_instrument=own.link_instrument,
        )
        roles = own.role_set
        if own.gc_young_threshold:
            _settle_heap(own.gc_young_threshold)
        components = [c for c, role in ((committer, "api"), (inbox, "inbox"), (relay, "relay")) if role in roles]
        if "api" not in roles:
            return components, []  # /health, /ready and /metrics only
        opened[:] = [endpoint]
        router = api.api_router(
            pool=runtime.pool,
            endpoint=endpoint,
            catalog=catalog,
            signer=signer,
            clock=clock,
            link_instrument=own.link_instrument,
        )
        return components, [router]

    return service_app(
        shell,
        registry,
        assemble,
        title="chiso surveys",
        description="SIPAS and citizen questionnaires in (HTTP for kiosks and the QR/SMS form page, Kafka for "
        "partner survey systems, bulk import of paper results); each response validated against its instrument "
        "version, at most one per dossier; `survey response submitted` events out on vn.cchc.surveys.events.",
        dead_letter_consumers=(INBOX,),
        # POST /v1/responses ahead of the framework (see services.surveys.submissions for why)
        app_factory=functools.partial(LaneApp, endpoint=lambda: opened[0] if opened else None),
    )
