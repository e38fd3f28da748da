"""Provider kind `gemini` (HttpProvider + the Gemini wire) against the Gemini fake."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from headway.config.runtime import Deployment
from headway.config.schema import ModelSection, ProviderSection
from headway.errors import (
    ContentFiltered,
    HeadwayError,
    StreamInterrupted,
    UpstreamAuthFailed,
    UpstreamError,
    UpstreamModelNotFound,
    UpstreamOverloaded,
    UpstreamRateLimited,
)
from headway.providers.base import AttemptContext
from headway.providers.fake import RunningFake, running_fake
from headway.providers.gemini import build, wire_for
from headway.providers.http import HttpProvider
from headway.services import Services
from headway.types import ChatChunk, ChatRequest, EmbedRequest, FinishReason, Message, ToolSpec

KEY = "AIza-key"
REQUEST = ChatRequest(
    model="alias", messages=(Message("system", "terse"), Message("user", "hello sim:tokens=6"))
)
WEATHER = ToolSpec(
    "get_weather",
    "w",
    {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]},
)


@pytest.fixture
async def fake() -> AsyncIterator[RunningFake]:
    async with running_fake("gemini", api_key=KEY) as running:
        yield running


def provider(
    fake: RunningFake,
    services: Services,
    *,
    key: str = KEY,
    suffix: str = "",
    model: str = "gemini-2.5-flash",
) -> HttpProvider:
    section = ProviderSection(kind="gemini", base_url=fake.root_url + suffix, api_key=key)
    return build(
        Deployment("gem", "up", section, ModelSection(provider="up", model=model, embeddings=True)),
        services,
    )


async def collect(p: HttpProvider, request: ChatRequest) -> list[ChatChunk]:
    return [c async for c in p.stream(request, AttemptContext("r"))]


def test_api_prefix_follows_the_base_url() -> None:
    assert wire_for("https://generativelanguage.googleapis.com").api_prefix == "/v1beta"
    assert wire_for("http://h:1/v1beta").api_prefix == ""
    assert wire_for("http://h:1/v1/").api_prefix == ""


@pytest.mark.parametrize("suffix", ["", "/v1beta"])
async def test_chat(fake: RunningFake, services: Services, suffix: str) -> None:
    reply = await provider(fake, services, suffix=suffix).chat(REQUEST, AttemptContext("r"))
    assert reply.content and reply.finish_reason is FinishReason.STOP
    assert reply.usage.output_tokens == 6 and reply.usage.input_tokens > 0
    assert reply.model == "gemini-2.5-flash"
    assert (await fake.stats())["by_endpoint"] == {"generateContent": 1}


async def test_stream_has_no_terminator_but_ends_cleanly(
    fake: RunningFake, services: Services
) -> None:
    chunks = await collect(provider(fake, services), REQUEST)
    assert chunks[0].role == "assistant"
    assert len([c for c in chunks if c.text]) == 6
    assert chunks[-1].finish_reason is FinishReason.STOP
    assert chunks[-1].usage is not None and chunks[-1].usage.output_tokens == 6


async def test_function_call_round_trip(fake: RunningFake, services: Services) -> None:
    p = provider(fake, services)
    ask = ChatRequest(
        model="a", messages=(Message("user", "weather?"),), tools=(WEATHER,), tool_choice="required"
    )
    first = await p.chat(ask, AttemptContext("r"))
    assert first.finish_reason is FinishReason.TOOL_CALLS
    (call,) = first.tool_calls
    assert call.name == "get_weather" and call.id.startswith("call_hw")
    chunks = await collect(p, ask)
    (delta,) = [d for c in chunks for d in c.tool_calls]
    assert delta.name == "get_weather" and delta.arguments == call.arguments
    assert chunks[-1].finish_reason is FinishReason.TOOL_CALLS
    follow = ChatRequest(
        model="a",
        messages=(
            *ask.messages,
            Message("assistant", None, tool_calls=(call,)),
            Message("tool", "18C", tool_call_id=call.id),
        ),
        tools=(WEATHER,),
    )
    answer = await p.chat(follow, AttemptContext("r"))
    assert answer.content and not answer.tool_calls


async def test_blocked_prompt(fake: RunningFake, services: Services) -> None:
    blocked = ChatRequest(model="a", messages=(Message("user", "bad sim:block"),))
    with pytest.raises(ContentFiltered):
        await provider(fake, services).chat(blocked, AttemptContext("r"))
    with pytest.raises(ContentFiltered):
        await collect(provider(fake, services), blocked)


@pytest.mark.parametrize(
    ("control", "cls"),
    [
        ({"error_rate": 1.0, "error_status": 503}, UpstreamOverloaded),
        ({"error_rate": 1.0, "error_status": 500}, UpstreamError),
        ({"error_rate": 1.0, "error_status": 404}, UpstreamModelNotFound),
        ({"rpm": 1}, UpstreamRateLimited),
    ],
)
async def test_errors_are_classified(
    fake: RunningFake, services: Services, control: dict[str, object], cls: type[HeadwayError]
) -> None:
    await fake.control(**control)
    p = provider(fake, services)
    if "rpm" in control:
        await p.chat(REQUEST, AttemptContext("r"))
    with pytest.raises(cls) as info:
        await p.chat(REQUEST, AttemptContext("r"))
    assert type(info.value) is cls and info.value.provider == "up"
    if cls is UpstreamRateLimited:
        assert info.value.retry_after is not None and info.value.retry_after >= 1  # from RetryInfo


async def test_bad_key(fake: RunningFake, services: Services) -> None:
    with pytest.raises(UpstreamAuthFailed):
        await provider(fake, services, key="wrong").chat(REQUEST, AttemptContext("r"))


async def test_mid_stream_failures(fake: RunningFake, services: Services) -> None:
    p = provider(fake, services)
    await fake.control(cut_after_tokens=2)
    with pytest.raises(StreamInterrupted):
        await collect(p, REQUEST)
    await fake.control(reset=True, error_after_tokens=2)
    with pytest.raises(UpstreamError) as info:
        await collect(p, REQUEST)
    assert info.value.upstream_status == 500


async def test_embeddings(fake: RunningFake, services: Services) -> None:
    p = provider(fake, services, model="gemini-embedding-001")
    one = await p.embed(
        EmbedRequest(model="e", inputs=("hello",), dimensions=32), AttemptContext("r")
    )
    many = await p.embed(EmbedRequest(model="e", inputs=("a", "b")), AttemptContext("r"))
    assert len(one.vectors) == 1 and len(one.vectors[0]) == 32
    assert len(many.vectors) == 2 and one.model == "gemini-embedding-001"
    assert (await fake.stats())["by_endpoint"] == {"embedContent": 1, "batchEmbedContents": 1}
