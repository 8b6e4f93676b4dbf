"""/health, /ready and /metrics for every service (FastAPI router)."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Mapping

import asyncpg
from aiokafka import AIOKafkaProducer
from fastapi import APIRouter, Response
from fastapi.responses import JSONResponse
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest

__all__ = ["Check", "database_check", "kafka_check", "ops_router"]

Check = Callable[[], Awaitable[None]]
_CHECK_TIMEOUT_S = 3.0


def database_check(pool: asyncpg.Pool) -> Check:
    """Ready when PostgreSQL answers a query."""

    async def check() -> None:
        await pool.fetchval("SELECT 1")

    return check


def kafka_check(producer: AIOKafkaProducer) -> Check:
    """Ready when the broker answers a metadata request."""

    async def check() -> None:
        metadata = await producer.client.fetch_all_metadata()
        if not metadata.brokers():
            msg = "no broker in the cluster metadata"
            raise RuntimeError(msg)

    return check


def ops_router(*, service: str, version: str, checks: Mapping[str, Check], registry: CollectorRegistry) -> APIRouter:
    """Liveness (the process answers), readiness (its dependencies answer) and Prometheus metrics."""
    router = APIRouter(tags=["operations"])

    @router.get("/health", summary="Liveness: the process is up")
    async def health() -> dict[str, str]:
        return {"status": "ok", "service": service, "version": version}

    @router.get("/ready", summary="Readiness: broker and database reachable", response_model=None)
    async def ready() -> JSONResponse:
        results: dict[str, str] = {}
        for name, check in checks.items():
            try:
                await asyncio.wait_for(check(), _CHECK_TIMEOUT_S)
                results[name] = "ok"
            except Exception as exc:
                results[name] = f"failed: {exc!r}"[:300]
        ok = all(v == "ok" for v in results.values())
        return JSONResponse(
            {"status": "ready" if ok else "not ready", "service": service, "checks": results},
            status_code=200 if ok else 503,
        )

    @router.get("/metrics", summary="Prometheus metrics", response_class=Response)
    async def metrics() -> Response:
        return Response(generate_latest(registry), media_type=CONTENT_TYPE_LATEST)

    return router
