"""The `openai` provider against headway's own OpenAI fake server (headway.providers.fake)."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from headway.errors import (
    StreamInterrupted,
    UpstreamAuthFailed,
    UpstreamOverloaded,
    UpstreamRateLimited,
)
from headway.providers.base import RateLimitSnapshot
from headway.providers.fake import RunningFake, running_fake
from headway.services import Services
from headway.types import ChatRequest, EmbedRequest, FinishReason, Message
from tests.providers.openai_helpers import collect, collect_until_error, ctx, make

KEY = "sk-fake-key"
ASK = ChatRequest(model="m", messages=(Message("user", "Tell me sim:tokens=12"),), max_tokens=64)


@pytest.fixture
async def fake() -> AsyncIterator[RunningFake]:
    async with running_fake("openai", api_key=KEY) as running:
        yield running


async def test_chat_stream_and_embeddings(fake: RunningFake, services: Services) -> None:
    provider = make(fake.url, services, api_key=KEY)
    snapshots: list[RateLimitSnapshot] = []
    reply = await provider.chat(ASK, ctx(on_ratelimit=snapshots.append))
    assert reply.content and reply.finish_reason is FinishReason.STOP
    assert reply.usage.output_tokens == 12 and not reply.usage.estimated
    assert snapshots and snapshots[0].remaining_requests is not None

    chunks = await collect(provider, ASK)
    assert chunks[0].role == "assistant"
    final = chunks[-1]
    assert final.finish_reason is FinishReason.STOP
    assert final.usage is not None and final.usage.output_tokens == 12
    assert not final.usage.estimated
    assert sum(1 for c in chunks if c.text) == 12

    embedder = make(
        fake.url, services, api_key=KEY, model="text-embedding-3-small", embeddings=True
    )
    result = await embedder.embed(EmbedRequest(model="e", inputs=("a", "b")), ctx())
    assert len(result.vectors) == 2 and len(result.vectors[0]) > 0


async def test_wrong_key_is_an_upstream_auth_failure(fake: RunningFake, services: Services) -> None:
    with pytest.raises(UpstreamAuthFailed):
        await make(fake.url, services, api_key="wrong").chat(ASK, ctx())


async def test_injected_faults(fake: RunningFake, services: Services) -> None:
    provider = make(fake.url, services, api_key=KEY)
    await fake.control(error_rate=1.0, error_status=503, fault_requests=1)
    with pytest.raises(UpstreamOverloaded):
        await provider.chat(ASK, ctx())

    await fake.reset()
    await fake.control(cut_after_tokens=3, fault_requests=1)
    chunks, exc = await collect_until_error(provider, ASK)
    assert isinstance(exc, StreamInterrupted)
    assert sum(1 for c in chunks if c.text) == 3

    await fake.reset()
    await fake.control(error_after_tokens=2, fault_requests=1)
    chunks, exc = await collect_until_error(provider, ASK)
    assert type(exc) is StreamInterrupted and "mid-stream" in str(exc)
    assert sum(1 for c in chunks if c.text) == 2

    await fake.reset()
    await fake.control(malformed_after_tokens=1, fault_requests=1)
    chunks, exc = await collect_until_error(provider, ASK)
    assert isinstance(exc, StreamInterrupted)


async def test_provider_rate_limit(fake: RunningFake, services: Services) -> None:
    await fake.control(rpm=1)
    provider = make(fake.url, services, api_key=KEY)
    await provider.chat(ASK, ctx())
    with pytest.raises(UpstreamRateLimited) as info:
        await provider.chat(ASK, ctx())
    assert info.value.retry_after is not None and info.value.retry_after > 0
