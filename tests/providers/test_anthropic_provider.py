"""Provider kind `anthropic` (HttpProvider + the Anthropic wire) against the Anthropic fake."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from headway.config.runtime import Deployment
from headway.config.schema import ModelSection, ProviderSection
from headway.errors import (
    HeadwayError,
    StreamInterrupted,
    UpstreamAuthFailed,
    UpstreamError,
    UpstreamOverloaded,
    UpstreamRateLimited,
)
from headway.providers.anthropic import base_url_for, build
from headway.providers.base import AttemptContext, RateLimitSnapshot
from headway.providers.fake import RunningFake, running_fake
from headway.providers.http import HttpProvider
from headway.services import Services
from headway.types import ChatChunk, ChatRequest, FinishReason, Message, ToolSpec

KEY = "sk-ant"
REQUEST = ChatRequest(model="alias", messages=(Message("user", "hello sim:tokens=6"),))


@pytest.fixture
async def fake() -> AsyncIterator[RunningFake]:
    async with running_fake("anthropic", api_key=KEY) as running:
        yield running


def provider(
    fake: RunningFake, services: Services, *, key: str = KEY, suffix: str = "", **model: object
) -> HttpProvider:
    section = ProviderSection(kind="anthropic", base_url=fake.root_url + suffix, api_key=key)
    spec = ModelSection(provider="up", model="claude-sonnet-4-6", **model)  # type: ignore[arg-type]
    return build(Deployment("claude", "up", section, spec), services)


async def collect(
    p: HttpProvider, request: ChatRequest, ctx: AttemptContext | None = None
) -> list[ChatChunk]:
    return [c async for c in p.stream(request, ctx or AttemptContext("r"))]


def test_base_url_accepts_a_trailing_v1() -> None:
    assert base_url_for(None) == "https://api.anthropic.com"
    assert base_url_for("http://h:1/v1/") == "http://h:1"
    assert base_url_for("http://h:1/proxy") == "http://h:1/proxy"


async def test_chat_with_default_max_tokens_and_ratelimit_snapshot(
    fake: RunningFake, services: Services
) -> None:
    await fake.control(rpm=100, tpm=50_000)
    seen: list[RateLimitSnapshot] = []
    p = provider(fake, services, default_max_tokens=3, suffix="/v1")
    reply = await p.chat(REQUEST, AttemptContext("r", on_ratelimit=seen.append))
    assert reply.finish_reason is FinishReason.LENGTH  # capped by the deployment's default
    assert reply.usage.output_tokens == 3 and reply.usage.input_tokens > 0
    assert reply.model == "claude-sonnet-4-6" and reply.id.startswith("msg_")
    (snap,) = seen
    assert (snap.limit_requests, snap.remaining_requests) == (100, 99)
    assert snap.limit_input_tokens == 50_000 and snap.limit_output_tokens == 50_000
    assert snap.reset_requests_at is not None and snap.reset_requests_at >= snap.observed_at - 1


async def test_stream_text_and_usage(fake: RunningFake, services: Services) -> None:
    chunks = await collect(provider(fake, services), REQUEST)
    assert chunks[0].role == "assistant"
    assert len([c for c in chunks if c.text]) == 6  # one token per chunk
    assert chunks[-1].finish_reason is FinishReason.STOP
    assert chunks[-1].usage is not None and chunks[-1].usage.output_tokens == 6
    assert (await fake.stats())["streamed"] == 1


async def test_streamed_tool_call(fake: RunningFake, services: Services) -> None:
    tool = ToolSpec(
        "get_weather",
        "w",
        {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]},
    )
    request = ChatRequest(
        model="a", messages=(Message("user", "weather?"),), tools=(tool,), tool_choice="required"
    )
    chunks = await collect(provider(fake, services), request)
    deltas = [d for c in chunks for d in c.tool_calls]
    assert deltas[0].id and deltas[0].id.startswith("toolu_") and deltas[0].name == "get_weather"
    assert '"city"' in "".join(d.arguments for d in deltas)
    assert chunks[-1].finish_reason is FinishReason.TOOL_CALLS


@pytest.mark.parametrize(
    ("control", "cls"),
    [
        ({"error_rate": 1.0, "error_status": 529}, UpstreamOverloaded),
        ({"error_rate": 1.0, "error_status": 500}, UpstreamError),
        ({"error_rate": 1.0, "error_status": 429, "error_retry_after_s": 7}, UpstreamRateLimited),
    ],
)
async def test_http_errors_are_classified(
    fake: RunningFake, services: Services, control: dict[str, object], cls: type[HeadwayError]
) -> None:
    await fake.control(**control)
    with pytest.raises(cls) as info:
        await provider(fake, services).chat(REQUEST, AttemptContext("r"))
    assert type(info.value) is cls and info.value.provider == "up"
    if cls is UpstreamRateLimited:
        assert info.value.retry_after == 7.0


async def test_bad_key_is_upstream_auth_failure(fake: RunningFake, services: Services) -> None:
    with pytest.raises(UpstreamAuthFailed) as info:
        await provider(fake, services, key="nope").chat(REQUEST, AttemptContext("r"))
    assert info.value.fallback_eligible and not info.value.retryable


async def test_error_event_and_cut_mid_stream(fake: RunningFake, services: Services) -> None:
    p = provider(fake, services)
    await fake.control(error_after_tokens=2)
    with pytest.raises(UpstreamError) as info:
        await collect(p, REQUEST)
    assert info.value.upstream_status == 200
    await fake.control(reset=True, cut_after_tokens=2)
    with pytest.raises(StreamInterrupted):
        await collect(p, REQUEST)
    await fake.control(reset=True, malformed_after_tokens=2)
    with pytest.raises(StreamInterrupted):
        await collect(p, REQUEST)
