"""Run chiso services as child processes for benchmarks (``chiso run <service>``, nothing mocked)."""

from __future__ import annotations

import asyncio
import os
import socket
import subprocess
import sys
from pathlib import Path

import httpx

__all__ = ["free_port", "start_service", "status_mb", "wait_ready"]


def status_mb(pid: int, field: str) -> float:
    """A field of /proc/<pid>/status in MB (``VmRSS``: resident now; ``VmHWM``: the peak since start)."""
    status = Path(f"/proc/{pid}/status").read_text()
    return int(next(line.split()[1] for line in status.splitlines() if line.startswith(f"{field}:"))) / 1024


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def start_service(name: str, url: str, bootstrap: str, schema: str, port: int, **env: str) -> subprocess.Popen[bytes]:
    """``chiso run <name>`` on its own schema and port, warnings-only logs; ``env``: more variables."""
    prefix = name.upper()
    variables = {
        **os.environ,
        "DATABASE_URL": url,
        "KAFKA_BOOTSTRAP_SERVERS": bootstrap,
        f"{prefix}_HTTP_PORT": str(port),
        f"{prefix}_DB_SCHEMA": schema,
        "LOG_LEVEL": "WARNING",
        **env,
    }
    command = [sys.executable, "-c", "from services.cli import main; main()", "run", name]
    return subprocess.Popen(command, env=variables)


async def wait_ready(base: str, proc: subprocess.Popen[bytes]) -> None:
    """Until ``/ready`` answers 200 (broker and database reachable); fails if the process exits first."""
    async with httpx.AsyncClient() as client:
        for _ in range(600):
            if proc.poll() is not None:
                raise RuntimeError(f"{proc.args} exited with {proc.returncode}")
            try:
                if (await client.get(f"{base}/ready")).status_code == 200:
                    return
            except httpx.TransportError:
                pass
            await asyncio.sleep(0.2)
    raise RuntimeError(f"{proc.args} never became ready")
