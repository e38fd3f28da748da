"""The native HTTP/1.1 server over real loopback sockets: connection handling and request bodies."""

from __future__ import annotations

import asyncio
from typing import Any

import openai
import orjson
import pytest

from tests.server.helpers import Scripted, scripted_gateway
from tests.server.native_support import connect, get, post, serving

CHAT = orjson.dumps({"model": "m", "messages": [{"role": "user", "content": "hi"}]})
STREAM = orjson.dumps(
    {"model": "m", "messages": [{"role": "user", "content": "hi"}], "stream": True}
)
PATH = "/v1/chat/completions"


def content(body: bytes) -> Any:
    return orjson.loads(body)["choices"][0]["message"]["content"]


async def test_the_openai_sdk_chats_and_streams() -> None:
    async with (
        serving(scripted_gateway()) as srv,
        openai.AsyncOpenAI(base_url=srv.base + "/v1", api_key="x", max_retries=0) as c,
    ):
        reply = await c.chat.completions.create(
            model="m", messages=[{"role": "user", "content": "hi"}]
        )
        stream = await c.chat.completions.create(
            model="m", messages=[{"role": "user", "content": "hi"}], stream=True
        )
        text = "".join([ch.choices[0].delta.content or "" async for ch in stream])
    assert reply.choices[0].message.content == "Hello there!"
    assert text == "Hello there!"


async def test_keep_alive_answers_many_requests_on_one_connection() -> None:
    async with serving(scripted_gateway()) as srv, connect(srv.port) as raw:
        for _ in range(3):
            await raw.send(post(PATH, CHAT))
            answer = await raw.answer()
            assert answer.status == 200 and content(answer.body) == "Hello there!"
            assert "connection" not in answer.headers
        await raw.send(get("/health"))
        assert (await raw.answer()).status == 200
        assert len(srv.server.connections) == 1


async def test_pipelined_requests_are_answered_in_order() -> None:
    async with serving(scripted_gateway()) as srv, connect(srv.port) as raw:
        await raw.send(post(PATH, STREAM) + get("/v1/models") + post(PATH, CHAT) + get("/nope"))
        first, second, third, fourth = [await raw.answer() for _ in range(4)]
    assert first.status == 200 and first.headers["transfer-encoding"] == "chunked"
    assert first.body.endswith(b"data: [DONE]\n\n")
    assert second.status == 200 and orjson.loads(second.body)["object"] == "list"
    assert third.status == 200 and content(third.body) == "Hello there!"
    assert fourth.status == 404 and orjson.loads(fourth.body)["error"]["code"] == "unknown_url"


async def test_chunked_request_body() -> None:
    half = len(CHAT) // 2
    head = (
        f"POST {PATH} HTTP/1.1\r\nhost: x\r\ncontent-type: application/json\r\n"
        "transfer-encoding: chunked\r\n\r\n"
    ).encode()
    pieces = [CHAT[:half], CHAT[half:]]
    async with serving(scripted_gateway()) as srv, connect(srv.port) as raw:
        await raw.send(head)
        for piece in pieces:  # the body arrives after the app started waiting for it
            await raw.send(b"%x\r\n%b\r\n" % (len(piece), piece))
        await raw.send(b"0\r\n\r\n")
        answer = await raw.answer()
    assert answer.status == 200 and content(answer.body) == "Hello there!"


async def test_expect_100_continue() -> None:
    head, body = post(PATH, CHAT, "expect: 100-continue").split(b"\r\n\r\n", 1)
    async with serving(scripted_gateway()) as srv, connect(srv.port) as raw:
        await raw.send(head + b"\r\n\r\n")
        interim = await raw.answer()
        assert interim.status == 100
        await raw.send(body)
        answer = await raw.answer()
    assert answer.status == 200 and content(answer.body) == "Hello there!"
    assert raw.received.startswith(b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\n")


async def test_expect_100_continue_with_an_oversized_body_gets_413_without_100() -> None:
    async with serving(scripted_gateway(), max_body_bytes=64) as srv, connect(srv.port) as raw:
        await raw.send(
            f"POST {PATH} HTTP/1.1\r\nhost: x\r\nexpect: 100-continue\r\n"
            "content-length: 100000\r\n\r\n".encode()
        )
        answer = await raw.answer()
        assert await raw.at_eof()
    assert answer.status == 413 and answer.headers["connection"] == "close"
    assert b"100 Continue" not in raw.received


@pytest.mark.parametrize("chunked", [False, True])
async def test_oversize_body_is_413_in_openai_shape_and_closes(chunked: bool) -> None:
    big = orjson.dumps({"model": "m", "messages": [{"role": "user", "content": "x" * 5000}]})
    if chunked:
        request = (
            f"POST {PATH} HTTP/1.1\r\nhost: x\r\ntransfer-encoding: chunked\r\n\r\n".encode()
            + b"".join(b"%x\r\n%b\r\n" % (len(p), p) for p in (big[:3000], big[3000:]))
            + b"0\r\n\r\n"
        )
    else:
        request = post(PATH, big)
    async with serving(scripted_gateway(), max_body_bytes=2048) as srv, connect(srv.port) as raw:
        await raw.send(request)
        answer = await raw.answer()
        assert await raw.at_eof()
    assert answer.status == 413 and answer.headers["connection"] == "close"
    error = orjson.loads(answer.body)["error"]
    assert error["code"] == "request_too_large" and error["type"] == "invalid_request_error"


async def test_the_sdk_sees_413() -> None:
    async with (
        serving(scripted_gateway(), max_body_bytes=512) as srv,
        openai.AsyncOpenAI(base_url=srv.base + "/v1", api_key="x", max_retries=0) as c,
    ):
        with pytest.raises(openai.APIStatusError) as err:
            await c.chat.completions.create(
                model="m", messages=[{"role": "user", "content": "x" * 2000}]
            )
    assert err.value.status_code == 413
    assert isinstance(err.value.body, dict) and err.value.body["code"] == "request_too_large"


@pytest.mark.parametrize(
    "request_line",
    [b"GARBAGE\r\n\r\n", b"GET /health HTTP/9.9\r\n\r\n", b"GET\x00 / HTTP/1.1\r\n\r\n"],
)
async def test_malformed_request_is_400_and_closes(request_line: bytes) -> None:
    async with serving(scripted_gateway()) as srv, connect(srv.port) as raw:
        await raw.send(request_line)
        answer = await raw.answer()
        assert await raw.at_eof()
    assert answer.status == 400 and answer.headers["connection"] == "close"


async def test_malformed_request_after_a_good_one_is_answered_in_its_turn() -> None:
    async with serving(scripted_gateway()) as srv, connect(srv.port) as raw:
        await raw.send(post(PATH, CHAT) + b"NONSENSE\r\n\r\n")
        first, second = await raw.answer(), await raw.answer()
        assert await raw.at_eof()
    assert first.status == 200 and second.status == 400


async def test_oversized_head_is_431() -> None:
    async with serving(scripted_gateway()) as srv, connect(srv.port) as raw:
        await raw.send(get("/health", "x-big: " + "a" * 70_000))
        answer = await raw.answer()
        assert await raw.at_eof()
    assert answer.status == 431


async def test_connection_close_and_http_1_0_close_after_the_answer() -> None:
    async with serving(scripted_gateway()) as srv:
        async with connect(srv.port) as raw:
            await raw.send(post(PATH, CHAT, "connection: close"))
            answer = await raw.answer()
            assert await raw.at_eof()
        assert answer.status == 200 and answer.headers["connection"] == "close"
        async with connect(srv.port) as raw:
            await raw.send(get("/health", version="1.0"))
            answer = await raw.answer()
            assert await raw.at_eof()
        assert answer.status == 200 and raw.received.startswith(b"HTTP/1.1 200 OK\r\n")
        async with connect(srv.port) as raw:  # HTTP/1.0 asking for keep-alive gets it
            for _ in range(2):
                await raw.send(get("/health", "connection: keep-alive", version="1.0"))
                assert (await raw.answer()).status == 200


async def test_http_1_0_stream_is_unchunked_and_ends_with_the_connection() -> None:
    async with serving(scripted_gateway()) as srv, connect(srv.port) as raw:
        await raw.send(post(PATH, STREAM, version="1.0"))
        assert await raw.at_eof()
    head, body = raw.received.split(b"\r\n\r\n", 1)
    assert b"transfer-encoding" not in head and b"connection: close" in head
    assert body.startswith(b"data: {") and body.endswith(b"data: [DONE]\n\n")


async def test_idle_keep_alive_connections_are_closed() -> None:
    async with (
        serving(scripted_gateway(), keepalive_s=0.0) as srv,
        connect(srv.port) as raw,
    ):
        await raw.send(get("/health"))
        assert (await raw.answer()).status == 200
        assert await raw.at_eof()  # closed by the server's idle sweep, no request in flight


async def test_head_request_gets_headers_only() -> None:
    async with serving(scripted_gateway()) as srv, connect(srv.port) as raw:
        await raw.send(b"HEAD /health HTTP/1.1\r\nhost: x\r\n\r\n" + get("/health"))
        await asyncio.wait_for(raw.reader.readuntil(b"\r\n\r\n"), 10)
        follow = await raw.answer()  # the next answer starts right after the first head
    assert follow.status == 200 and follow.body == b'{"status":"ok"}'


async def test_percent_encoded_path_and_query_reach_the_app() -> None:
    provider = Scripted("m2")
    async with serving(scripted_gateway(m2=provider)) as srv, connect(srv.port) as raw:
        await raw.send(get("/v1/models/m%32?x=1"))
        answer = await raw.answer()
    assert answer.status == 200 and orjson.loads(answer.body)["id"] == "m2"
