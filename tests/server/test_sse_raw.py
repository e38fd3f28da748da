"""Raw HTTP, as curl sees it: SSE framing byte for byte, response headers, disconnects, probes."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import anthropic
import orjson
import pytest

from headway.config.runtime import RuntimeConfig
from headway.context import Call
from headway.pipeline import ChatHandler, PassThrough, StreamHandler
from headway.server.http import Request, Response
from headway.server.routes import MOUNTS, Router, ServerContext
from headway.services import Services
from headway.types import ChatChunk, ChatResponse, ToolCall
from tests.server.helpers import Scripted, running, scripted_gateway

BODY = {"model": "m", "messages": [{"role": "user", "content": "hi"}], "stream": True}


async def sse(base: str, body: dict[str, Any]) -> tuple[int, str, Any]:
    async with (
        aiohttp.ClientSession() as session,
        session.post(base + "/v1/chat/completions", data=orjson.dumps(body)) as resp,
    ):
        return resp.status, (await resp.read()).decode(), resp.headers


def events(text: str) -> list[str]:
    assert text.endswith("\n\n")
    frames = text[:-2].split("\n\n")
    for frame in frames:
        assert frame.startswith("data: ") and "\n" not in frame  # one data line, no event: lines
    return [f[len("data: ") :] for f in frames]


async def test_sse_framing_without_usage() -> None:
    async with running(scripted_gateway()) as base:
        status, text, headers = await sse(base, BODY)
    assert status == 200 and headers["content-type"] == "text/event-stream"
    assert headers["x-request-id"].startswith("req_") and headers["cache-control"] == "no-cache"
    data = events(text)
    assert data[-1] == "[DONE]"
    chunks = [orjson.loads(d) for d in data[:-1]]
    assert [c["choices"][0]["delta"] for c in chunks] == [
        {"role": "assistant", "content": ""},
        {"content": "Hello"},
        {"content": " there"},
        {"content": "!"},
        {},
    ]
    assert [c["choices"][0]["finish_reason"] for c in chunks] == [None, None, None, None, "stop"]
    assert all("usage" not in c for c in chunks)
    assert {(c["id"], c["created"], c["model"], c["object"]) for c in chunks} == {
        ("chatcmpl-s", chunks[0]["created"], "m", "chat.completion.chunk")
    }


async def test_sse_framing_with_usage() -> None:
    async with running(scripted_gateway()) as base:
        _, text, _ = await sse(base, {**BODY, "stream_options": {"include_usage": True}})
    data = events(text)
    chunks = [orjson.loads(d) for d in data[:-1]]
    assert all(c["usage"] is None for c in chunks[:-1])
    assert chunks[-1]["choices"] == [] and chunks[-1]["usage"] == {
        "prompt_tokens": 7,
        "completion_tokens": 3,
        "total_tokens": 10,
        "prompt_tokens_details": {"cached_tokens": 2},
        "completion_tokens_details": {"reasoning_tokens": 0},
    }
    assert chunks[-2]["choices"][0]["finish_reason"] == "stop"


async def test_sse_tool_call_fragments() -> None:
    gw = scripted_gateway(Scripted("m", tool_call=ToolCall("call_9", "lookup", '{"q":"x"}')))
    async with running(gw) as base:
        _, text, _ = await sse(base, BODY)
    chunks = [orjson.loads(d) for d in events(text)[:-1]]
    calls = [c["choices"][0]["delta"].get("tool_calls") for c in chunks[1:-1]]
    assert calls[0] == [
        {
            "index": 0,
            "id": "call_9",
            "type": "function",
            "function": {"name": "lookup", "arguments": ""},
        }
    ]
    assert calls[1] == [{"index": 0, "function": {"arguments": '{"q"'}}]
    assert calls[2] == [{"index": 0, "function": {"arguments": ':"x"}'}}]
    assert chunks[-1]["choices"][0]["finish_reason"] == "tool_calls"


async def test_in_band_error_ends_the_stream_without_done() -> None:
    from headway.errors import UpstreamError

    gw = scripted_gateway(Scripted("m", fail_after=UpstreamError("cut"), fail_at=1))
    async with running(gw) as base:
        status, text, _ = await sse(base, {**BODY, "model": "solo"})
    data = events(text)
    assert status == 200 and "[DONE]" not in data
    assert orjson.loads(data[-1]) == {
        "error": {"message": "cut", "type": "server_error", "param": None, "code": "upstream_error"}
    }
    assert orjson.loads(data[1])["choices"][0]["delta"] == {"content": "Hello"}


async def test_client_disconnect_cancels_the_upstream_stream() -> None:
    provider = Scripted("m", hang=True)
    async with running(scripted_gateway(provider)) as base:
        reader, writer = await asyncio.open_connection("127.0.0.1", int(base.rsplit(":", 1)[1]))
        body = orjson.dumps(BODY)
        writer.write(
            b"POST /v1/chat/completions HTTP/1.1\r\nhost: x\r\ncontent-type: application/json\r\n"
            + b"content-length: %d\r\n\r\n" % len(body)
            + body
        )
        await writer.drain()
        head = await reader.readuntil(b"\r\n\r\n")
        assert head.startswith(b"HTTP/1.1 200")
        await reader.readuntil(b'"Hello"')  # the first token arrived; the provider now hangs
        writer.close()
        await asyncio.wait_for(provider.closed.wait(), timeout=10)
    assert not provider.completed


class Marker(PassThrough):
    """Records what later stages would: cache outcome, degradation, limits, upstream time."""

    name = "marker"

    def _mark(self, call: Call) -> None:
        s = call.served
        s.cache, s.degraded = "exact", ["stale", "smaller-model"]
        s.ratelimit_headers["x-ratelimit-remaining-requests"] = "41"
        s.headers["x-headway-cost-usd"] = "0.0012"
        s.upstream_s = 1e6  # more than the whole call took: the overhead cannot be negative

    async def chat(self, call: Call, nxt: ChatHandler) -> ChatResponse:
        self._mark(call)
        return await nxt(call)

    async def stream(self, call: Call, nxt: StreamHandler) -> AsyncIterator[ChatChunk]:
        self._mark(call)
        async for chunk in nxt(call):
            yield chunk


def build_marker(runtime: RuntimeConfig, services: Services) -> Marker:
    return Marker()


@pytest.mark.parametrize("stream", [False, True])
async def test_served_becomes_headers(monkeypatch: pytest.MonkeyPatch, stream: bool) -> None:
    monkeypatch.setattr(
        "headway.gateway.STAGE_FACTORIES", ("tests.server.test_sse_raw:build_marker",)
    )
    async with running(scripted_gateway()) as base:
        _, _, headers = await sse(base, {**BODY, "stream": stream})
    assert headers["x-headway-cache"] == "exact"
    assert headers["x-headway-degraded"] == "stale,smaller-model"
    assert headers["x-ratelimit-remaining-requests"] == "41"
    assert headers["x-headway-cost-usd"] == "0.0012"
    assert headers["x-headway-deployment"] == "m" and "x-headway-route" not in headers
    assert headers["x-headway-overhead-ms"] == "0.00"


def mount_probe(router: Router, server: ServerContext) -> None:
    state: dict[str, str | None] = {"reason": None}

    async def check() -> str | None:
        return state["reason"]

    async def flip(req: Request) -> Response:
        state["reason"] = "redis unreachable"
        return Response(b"{}")

    server.readiness.append(check)
    router.post("/test/flip", flip, auth="none")


async def test_health_and_ready() -> None:
    mounts = (*MOUNTS, "tests.server.test_sse_raw:mount_probe")
    async with running(scripted_gateway(), mounts=mounts) as base, aiohttp.ClientSession() as s:
        async with s.get(base + "/health") as resp:
            assert (resp.status, await resp.json()) == (200, {"status": "ok"})
        async with s.get(base + "/ready") as resp:
            assert (resp.status, await resp.json()) == (200, {"status": "ready"})
        async with s.post(base + "/test/flip") as resp:
            assert resp.status == 200
        async with s.get(base + "/ready") as resp:
            assert resp.status == 503
            assert (await resp.json())["reasons"] == ["redis unreachable"]


async def test_anthropic_sdk_can_list_models() -> None:
    async with (
        running(scripted_gateway()) as base,
        anthropic.AsyncAnthropic(base_url=base, api_key="x", max_retries=0) as c,
    ):
        page = await c.models.list()
        one = await c.models.retrieve("m2")
    assert {m.id for m in page.data} == {"both", "solo", "m", "m2", "e"}
    assert one.id == "m2" and one.type == "model"
