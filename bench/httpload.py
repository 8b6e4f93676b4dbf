"""A lean closed-loop HTTP/1.1 load generator, run in its own process so it measures the server, not itself.

    python -m bench.httpload --port 8104 --path '/trivial' --requests 20000 --clients 100

C keep-alive connections, each sending its next GET as soon as the previous answer has been read (closed
loop, like C dashboards polling as fast as they can). A request is a constant byte string and an answer is
parsed just enough to check the status and read ``Content-Length`` bytes (≈ 20-40 µs of client CPU per
request under uvloop, against ≈ 300 µs for an ``httpx.AsyncClient`` request), so on a 2-core machine the
client takes a small share of the CPU the server needs. Prints one JSON object: requests/s, latency
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


async def _exchange(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, request: bytes) -> int:
    writer.write(request)
    head = await reader.readuntil(b"\r\n\r\n")
    if not head.startswith((b"HTTP/1.1 200 ", b"HTTP/1.0 200 ")):
        raise BadAnswer(head[:200].decode(errors="replace"))
    length = None
    for line in head.split(b"\r\n"):
        if line[:15].lower() == b"content-length:":
            length = int(line[15:])
    if length is None:
        raise BadAnswer("no Content-Length: " + head[:200].decode(errors="replace"))
    await reader.readexactly(length)
    return length


def _pct(ordered: list[float], q: float) -> float:
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


async def load(host: str, port: int, path: str, requests: int, clients: int, warmup: int) -> dict[str, Any]:
    """``requests`` GETs of ``path`` over ``clients`` connections (after ``warmup`` untimed ones per connection)."""
    request = f"GET {path} HTTP/1.1\r\nHost: {host}:{port}\r\nUser-Agent: chiso-bench\r\n\r\n".encode()
    connections = [await asyncio.open_connection(host, port) for _ in range(clients)]
    size = 0
    for reader, writer in connections:
        for _ in range(warmup):
            size = await _exchange(reader, writer, request)
    latencies: list[float] = []
    left = requests

    async def client(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        nonlocal left
        clock = time.perf_counter
        while left > 0:
            left -= 1
            started = clock()
            await _exchange(reader, writer, request)
            latencies.append(clock() - started)

    cpu = resource.getrusage(resource.RUSAGE_SELF)
    started = time.perf_counter()
    await asyncio.gather(*(client(r, w) for r, w in connections))
    elapsed = time.perf_counter() - started
    after = resource.getrusage(resource.RUSAGE_SELF)
    for _, writer in connections:
        writer.close()
    ordered = sorted(x * 1000 for x in latencies)
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
        "body_bytes": size,
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
