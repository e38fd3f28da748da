"""`x-headway-overhead-ms` leaves out the time spent waiting on the provider.

The server measures with real time, so the provider really takes 0.2 s; the assertion is one of
correctness, not speed: an overhead under 100 ms means those 200 ms were excluded."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import aiohttp
from multidict import CIMultiDictProxy

from headway.providers.base import AttemptContext
from headway.types import ChatChunk, ChatRequest, ChatResponse
from tests.server.helpers import Scripted, running, scripted_gateway

PROVIDER_S = 0.2
BODY = {"model": "solo", "messages": [{"role": "user", "content": "hi"}]}


class Slow(Scripted):
    """Takes PROVIDER_S before answering, and before each streamed chunk."""

    async def chat(self, request: ChatRequest, ctx: AttemptContext) -> ChatResponse:
        await asyncio.sleep(PROVIDER_S)  # the upstream's latency under test, not a timer
        return await super().chat(request, ctx)

    async def stream(self, request: ChatRequest, ctx: AttemptContext) -> AsyncIterator[ChatChunk]:
        async for chunk in super().stream(request, ctx):
            await asyncio.sleep(PROVIDER_S)
            yield chunk


def overhead(headers: CIMultiDictProxy[str]) -> float:
    return float(headers["x-headway-overhead-ms"])


async def test_overhead_excludes_the_providers_time() -> None:
    gw = scripted_gateway(Slow("m"))
    async with running(gw) as base, aiohttp.ClientSession() as http:
        async with http.post(f"{base}/v1/chat/completions", json=BODY) as r:
            assert r.status == 200
            chat_ms = overhead(r.headers)
        async with http.post(f"{base}/v1/chat/completions", json={**BODY, "stream": True}) as r:
            assert r.status == 200
            stream_ms = overhead(r.headers)  # sent after the first chunk: 0.2 s upstream
            assert b"[DONE]" in await r.read()
    await gw.aclose()
    assert 0.0 <= chat_ms < 100.0
    assert 0.0 <= stream_ms < 100.0
