"""The OpenAI fake, judged by the official `openai` SDK over real loopback HTTP."""

from __future__ import annotations

import math
from collections.abc import AsyncIterator

import openai
import orjson
import pytest
from openai import AsyncOpenAI
from openai.types.chat import ChatCompletionFunctionToolParam, ChatCompletionMessageParam

from headway import tokens
from headway.clock import FakeClock
from headway.providers.fake import RunningFake, running_fake

KEY = "sk-test-0123456789"
MESSAGES: list[ChatCompletionMessageParam] = [
    {"role": "user", "content": "Explain retries sim:tokens=12"}
]
WEATHER: ChatCompletionFunctionToolParam = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "Current weather",
        "parameters": {
            "type": "object",
            "properties": {"city": {"type": "string"}, "days": {"type": "integer"}},
            "required": ["city", "days"],
        },
    },
}
RATE_HEADERS = (
    "x-ratelimit-limit-requests",
    "x-ratelimit-limit-tokens",
    "x-ratelimit-remaining-requests",
    "x-ratelimit-remaining-tokens",
    "x-ratelimit-reset-requests",
    "x-ratelimit-reset-tokens",
)


@pytest.fixture
async def fake() -> AsyncIterator[RunningFake]:
    async with running_fake("openai", api_key=KEY) as running:
        yield running


@pytest.fixture
async def client(fake: RunningFake) -> AsyncIterator[AsyncOpenAI]:
    async with AsyncOpenAI(base_url=fake.url, api_key=KEY, max_retries=0) as c:
        yield c


async def test_completion(client: AsyncOpenAI) -> None:
    raw = await client.chat.completions.with_raw_response.create(
        model="gpt-4o-mini",
        messages=MESSAGES,
    )
    reply = raw.parse()
    assert reply.object == "chat.completion"
    assert reply.id.startswith("chatcmpl-")
    assert reply.model == "gpt-4o-mini"
    choice = reply.choices[0]
    assert choice.finish_reason == "stop"
    assert choice.message.role == "assistant"
    assert choice.message.content is not None
    assert reply.usage is not None
    assert reply.usage.completion_tokens == 12 == tokens.count(choice.message.content)
    assert reply.usage.total_tokens == reply.usage.prompt_tokens + 12
    assert raw.headers["x-request-id"].startswith("req_")
    for name in RATE_HEADERS:
        assert raw.headers[name]


async def test_stream_without_usage(client: AsyncOpenAI) -> None:
    whole = await client.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES)
    stream = await client.chat.completions.create(
        model="gpt-4o-mini",
        messages=MESSAGES,
        stream=True,
    )
    chunks = [c async for c in stream]
    assert all(c.usage is None for c in chunks)
    assert chunks[0].choices[0].delta.role == "assistant"
    text = "".join(c.choices[0].delta.content or "" for c in chunks)
    assert text == whole.choices[0].message.content
    assert chunks[-1].choices[0].finish_reason == "stop"


async def test_stream_with_usage(client: AsyncOpenAI) -> None:
    stream = await client.chat.completions.create(
        model="gpt-4o-mini",
        messages=MESSAGES,
        stream=True,
        stream_options={"include_usage": True},
    )
    chunks = [c async for c in stream]
    last = chunks[-1]
    assert last.choices == []
    assert last.usage is not None and last.usage.completion_tokens == 12
    assert all(c.usage is None for c in chunks[:-1])


async def test_tool_call_stream_is_reassembled_by_the_sdk(client: AsyncOpenAI) -> None:
    async with client.chat.completions.stream(
        model="gpt-4o-mini",
        messages=[{"role": "user", "content": "please call get_weather"}],
        tools=[WEATHER],
    ) as stream:
        final = await stream.get_final_completion()
    choice = final.choices[0]
    assert choice.finish_reason == "tool_calls"
    calls = choice.message.tool_calls
    assert calls is not None and len(calls) == 1
    call = calls[0]
    assert call.type == "function"
    assert call.function.name == "get_weather"
    assert call.id.startswith("call_")
    args = orjson.loads(call.function.arguments)
    assert isinstance(args["city"], str) and isinstance(args["days"], int)


async def test_embeddings_base64_is_decoded_by_the_sdk(client: AsyncOpenAI) -> None:
    texts = ["hello world", "tiktoken is great!"]
    b64 = await client.embeddings.create(model="text-embedding-3-small", input=texts)
    floats = await client.embeddings.create(
        model="text-embedding-3-small", input=texts, encoding_format="float", dimensions=64
    )
    assert [d.index for d in b64.data] == [0, 1]
    assert len(b64.data[0].embedding) == 256
    assert math.isclose(sum(x * x for x in b64.data[0].embedding), 1.0, rel_tol=1e-5)
    assert len(floats.data[1].embedding) == 64
    assert b64.usage.prompt_tokens == 2 + 6 == b64.usage.total_tokens


async def test_rate_limit_error_carries_retry_headers(
    fake: RunningFake, client: AsyncOpenAI
) -> None:
    await fake.control(rpm=1)
    await client.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES)
    with pytest.raises(openai.RateLimitError) as info:
        await client.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES)
    err = info.value
    assert err.status_code == 429
    assert err.code == "rate_limit_exceeded"
    assert err.type == "requests"
    headers = err.response.headers
    assert 55 <= int(headers["retry-after"]) <= 60
    assert 55_000 <= float(headers["retry-after-ms"]) <= 60_000
    assert headers["x-ratelimit-remaining-requests"] == "0"
    assert err.request_id and err.request_id.startswith("req_")
    await fake.control(rpm=None, tpm=50)
    with pytest.raises(openai.RateLimitError) as tpm:
        await client.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES, max_tokens=100)
    assert tpm.value.type == "tokens"


async def test_fake_clock_drives_the_limits_over_http(fake_clock: FakeClock) -> None:
    async with (
        running_fake("openai", clock=fake_clock, rpm=2) as fake,
        AsyncOpenAI(base_url=fake.url, api_key="x", max_retries=0) as client,
    ):
        for _ in range(2):
            await client.chat.completions.create(model="m", messages=MESSAGES)
        with pytest.raises(openai.RateLimitError):
            await client.chat.completions.create(model="m", messages=MESSAGES)
        await fake_clock.advance(30)
        await client.chat.completions.create(model="m", messages=MESSAGES)


@pytest.mark.parametrize("status", [500, 502, 503, 504])
async def test_server_errors(fake: RunningFake, client: AsyncOpenAI, status: int) -> None:
    await fake.control(error_rate=1.0, error_status=status)
    with pytest.raises(openai.InternalServerError) as info:
        await client.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES)
    assert info.value.status_code == status
    assert info.value.type == "server_error"
    assert info.value.request_id


async def test_in_band_error_is_an_api_error(fake: RunningFake, client: AsyncOpenAI) -> None:
    await fake.control(error_after_tokens=3)
    stream = await client.chat.completions.create(
        model="gpt-4o-mini",
        messages=MESSAGES,
        stream=True,
    )
    text = ""
    with pytest.raises(openai.APIError) as info:
        async for chunk in stream:
            text += chunk.choices[0].delta.content or ""
    assert not isinstance(info.value, openai.APIStatusError)
    assert tokens.count(text) == 3


async def test_sdk_retries_follow_the_fake_headers(fake: RunningFake) -> None:
    await fake.control(error_rate=1.0, error_status=503, fault_requests=1, error_retry_after_s=0.01)
    async with AsyncOpenAI(base_url=fake.url, api_key=KEY, max_retries=2) as retrying:
        reply = await retrying.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES)
        assert reply.choices[0].message.content
        await fake.control(fault_requests=1, error_should_retry=False)
        with pytest.raises(openai.InternalServerError):
            await retrying.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES)
    stats = await fake.stats()
    assert stats["by_status"] == {"503": 2, "200": 1}


async def test_stats_count_what_was_served(fake: RunningFake, client: AsyncOpenAI) -> None:
    await client.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES)
    stream = await client.chat.completions.create(
        model="gpt-4o-mini",
        messages=MESSAGES,
        stream=True,
    )
    async for _ in stream:
        pass
    await client.embeddings.create(model="text-embedding-3-small", input="hello world")
    await fake.control(rpm=1)
    await client.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES)
    with pytest.raises(openai.RateLimitError):
        await client.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES)
    stats = await fake.stats()
    assert stats["by_endpoint"] == {"chat.completions": 4, "embeddings": 1}
    assert (stats["streamed"], stats["non_streamed"]) == (1, 4)
    assert stats["rate_limited"] == 1
    assert stats["tokens_out"] == 36
    assert stats["tokens_in"] > 0
    assert stats["max_concurrent"] >= 1 and stats["in_flight"] == 0


async def test_auth_is_required_when_a_key_is_set(fake: RunningFake) -> None:
    async with AsyncOpenAI(base_url=fake.url, api_key="sk-wrong-key-000", max_retries=0) as bad:
        with pytest.raises(openai.AuthenticationError) as info:
            await bad.models.list()
    assert info.value.code == "invalid_api_key"
    assert "sk-wro" in info.value.message and "sk-wrong-key-000" not in info.value.message


async def test_models_and_not_found(client: AsyncOpenAI) -> None:
    ids = [m.id async for m in client.models.list()]
    assert "gpt-4o-mini" in ids
    model = await client.models.retrieve("gpt-4o-mini")
    assert (model.id, model.object, model.owned_by) == ("gpt-4o-mini", "model", "system")
    with pytest.raises(openai.NotFoundError) as info:
        await client.models.retrieve("no-such-model")
    assert info.value.code == "model_not_found"


async def test_bad_requests(fake: RunningFake, client: AsyncOpenAI) -> None:
    with pytest.raises(openai.BadRequestError) as unknown:
        await client.chat.completions.create(
            model="gpt-4o-mini",
            messages=MESSAGES,
            extra_body={"not_a_param": 1},
        )
    assert unknown.value.param == "not_a_param"
    prefill: list[ChatCompletionMessageParam] = [*MESSAGES, {"role": "assistant", "content": "The"}]
    assert await client.chat.completions.create(model="gpt-4o-mini", messages=prefill)
    await fake.control(reject_prefill=True)
    with pytest.raises(openai.BadRequestError) as refused:
        await client.chat.completions.create(model="gpt-4o-mini", messages=prefill)
    assert refused.value.param == "messages"
