"""A lean closed-loop HTTP/1.1 load generator, run in its own process so it measures the server, not itself.

    python -m bench.httpload --port 8104 --path '/trivial' --requests 20000 --clients 100

C keep-alive connections, each sending its next GET as soon as the previous answer has been read (closed
loop, like C dashboards polling as fast as they can). A request is a constant byte string and an answer is
parsed just enough to check the status and read ``Content-Length`` bytes (≈ 60-70 µs of client CPU per
request under uvloop on the project's 2-core VM, ≈ a quarter of what the server spends on the same
request), so the client takes a small share of the CPU the server needs. Prints one JSON object: requests/s, latency
p50/p99/max (ms), the client's CPU seconds and the body of the first answer's length.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import resource
import sys
import time
from typing import Any

import uvloop


class BadAnswer(RuntimeError):
    """The server answered something else than 200 with a Content-Length body."""


class _Connection(asyncio.Protocol):
    """One keep-alive connection in a closed loop: the next request goes out as soon as an answer is complete
    (no stream reader, no task switch per request: the parsing is a find and an int per answer)."""

    def __init__(self, request: bytes, shared: _Shared) -> None:
        self.request, self.shared = request, shared
        self.buffer = bytearray()
        self.transport: asyncio.Transport | None = None
        self.started = 0.0
        self.timed = False
        self.done: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self.ready: asyncio.Future[None] = asyncio.get_running_loop().create_future()

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]  # uvloop's transports do not subclass asyncio's
        self.ready.set_result(None)

    def send(self, *, timed: bool) -> None:
        assert self.transport is not None
        self.timed = timed
        self.started = time.perf_counter()
        self.transport.write(self.request)

    def data_received(self, data: bytes) -> None:
        self.buffer += data
        end = self.buffer.find(b"\r\n\r\n")
        if end < 0:
            return
        head = bytes(self.buffer[:end])
        at = head.lower().find(b"content-length:")
        if not head.startswith((b"HTTP/1.1 200 ", b"HTTP/1.0 200 ")) or at < 0:
            self._fail(BadAnswer(head[:200].decode(errors="replace")))
            return
        length = int(head[at + 15 :].split(b"\r\n", 1)[0])
        if len(self.buffer) < end + 4 + length:
            return
        if len(self.buffer) > end + 4 + length:
            self._fail(BadAnswer("more bytes than one answer (pipelining is not used)"))
            return
        self.buffer.clear()
        self.shared.size = length
        if self.timed:
            self.shared.latencies.append(time.perf_counter() - self.started)
        if self.shared.left > 0:
            self.shared.left -= 1
            self.send(timed=True)
        elif not self.done.done():
            self.done.set_result(None)

    def connection_lost(self, exc: Exception | None) -> None:
        self._fail(exc or BadAnswer("connection closed by the server"))

    def _fail(self, error: BaseException) -> None:
        if not self.done.done():
            self.done.set_exception(error)
        if self.transport is not None:
            self.transport.close()


class _Shared:
    def __init__(self, left: int) -> None:
        self.left = left
        self.latencies: list[float] = []
        self.size = 0


def _pct(ordered: list[float], q: float) -> float:
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


async def load(host: str, port: int, path: str, requests: int, clients: int, warmup: int) -> dict[str, Any]:
    """``requests`` GETs of ``path`` over ``clients`` connections (after ``warmup`` untimed ones per connection)."""
    loop = asyncio.get_running_loop()
    request = f"GET {path} HTTP/1.1\r\nHost: {host}:{port}\r\nUser-Agent: chiso-bench\r\n\r\n".encode()
    shared = _Shared(0)
    connections = []
    for _ in range(clients):
        _, conn = await loop.create_connection(lambda: _Connection(request, shared), host, port)
        connections.append(conn)
    for _ in range(warmup):  # untimed, one connection at a time
        for conn in connections:
            conn.done = loop.create_future()
            conn.send(timed=False)
            await conn.done
    shared.left = requests - clients
    for conn in connections:
        conn.done = loop.create_future()
    cpu = resource.getrusage(resource.RUSAGE_SELF)
    started = time.perf_counter()
    for conn in connections:
        conn.send(timed=True)
    await asyncio.gather(*(c.done for c in connections))
    elapsed = time.perf_counter() - started
    after = resource.getrusage(resource.RUSAGE_SELF)
    for conn in connections:
        if conn.transport is not None:
            conn.transport.close()
    ordered = sorted(x * 1000 for x in shared.latencies)
    return {
        "path": path,
        "requests": len(ordered),
        "clients": clients,
        "seconds": elapsed,
        "requests_per_s": len(ordered) / elapsed,
        "p50_ms": _pct(ordered, 0.50),
        "p99_ms": _pct(ordered, 0.99),
        "max_ms": ordered[-1],
        "client_cpu_s": (after.ru_utime - cpu.ru_utime) + (after.ru_stime - cpu.ru_stime),
        "body_bytes": shared.size,
    }


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--path", required=True)
    parser.add_argument("--requests", type=int, default=10_000)
    parser.add_argument("--clients", type=int, default=100)
    parser.add_argument("--warmup", type=int, default=2, help="untimed requests per connection first")
    args = parser.parse_args(argv)
    result = uvloop.run(load(args.host, args.port, args.path, args.requests, args.clients, args.warmup))
    sys.stdout.write(json.dumps(result) + "\n")


if __name__ == "__main__":
    main()
