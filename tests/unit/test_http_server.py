"""The coalescing transport under uvicorn: one write per small response, bytes in order, nothing held back."""

from __future__ import annotations

import asyncio
import contextlib
import socket
from collections.abc import AsyncIterator
from typing import Any

import pytest
import uvicorn
from fastapi import FastAPI
from fastapi.responses import StreamingResponse

from eventkit.http_server import CoalescingHttpToolsProtocol, CoalescingTransport


class _Recorder(asyncio.Transport):
    """A transport that records what is written to it."""

    def __init__(self) -> None:
        super().__init__()
        self.writes: list[bytes] = []
        self.closed = False
        self.aborted = False

    def write(self, data: Any) -> None:
        self.writes.append(bytes(data))

    def close(self) -> None:
        self.closed = True

    def abort(self) -> None:
        self.aborted = True

    def is_closing(self) -> bool:
        return self.closed or self.aborted

    def get_write_buffer_size(self) -> int:
        return 0


async def test_two_writes_in_one_step_are_one_write() -> None:
    inner = _Recorder()
    t = CoalescingTransport(inner, asyncio.get_running_loop())
    t.write(b"HTTP/1.1 201 Created\r\n\r\n")
    t.write(b'{"ok":true}')
    assert inner.writes == [b'HTTP/1.1 201 Created\r\n\r\n{"ok":true}']
    await asyncio.sleep(0)
    assert inner.writes == [b'HTTP/1.1 201 Created\r\n\r\n{"ok":true}']  # nothing left to flush


async def test_a_lone_write_goes_out_at_the_next_loop_iteration() -> None:
    inner = _Recorder()
    t = CoalescingTransport(inner, asyncio.get_running_loop())
    t.write(b"head")
    assert inner.writes == []
    assert t.get_write_buffer_size() == 4  # held bytes count as buffered (flow control sees them)
    await asyncio.sleep(0)
    assert inner.writes == [b"head"]
    assert t.get_write_buffer_size() == 0


async def test_order_is_kept_across_held_and_joined_writes() -> None:
    inner = _Recorder()
    t = CoalescingTransport(inner, asyncio.get_running_loop())
    t.writelines([b"a", b"b"])
    t.write(memoryview(b"c"))
    t.write(bytearray(b"d"))
    t.write(b"")  # nothing to send: ignored, as asyncio's transports do
    await asyncio.sleep(0)
    t.write(b"e")
    await asyncio.sleep(0)
    assert inner.writes == [b"abc", b"d", b"e"]
    assert b"".join(inner.writes) == b"abcde"


async def test_close_sends_what_is_held_first_and_abort_discards_it() -> None:
    loop = asyncio.get_running_loop()
    inner = _Recorder()
    t = CoalescingTransport(inner, loop)
    t.write(b"last words")
    t.close()
    assert inner.writes == [b"last words"]
    assert inner.closed
    await asyncio.sleep(0)
    assert inner.writes == [b"last words"]  # the cancelled flush does not send them twice

    other = _Recorder()
    a = CoalescingTransport(other, loop)
    a.write(b"never")
    a.abort()
    await asyncio.sleep(0)
    assert other.writes == []
    assert other.aborted


def _app() -> FastAPI:
    app = FastAPI()

    @app.post("/echo", status_code=201)
    async def echo(body: dict[str, int]) -> dict[str, int]:
        return {k: v + 1 for k, v in body.items()}

    @app.get("/stream")
    async def stream() -> StreamingResponse:
        async def chunks() -> AsyncIterator[bytes]:
            for i in range(5):
                await asyncio.sleep(0.01)  # each chunk in a later step: held, then flushed or joined
                yield f"chunk{i};".encode()

        return StreamingResponse(chunks(), media_type="text/plain")

    return app


@contextlib.asynccontextmanager
async def _server() -> AsyncIterator[int]:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = int(s.getsockname()[1])
    config = uvicorn.Config(_app(), host="127.0.0.1", port=port, log_config=None, http=CoalescingHttpToolsProtocol)
    server = uvicorn.Server(config)
    task = asyncio.create_task(server.serve())
    try:
        for _ in range(200):
            if server.started:
                break
            await asyncio.sleep(0.02)
        assert server.started, "uvicorn did not start"
        yield port
    finally:
        server.should_exit = True
        await task


async def _read_until_closed(reader: asyncio.StreamReader) -> bytes:
    return await asyncio.wait_for(reader.read(), timeout=10)


@pytest.mark.parametrize("pipelined", [False, True])
async def test_uvicorn_answers_keep_alive_requests_whole_and_in_order(pipelined: bool) -> None:
    async with _server() as port:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        bodies = [b'{"a":1}', b'{"b":2}', b'{"c":3}']
        requests = [
            b"POST /echo HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: %d\r\n%s\r\n%s"
            % (len(body), b"Connection: close\r\n" if i == len(bodies) - 1 else b"", body)
            for i, body in enumerate(bodies)
        ]
        if pipelined:
            writer.write(b"".join(requests))
        else:
            for request in requests[:-1]:
                writer.write(request)
                head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), timeout=10)
                length = int(head.lower().split(b"content-length: ")[1].split(b"\r\n")[0])
                body = await reader.readexactly(length)
                assert head.startswith(b"HTTP/1.1 201 ")
                assert body in (b'{"a":2}', b'{"b":3}')
            writer.write(requests[-1])
        rest = await _read_until_closed(reader)  # the last request asked to close: the server closes
        writer.close()
    answers = rest.split(b"HTTP/1.1 ")[1:]
    expected = [b'{"a":2}', b'{"b":3}', b'{"c":4}'] if pipelined else [b'{"c":4}']
    assert [a.startswith(b"201 Created\r\n") for a in answers] == [True] * len(expected)
    assert [a.split(b"\r\n\r\n", 1)[1] for a in answers] == expected


async def test_uvicorn_streams_a_chunked_response_intact() -> None:
    async with _server() as port:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.write(b"GET /stream HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        raw = await _read_until_closed(reader)
        writer.close()
    head, _, chunked = raw.partition(b"\r\n\r\n")
    assert b"transfer-encoding: chunked" in head.lower()
    body, rest = b"", chunked
    while True:
        size_line, _, rest = rest.partition(b"\r\n")
        size = int(size_line, 16)
        if size == 0:
            break
        body, rest = body + rest[:size], rest[size + 2 :]
    assert body == b"chunk0;chunk1;chunk2;chunk3;chunk4;"
