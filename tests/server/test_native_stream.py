"""The native server's streams (bytes, coalesced writes, flow control) and shutdown; disconnects
are covered for it by tests/server/test_sse_raw.py, which runs on the native server."""

from __future__ import annotations

import asyncio
import re
from typing import Any

import orjson

from headway.providers.base import AttemptContext
from headway.server.app import App
from headway.server.native import HttpConnection, Shared
from headway.types import ChatRequest, ChatResponse
from tests.server.helpers import Scripted, running, scripted_gateway
from tests.server.native_support import Raw, connect, post, serving

PATH = "/v1/chat/completions"
STREAM = {"model": "m", "messages": [{"role": "user", "content": "hi"}], "stream": True}


def normalised(raw: bytes) -> tuple[dict[str, str], bytes]:
    """Headers that do not vary per request or server, and the body bytes as sent (chunked)."""
    head, body = raw.split(b"\r\n\r\n", 1)
    lines = head.decode().split("\r\n")[1:]
    varying = {"date", "x-request-id", "x-headway-overhead-ms"}
    headers = {k.lower(): v for k, v in (line.split(": ", 1) for line in lines)}
    kept = {k: v for k, v in headers.items() if k not in varying}
    return kept, re.sub(rb'"created":\d+', b'"created":0', body)


async def _stream_bytes(port: int, body: dict[str, Any]) -> bytes:
    async with connect(port) as raw:
        await raw.send(post(PATH, orjson.dumps(body), "connection: close"))
        assert await raw.at_eof()
        return raw.received


async def test_stream_bytes_are_identical_to_the_uvicorn_path() -> None:
    for body in (STREAM, {**STREAM, "stream_options": {"include_usage": True}}):
        async with running(scripted_gateway(), http="uvicorn") as base:
            via_uvicorn = await _stream_bytes(int(base.rsplit(":", 1)[1]), body)
        async with serving(scripted_gateway()) as srv:
            via_native = await _stream_bytes(srv.port, body)
        assert normalised(via_native) == normalised(via_uvicorn)
        assert normalised(via_native)[1].endswith(b"data: [DONE]\n\n\r\n0\r\n\r\n")


async def test_in_band_error_bytes_are_identical_to_the_uvicorn_path() -> None:
    from headway.errors import UpstreamError

    def gateway() -> Any:
        return scripted_gateway(Scripted("m", fail_after=UpstreamError("cut"), fail_at=1))

    body = {**STREAM, "model": "solo"}
    async with running(gateway(), http="uvicorn") as base:
        via_uvicorn = await _stream_bytes(int(base.rsplit(":", 1)[1]), body)
    async with serving(gateway()) as srv:
        via_native = await _stream_bytes(srv.port, body)
    assert normalised(via_native) == normalised(via_uvicorn)
    assert b'"code":"upstream_error"' in via_native and b"[DONE]" not in via_native


class Gated(Scripted):
    """Answers a chat only once `gate` is set; `entered` tells that a call is in flight."""

    def __init__(self) -> None:
        super().__init__("m")
        self.gate = asyncio.Event()
        self.entered = asyncio.Event()

    async def chat(self, request: ChatRequest, ctx: AttemptContext) -> ChatResponse:
        self.entered.set()
        await self.gate.wait()
        return await super().chat(request, ctx)


async def test_graceful_shutdown_finishes_the_request_in_flight() -> None:
    provider = Gated()
    body = orjson.dumps({"model": "m", "messages": [{"role": "user", "content": "hi"}]})
    async with (
        serving(scripted_gateway(provider)) as srv,
        connect(srv.port) as busy,
        connect(srv.port) as idle,
    ):
        await busy.send(post(PATH, body))
        await asyncio.wait_for(provider.entered.wait(), 10)
        stopping = asyncio.ensure_future(srv.server.stop())
        assert await idle.at_eof()  # the idle connection is closed at once
        try:
            await asyncio.open_connection("127.0.0.1", srv.port)
            refused = False
        except OSError:
            refused = True
        assert refused  # no new connections
        assert not stopping.done() and not provider.shut
        provider.gate.set()
        answer = await busy.answer()
        assert await busy.at_eof()
        await asyncio.wait_for(stopping, 10)
    assert answer.status == 200 and answer.headers["connection"] == "close"
    assert orjson.loads(answer.body)["choices"][0]["message"]["content"] == "Hello there!"
    assert provider.shut  # the app's shutdown ran after the request finished


class Recording:
    """A transport that records writes and can report a full buffer."""

    def __init__(self) -> None:
        self.writes: list[bytes] = []
        self.closed = False

    def write(self, data: bytes) -> None:
        self.writes.append(bytes(data))

    def writelines(self, data: list[bytes]) -> None:
        self.writes.append(b"".join(data))

    def close(self) -> None:
        self.closed = True

    def abort(self) -> None:
        self.closed = True

    def pause_reading(self) -> None:
        pass

    def resume_reading(self) -> None:
        pass


async def _connection(app: App, shared: Shared | None = None) -> tuple[HttpConnection, Recording]:
    if shared is None:
        shared = Shared(app, asyncio.get_running_loop(), app.context.max_body_bytes)
    conn = HttpConnection(shared)
    transport = Recording()
    conn.connection_made(transport)  # type: ignore[arg-type]
    return conn, transport


async def answered(conn: HttpConnection) -> None:
    """Until the connection answered what it was sent. Its task then waits for a next request
    (it serves the connection, not one request): the client leaving ends it."""
    task = conn.task
    assert task is not None
    while not conn.idle:
        await asyncio.sleep(0)
    conn.connection_lost(None)
    await task


async def test_chunks_of_one_loop_iteration_leave_in_one_write() -> None:
    words = [f" w{i}" for i in range(20)]
    app = App(scripted_gateway(Scripted("m", words=words)))
    await app.startup()
    try:
        conn, transport = await _connection(app)
        conn.data_received(post(PATH, orjson.dumps(STREAM)))
        await answered(conn)
    finally:
        await app.shutdown()
    raw = b"".join(transport.writes)
    assert raw.count(b"data: ") == len(words) + 3 and raw.endswith(b"0\r\n\r\n")
    # the scripted provider yields every chunk without waiting: one iteration, one write
    assert len(transport.writes) == 1


async def test_stream_output_of_one_iteration_is_flushed_once_for_all_connections() -> None:
    app = App(scripted_gateway(Scripted("m")))
    first, first_out = await _connection(app)
    shared = first.shared
    second, second_out = await _connection(app, shared)
    first._buffer(b"a")
    second._buffer(b"c")
    first._buffer(b"b")
    # nothing written yet: one flush, queued once per connection, runs after this iteration
    assert first_out.writes == [] and second_out.writes == []
    assert shared.unflushed == [first, second]
    await asyncio.sleep(0)  # one loop turn (not a timer)
    assert first_out.writes == [b"ab"] and second_out.writes == [b"c"]
    assert shared.unflushed == []


async def test_a_connection_flushed_early_or_gone_is_not_written_again() -> None:
    app = App(scripted_gateway(Scripted("m")))
    early, early_out = await _connection(app)
    gone, gone_out = await _connection(app, early.shared)
    early._buffer(b"x")
    early.flush()  # e.g. the stream ended in this iteration
    gone._buffer(b"y")
    gone.connection_lost(None)
    await asyncio.sleep(0)
    assert early_out.writes == [b"x"]  # no second, empty write from the shared flush
    assert gone_out.writes == []
    # output buffered after the shared flush ran is flushed by the next one
    early._buffer(b"z")
    await asyncio.sleep(0)
    assert early_out.writes == [b"x", b"z"]


async def test_a_full_socket_buffer_pauses_the_stream_until_it_drains() -> None:
    app = App(scripted_gateway(Scripted("m", words=["a", "b", "c"])))
    await app.startup()
    try:
        conn, transport = await _connection(app)
        conn.pause_writing()  # the transport's buffer is over its high-water mark
        conn.data_received(post(PATH, orjson.dumps(STREAM)))
        task = conn.task
        assert task is not None
        while conn.drained is None:  # yields to the loop until the pump waits; no timer
            await asyncio.sleep(0)
        assert not task.done()
        sent = b"".join(transport.writes)
        assert sent.startswith(b"HTTP/1.1 200 OK") and not sent.endswith(b"0\r\n\r\n")
        conn.resume_writing()
        await answered(conn)
    finally:
        await app.shutdown()
    assert b"".join(transport.writes).endswith(b"data: [DONE]\n\n\r\n0\r\n\r\n")


async def test_raw_client_reads_pipelined_answers(monkeypatch: Any) -> None:
    """The test client itself: two answers in one read come out one at a time."""
    reader = asyncio.StreamReader()
    reader.feed_data(
        b"HTTP/1.1 200 OK\r\ncontent-length: 1\r\n\r\naHTTP/1.1 404 Not Found\r\n"
        b"content-length: 1\r\n\r\nb"
    )
    raw = Raw(reader, None)  # type: ignore[arg-type]
    first, second = await raw.answer(), await raw.answer()
    assert (first.status, first.body, second.status, second.body) == (200, b"a", 404, b"b")
