"""The HTTP client against a raw loopback server: framing, reuse, stale connections, failures."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable

import pytest

from headway.errors import StreamInterrupted, UpstreamError
from headway.providers.base import HttpCall
from headway.transport.http import Transport
from tests.transport.raw_server import Answer, RawRequest, RawServer, ok, response

POST = HttpCall("POST", "/chat", {"q": 1})
GET = HttpCall("GET", "/models")

Start = Callable[[Answer], Awaitable[RawServer]]


@pytest.fixture
async def start() -> AsyncIterator[Start]:
    servers: list[RawServer] = []

    async def start(answer: Answer = ok) -> RawServer:
        server = await RawServer(answer).start()
        servers.append(server)
        return server

    try:
        yield start
    finally:
        for server in servers:
            await server.stop()


async def test_request_bytes_and_keep_alive(start: Start, transport: Transport) -> None:
    server = await start(ok)
    call = HttpCall("POST", "/chat", {"a": "é"}, query={"v": "1 2", "x": "y"})
    for _ in range(3):
        result = await transport.request(call, server.url + "/base/", {"X-Key": "k"})
        assert result.status == 200
        assert result.body == b"/base/chat?v=1+2&x=y"
    assert server.connections == 1
    assert [r.nth for r in server.requests] == [0, 1, 2]
    seen = server.requests[0]
    assert seen.body == '{"a":"é"}'.encode()
    assert seen.headers["host"] == f"127.0.0.1:{server.port}"
    assert seen.headers["content-length"] == str(len(seen.body))
    assert seen.headers["content-type"] == "application/json"
    assert seen.headers["x-key"] == "k"
    assert seen.headers["accept-encoding"] == "identity"


async def test_get_without_body_has_no_length(start: Start, transport: Transport) -> None:
    server = await start(ok)
    await transport.request(GET, server.url, {})
    assert "content-length" not in server.requests[0].headers
    assert server.requests[0].method == "GET"


async def test_headers_are_case_insensitive_and_repeats_joined(
    start: Start, transport: Transport
) -> None:
    async def answer(request: RawRequest, writer: asyncio.StreamWriter) -> None:
        writer.write(
            b"HTTP/1.1 201 Created\r\nContent-Length: 2\r\nX-Thing: a\r\nx-thing: b\r\n\r\nhi"
        )

    server = await start(answer)
    result = await transport.request(POST, server.url, {})
    assert (result.status, result.body) == (201, b"hi")
    assert result.headers["X-THING"] == "a, b"
    assert result.headers.get("x-Thing") == "a, b"
    assert "X-Thing" in result.headers
    assert result.headers.get("missing", "d") == "d"


async def test_chunked_body_is_decoded_and_the_connection_reused(
    start: Start, transport: Transport
) -> None:
    async def answer(request: RawRequest, writer: asyncio.StreamWriter) -> None:
        writer.write(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n")
        await writer.drain()
        writer.write(b"6\r\n world\r\n0\r\n\r\n")

    server = await start(answer)
    assert (await transport.request(POST, server.url, {})).body == b"hello world"
    async with transport.stream(POST, server.url, {}) as up:
        assert b"".join([c async for c in up]) == b"hello world"
    assert (await transport.request(POST, server.url, {})).body == b"hello world"
    assert server.connections == 1


async def test_body_delimited_by_the_end_of_the_connection(
    start: Start, transport: Transport
) -> None:
    async def answer(request: RawRequest, writer: asyncio.StreamWriter) -> None:
        writer.write(b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n\r\nuntil ")
        await writer.drain()
        writer.write(b"the end")
        writer.close()

    server = await start(answer)
    assert (await transport.request(POST, server.url, {})).body == b"until the end"
    async with transport.stream(POST, server.url, {}) as up:
        assert b"".join([c async for c in up]) == b"until the end"
    assert server.connections == 2


async def test_connection_close_from_the_server_is_honoured(
    start: Start, transport: Transport
) -> None:
    async def answer(request: RawRequest, writer: asyncio.StreamWriter) -> None:
        writer.write(response(b"x", headers={"Connection": "close"}))  # and keeps it open

    server = await start(answer)
    for _ in range(2):
        assert (await transport.request(POST, server.url, {})).body == b"x"
    assert server.connections == 2


async def test_interim_answers_are_skipped(start: Start, transport: Transport) -> None:
    async def answer(request: RawRequest, writer: asyncio.StreamWriter) -> None:
        writer.write(b"HTTP/1.1 100 Continue\r\n\r\n" + response(b"final"))

    server = await start(answer)
    result = await transport.request(POST, server.url, {})
    assert (result.status, result.body) == (200, b"final")


async def test_head_answer_has_no_body(start: Start, transport: Transport) -> None:
    async def answer(request: RawRequest, writer: asyncio.StreamWriter) -> None:
        writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\n")

    server = await start(answer)
    result = await transport.request(HttpCall("HEAD", "/"), server.url, {})
    assert (result.status, result.body, result.headers["content-length"]) == (200, b"", "5")


# ---- connections the server closed ---------------------------------------------------------------


def _close_on(nth: int) -> Answer:
    """Answer normally, except close the connection without a word at its `nth` request."""

    async def answer(request: RawRequest, writer: asyncio.StreamWriter) -> None:
        if request.nth == nth:
            writer.close()
        else:
            writer.write(response(b"fine"))

    return answer


async def test_idle_connection_closed_by_the_server_is_not_used(
    start: Start, transport: Transport
) -> None:
    async def answer(request: RawRequest, writer: asyncio.StreamWriter) -> None:
        writer.write(response(b"fine"))  # keep-alive, as far as the headers go
        writer.close()

    server = await start(answer)
    await transport.request(POST, server.url, {})
    await server.wait_for(lambda: server.closed == 1)
    while transport.pool_stats(server.url).idle:
        await asyncio.sleep(0)  # until the client's loop has read the server's FIN
    # a POST is never sent twice, so this passes only if the dead connection was not tried
    assert (await transport.request(POST, server.url, {})).body == b"fine"
    assert server.connections == 2


@pytest.mark.parametrize(
    ("call", "headers"),
    [(GET, {}), (HttpCall("POST", "/chat", {"q": 1}), {"Idempotency-Key": "k1"})],
)
async def test_reused_connection_dropped_without_answer_is_retried_when_safe(
    start: Start, transport: Transport, call: HttpCall, headers: dict[str, str]
) -> None:
    server = await start(_close_on(nth=1))
    await transport.request(call, server.url, headers)
    assert (await transport.request(call, server.url, headers)).body == b"fine"
    assert [(r.conn, r.nth) for r in server.requests] == [(0, 0), (0, 1), (1, 0)]


async def test_reused_connection_dropped_without_answer_fails_a_post(
    start: Start, transport: Transport
) -> None:
    server = await start(_close_on(nth=1))
    await transport.request(POST, server.url, {})
    with pytest.raises(UpstreamError) as info:
        await transport.request(POST, server.url, {})
    assert type(info.value) is UpstreamError
    assert len(server.requests) == 2  # not sent again: the server may have acted on it
    assert (await transport.request(POST, server.url, {})).body == b"fine"


async def test_new_connection_dropped_without_answer_is_not_retried(
    start: Start, transport: Transport
) -> None:
    server = await start(_close_on(nth=0))
    with pytest.raises(UpstreamError):
        await transport.request(GET, server.url, {})
    assert len(server.requests) == 1


# ---- broken answers ------------------------------------------------------------------------------


async def test_body_cut_short(start: Start, transport: Transport) -> None:
    async def answer(request: RawRequest, writer: asyncio.StreamWriter) -> None:
        writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\n0123456789")
        await writer.drain()
        writer.close()

    server = await start(answer)
    async with transport.stream(POST, server.url, {}) as up:
        assert await up.next_chunk(5.0) == b"0123456789"
        with pytest.raises(StreamInterrupted):
            await up.next_chunk(5.0)
    with pytest.raises(UpstreamError) as info:
        await transport.request(POST, server.url, {})
    assert type(info.value) is UpstreamError


async def test_garbage_is_an_upstream_error(start: Start, transport: Transport) -> None:
    async def answer(request: RawRequest, writer: asyncio.StreamWriter) -> None:
        writer.write(b"SMTP ready\r\n\r\n")

    server = await start(answer)
    with pytest.raises(UpstreamError):
        await transport.request(POST, server.url, {})


async def test_header_injection_is_refused(transport: Transport) -> None:
    with pytest.raises(UpstreamError):
        await transport.request(POST, "http://127.0.0.1:9", {"X-A": "1\r\nX-B: 2"})


# ---- reading a stream ----------------------------------------------------------------------------


async def test_next_chunk_returns_everything_that_arrived_at_once(
    start: Start, transport: Transport
) -> None:
    async def answer(request: RawRequest, writer: asyncio.StreamWriter) -> None:
        writer.write(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n")
        await writer.drain()
        await request_read.wait()
        writer.write(b"1\r\na\r\n1\r\nb\r\n1\r\nc\r\n")  # three chunks in one segment
        await writer.drain()
        await server.release.wait()
        writer.write(b"0\r\n\r\n")

    request_read = asyncio.Event()
    server = await start(answer)
    async with transport.stream(POST, server.url, {}) as up:
        request_read.set()
        assert await up.next_chunk(5.0) == b"abc"
        server.release.set()
        assert await up.next_chunk(5.0) == b""
    await transport.request(POST, server.url, {})
    assert server.connections == 1


async def test_a_large_body_pauses_reading_until_it_is_consumed(
    start: Start, transport: Transport
) -> None:
    piece = bytes(range(256)) * 256  # 64 KiB
    pieces = 64  # 4 MiB

    async def answer(request: RawRequest, writer: asyncio.StreamWriter) -> None:
        writer.write(f"HTTP/1.1 200 OK\r\nContent-Length: {len(piece) * pieces}\r\n\r\n".encode())
        for _ in range(pieces):
            writer.write(piece)
            await writer.drain()

    server = await start(answer)
    async with transport.stream(POST, server.url, {}) as up:
        reading = up._conn.transport.is_reading  # type: ignore[union-attr]
        for _ in range(10_000):
            if not reading():
                break
            await asyncio.sleep(0)
        assert not reading()  # the client stopped reading while nobody consumed
        got = bytearray()
        while data := await up.next_chunk(5.0):
            got += data
        assert reading()
    assert got == piece * pieces
    await transport.request(GET, server.url, {})
    assert server.connections == 1
