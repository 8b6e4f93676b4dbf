"""The process shell every service runs in: one FastAPI app whose lifespan owns the pool, the producer and
the background components (relays, projection runners), plus /health, /ready and /metrics.

A service's composition root calls :func:`service_app` with an ``assemble`` coroutine that receives the
opened :class:`Runtime` and returns the service's components and HTTP routers. Nothing is connected at
import time or when the app object is built: everything opens in the lifespan and closes in reverse.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from importlib.metadata import PackageNotFoundError, version
from typing import Protocol

import asyncpg
from aiokafka import AIOKafkaProducer
from fastapi import APIRouter, FastAPI
from prometheus_client import CollectorRegistry

from contracts.registry import Registry
from contracts.topics import TOPICS, dead_letter_topic
from eventkit import postgres, projection, relay
from eventkit.heap import settle_heap
from eventkit.kafka import build_producer
from eventkit.logging import configure_logging, get_logger
from eventkit.metrics import PlumbingMetrics
from eventkit.ops import Check, database_check, kafka_check, ops_router
from eventkit.pg import apply_migrations, create_pool
from eventkit.postgres import PostgresEventStore
from eventkit.relay import Relay
from eventkit.settings import DatabaseSettings, KafkaSettings, LogSettings

__all__ = ["Component", "Runtime", "ServiceSettings", "chiso_version", "service_app", "store_and_relay"]

_log = get_logger("eventkit.service")


class Component(Protocol):
    """A long-running part of a service (a relay, a projection runner)."""

    @property
    def name(self) -> str:
        """For logs and task names."""
        ...

    async def start(self) -> None:
        """Connect (called before :meth:`run`)."""
        ...

    async def run(self, stop: asyncio.Event) -> None:
        """Work until ``stop`` is set."""
        ...

    async def stop(self) -> None:
        """Disconnect (called after :meth:`run` returned)."""
        ...


@dataclass
class ServiceSettings:
    """What the shell needs; services build it from their own pydantic settings."""

    name: str
    schema: str
    kafka: KafkaSettings = field(default_factory=KafkaSettings)
    database: DatabaseSettings = field(default_factory=DatabaseSettings)
    log: LogSettings = field(default_factory=LogSettings)
    #: create missing topics at start-up (local runs); production provisions topics with ``chiso infra``
    provision_topics: bool = True


@dataclass
class Runtime:
    """The opened resources a service's components are built from."""

    settings: ServiceSettings
    pool: asyncpg.Pool
    producer: AIOKafkaProducer
    registry: Registry
    metrics: PlumbingMetrics


def store_and_relay(runtime: Runtime, *, relay_linger_s: float = 0.0) -> tuple[PostgresEventStore, Relay]:
    """The service's event store, and the relay publishing it to each event type's contract topic.

    ``relay_linger_s``: see :class:`~eventkit.relay.Relay` (``linger_s``).
    """
    store = PostgresEventStore(runtime.pool, runtime.registry)
    registry = runtime.registry
    relay_ = Relay(
        name=runtime.settings.name,
        pool=runtime.pool,
        store=store,
        kafka=runtime.settings.kafka,
        topic_of=lambda event_type: registry.latest(event_type).topic,
        metrics=runtime.metrics,
        linger_s=relay_linger_s,
    )
    return store, relay_


def chiso_version() -> str:
    """The installed package version (``0.0.0`` when running from a plain checkout)."""
    try:
        return version("chiso")
    except PackageNotFoundError:  # pragma: no cover
        return "0.0.0"


Assemble = Callable[[Runtime], Awaitable[tuple[Sequence[Component], Sequence[APIRouter]]]]


def service_app(
    settings: ServiceSettings,
    registry: Registry,
    assemble: Assemble,
    *,
    title: str,
    description: str,
    dead_letter_consumers: Sequence[str] = (),
    app_factory: Callable[..., FastAPI] = FastAPI,
) -> FastAPI:
    """The ASGI app of one service (run it with uvicorn).

    ``dead_letter_consumers``: the consumers this service runs; their dead-letter topics are provisioned
    with the others (a consumer whose dead-letter topic is missing would stall on its first bad record).
    ``app_factory``: builds the app from FastAPI's keyword arguments (a service may serve a hot route ahead
    of FastAPI's request cycle with a subclass); FastAPI itself by default.
    """
    prometheus = CollectorRegistry()
    metrics = PlumbingMetrics(prometheus)

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        configure_logging(settings.log.level, json_output=settings.log.json_output, access=settings.log.access)
        if settings.provision_topics:
            await _provision(settings, dead_letter_consumers)
        pool = await create_pool(
            settings.database.url,
            settings.schema,
            min_size=settings.database.pool_min_size,
            max_size=settings.database.pool_max_size,
        )
        producer = build_producer(settings.kafka, settings.name)
        await producer.start()
        for owner, migrations in (
            ("eventkit.store", postgres.MIGRATIONS),
            ("eventkit.relay", relay.MIGRATIONS),
            ("eventkit.projection", projection.MIGRATIONS),
        ):
            await apply_migrations(pool, owner, migrations)
        runtime = Runtime(settings, pool, producer, registry, metrics)
        components, routers = await assemble(runtime)
        for router in routers:
            app.include_router(router)
        tasks: list[asyncio.Task[None]] = []
        app.include_router(
            ops_router(
                service=settings.name,
                version=chiso_version(),
                checks={
                    "database": database_check(pool),
                    "kafka": kafka_check(producer),
                    "components": _components_check(tasks),
                },
                registry=prometheus,
            )
        )
        app.state.runtime = runtime
        stop = asyncio.Event()
        for component in components:
            await component.start()
        settle_heap()  # startup is done: its objects need not be walked by every full collection
        tasks.extend(asyncio.create_task(_supervised(c, stop), name=c.name) for c in components)
        _log.info("service started", service=settings.name, components=[c.name for c in components])
        try:
            yield
        finally:
            stop.set()
            for task in tasks:
                with contextlib.suppress(Exception):
                    await asyncio.wait_for(task, timeout=15)
            for component in components:
                with contextlib.suppress(Exception):
                    await component.stop()
            await producer.stop()
            await pool.close()
            _log.info("service stopped", service=settings.name)

    return app_factory(title=title, description=description, version=chiso_version(), lifespan=lifespan)


async def _supervised(component: Component, stop: asyncio.Event) -> None:
    try:
        await component.run(stop)
    except Exception:
        _log.exception("component crashed; /ready now fails", component=component.name)
        raise


def _components_check(tasks: list[asyncio.Task[None]]) -> Check:
    """Not ready when a relay or runner has stopped by itself (it crashed: its exception is reported)."""

    async def check() -> None:
        for task in tasks:
            if task.done():
                error = task.exception() if not task.cancelled() else None
                msg = f"component {task.get_name()} stopped: {error!r}"
                raise RuntimeError(msg)

    return check


async def _provision(settings: ServiceSettings, dead_letter_consumers: Sequence[str]) -> None:
    from infra.topics import TopicSpec, provision_topics, topic_spec  # noqa: PLC0415 - only local runs provision

    specs = [topic_spec(t) for t in TOPICS]
    specs += [TopicSpec(name=dead_letter_topic(c), partitions=1, retention_ms=None) for c in dead_letter_consumers]
    await provision_topics(settings.kafka.bootstrap_servers, specs)
