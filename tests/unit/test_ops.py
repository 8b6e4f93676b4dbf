"""/health, /ready and /metrics answer as operators and orchestrators expect."""

import httpx
from fastapi import FastAPI
from prometheus_client import CollectorRegistry

from eventkit.metrics import PlumbingMetrics
from eventkit.ops import ops_router


def _app(checks) -> tuple[FastAPI, PlumbingMetrics]:
    registry = CollectorRegistry()
    metrics = PlumbingMetrics(registry)
    app = FastAPI()
    app.include_router(ops_router(service="dossiers", version="9.9", checks=checks, registry=registry))
    return app, metrics


async def _ok() -> None:
    return None


async def _down() -> None:
    raise ConnectionRefusedError("127.0.0.1:9092")


async def test_ready_is_503_with_the_failing_check_named() -> None:
    app, _ = _app({"database": _ok, "kafka": _down})
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t") as client:
        health = await client.get("/health")
        ready = await client.get("/ready")
    assert health.status_code == 200
    assert health.json() == {"status": "ok", "service": "dossiers", "version": "9.9"}
    assert ready.status_code == 503
    body = ready.json()
    assert body["status"] == "not ready"
    assert body["checks"]["database"] == "ok"
    assert "ConnectionRefusedError" in body["checks"]["kafka"]


async def test_ready_is_200_when_every_check_passes_and_metrics_are_prometheus_text() -> None:
    app, metrics = _app({"database": _ok, "kafka": _ok})
    metrics.consumer_lag.labels("scoring.unit_activity", "vn.cchc.dossiers.events", "3").set(42)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t") as client:
        assert (await client.get("/ready")).status_code == 200
        response = await client.get("/metrics")
    assert response.headers["content-type"].startswith("text/plain")
    assert (
        'chiso_consumer_lag{consumer="scoring.unit_activity",partition="3",topic="vn.cchc.dossiers.events"} 42.0'
        in response.text
    )
