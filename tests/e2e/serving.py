"""Running a service's ASGI app for an e2e test, as ``chiso run`` runs it: uvicorn on a free port."""

from __future__ import annotations

import asyncio
import contextlib
import socket
import threading
import time
from collections.abc import AsyncIterator, Iterator

import httpx
import pytest
import uvicorn
from fastapi import FastAPI

from eventkit.http_server import CoalescingHttpToolsProtocol
from eventkit.service import ServiceSettings
from eventkit.settings import DatabaseSettings, KafkaSettings, LogSettings
from services.dossiers.app import build_app as dossiers_app
from services.dossiers.settings import DossiersSettings
from services.scoring.app import build_app as scoring_app
from services.scoring.settings import ScoringSettings


def free_port() -> int:
    """A TCP port nothing listens on right now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextlib.asynccontextmanager
async def serve(app: FastAPI, *, ready_path: str = "/ready", wait_s: float = 30.0) -> AsyncIterator[str]:
    """Serve ``app`` until the block ends; yields its base URL once ``ready_path`` answers 200."""
    port = free_port()
    server = uvicorn.Server(
        uvicorn.Config(
            app, host="127.0.0.1", port=port, log_config=None, lifespan="on", http=CoalescingHttpToolsProtocol
        )
    )
    task = asyncio.create_task(server.serve())
    url = f"http://127.0.0.1:{port}"
    async with httpx.AsyncClient() as client:
        for _ in range(int(wait_s * 10)):
            try:
                if (await client.get(f"{url}{ready_path}")).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            await asyncio.sleep(0.1)
    try:
        yield url
    finally:
        server.should_exit = True
        await asyncio.wait_for(task, timeout=30)


@contextlib.contextmanager
def serve_in_thread(app: FastAPI, *, name: str, ready_path: str = "/ready", wait_s: float = 60.0) -> Iterator[str]:
    """Serve ``app`` from a thread with its own event loop (for synchronous callers such as schemathesis)."""
    port = free_port()
    server = uvicorn.Server(
        uvicorn.Config(app, host="127.0.0.1", port=port, log_config=None, http=CoalescingHttpToolsProtocol)
    )
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + wait_s
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"{url}{ready_path}").status_code == 200:
                break
        except httpx.TransportError:
            pass
        time.sleep(0.2)
    else:
        server.should_exit = True
        thread.join(30)
        pytest.fail(f"the {name} service did not become ready")
    try:
        yield url
    finally:
        server.should_exit = True
        thread.join(30)


def shell_settings(name: str, database_url: str, kafka_bootstrap: str) -> ServiceSettings:
    """A service under test: its own name and schema, the test broker and database, quiet logs."""
    return ServiceSettings(
        name,
        name,
        KafkaSettings(bootstrap_servers=kafka_bootstrap),
        DatabaseSettings(url=database_url),
        LogSettings(level="WARNING"),
    )


@contextlib.asynccontextmanager
async def dossiers_and_scoring(
    database_url: str, kafka_bootstrap: str, *, pseudonym_secret: str, scoring: ScoringSettings | None = None
) -> AsyncIterator[dict[str, str]]:
    """The dossiers service (overdue scheduler on a 1 s tick, 3 s settle) and the scoring service, served;
    yields their base URLs by name."""
    own = DossiersSettings(pseudonym_secret=pseudonym_secret, overdue_interval_s=1, overdue_settle_s=3)
    async with (
        serve(dossiers_app(own, shell_settings("dossiers", database_url, kafka_bootstrap))) as dossiers,
        serve(scoring_app(scoring, shell_settings("scoring", database_url, kafka_bootstrap))) as scoring_url,
    ):
        yield {"dossiers": dossiers, "scoring": scoring_url}
