"""The shared upstream Transport over real loopback HTTP."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import orjson
import pytest

from headway.errors import StreamInterrupted, UpstreamError, UpstreamTimeout
from headway.providers.base import HttpCall
from headway.services import Services
from headway.transport.http import Transport, transport_for
from tests.conftest import free_port
from tests.providers.openai_server import Reply, ScriptedServer


@pytest.fixture
async def server() -> AsyncIterator[ScriptedServer]:
    s = ScriptedServer()
    await s.server.start_server()
    try:
        yield s
    finally:
        s.release.set()
        await s.server.close()


CALL = HttpCall("POST", "/chat", {"a": [1, "é"]})


async def test_request_sends_json_and_returns_status_headers_body(
    server: ScriptedServer, transport: Transport
) -> None:
    server.script(Reply(status=201, json={"ok": True}, headers={"X-Thing": "1"}))
    call = HttpCall("POST", "/chat", {"a": [1, "é"]}, query={"v": "2024-10-21"})
    result = await transport.request(call, server.url + "/base/", {"Authorization": "Bearer k"})
    assert result.status == 201
    assert result.headers["x-thing"] == "1"  # case-insensitive
    assert orjson.loads(result.body) == {"ok": True}
    seen = server.seen[0]
    assert (seen.path, seen.query) == ("/base/chat", {"v": "2024-10-21"})
    assert seen.body == {"a": [1, "é"]}
    assert seen.headers["content-type"] == "application/json"
    assert seen.headers["authorization"] == "Bearer k"


async def test_connections_are_kept_alive_and_reused(
    server: ScriptedServer, transport: Transport
) -> None:
    for _ in range(3):
        await transport.request(CALL, server.url, {})
    assert len({s.peer_port for s in server.seen}) == 1


async def test_pool_limit_bounds_concurrent_connections(
    server: ScriptedServer, transport: Transport
) -> None:
    await asyncio.gather(
        *(transport.request(CALL, server.url, {}, max_connections=1) for _ in range(4))
    )
    assert len(server.seen) == 4
    assert server.max_in_flight == 1
    assert len({s.peer_port for s in server.seen}) == 1


async def test_refused_connection_is_an_upstream_error(transport: Transport) -> None:
    with pytest.raises(UpstreamError) as info:
        await transport.request(CALL, f"http://127.0.0.1:{free_port()}", {})
    assert type(info.value) is UpstreamError


async def test_request_timeout(server: ScriptedServer, transport: Transport) -> None:
    server.script(Reply(json={}, hang=True))
    with pytest.raises(UpstreamTimeout):
        await transport.request(CALL, server.url, {}, timeout=0.05)


async def test_stream_exposes_status_and_headers_before_the_body(
    server: ScriptedServer, transport: Transport
) -> None:
    server.script(Reply(frames=[b"data: 1\n\n"], headers={"x-request-id": "r1"}, hang_after=True))
    async with transport.stream(CALL, server.url, {}) as up:
        assert up.status == 200
        assert up.headers["X-Request-Id"] == "r1"
        assert await up.next_chunk(5.0) == b"data: 1\n\n"
        with pytest.raises(UpstreamTimeout):
            await up.next_chunk(0.05)


async def test_stream_iterates_to_the_end_and_returns_the_connection(
    server: ScriptedServer, transport: Transport
) -> None:
    server.script(Reply(frames=[b"a", b"b", b"c"]))
    async with transport.stream(CALL, server.url, {}) as up:
        body = b"".join([c async for c in up])
    assert body == b"abc"
    await transport.request(CALL, server.url, {})
    assert len({s.peer_port for s in server.seen}) == 1


async def test_dropped_body_is_stream_interrupted(
    server: ScriptedServer, transport: Transport
) -> None:
    server.script(Reply(frames=[b"data: 1\n\n"], reset_after=True))
    async with transport.stream(CALL, server.url, {}) as up:
        with pytest.raises(StreamInterrupted):
            while await up.next_chunk(5.0):
                pass


async def test_error_body_of_a_stream_can_be_read_whole(
    server: ScriptedServer, transport: Transport
) -> None:
    server.script(Reply(status=429, json={"error": {"message": "slow down"}}))
    async with transport.stream(CALL, server.url, {}) as up:
        assert up.status == 429
        assert orjson.loads(await up.read()) == {"error": {"message": "slow down"}}


async def test_closed_transport_refuses_work(server: ScriptedServer) -> None:
    t = Transport()
    await t.request(CALL, server.url, {})
    await t.aclose()
    with pytest.raises(UpstreamError):
        await t.request(CALL, server.url, {})


async def test_transport_for_creates_one_per_services_and_closes_with_them(
    server: ScriptedServer,
) -> None:
    services = Services()
    first = transport_for(services)
    assert transport_for(services) is first
    await first.request(CALL, server.url, {})
    await services.aclose()
    assert services.transport is None
    with pytest.raises(UpstreamError):
        await first.request(CALL, server.url, {})
