"""The Anthropic fake, checked with the official `anthropic` SDK as its client (providers.md 4, 11)."""

from __future__ import annotations

import datetime as dt
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import anthropic
import pytest
from anthropic.types import ToolParam

from headway.providers.fake import RunningFake, running_fake

KEY = "sk-ant-test"
MODEL = "claude-sonnet-4-6"
WEATHER: ToolParam = {
    "name": "get_weather",
    "description": "Current weather",
    "input_schema": {
        "type": "object",
        "properties": {"city": {"type": "string"}},
        "required": ["city"],
    },
}


@pytest.fixture
async def fake() -> AsyncIterator[RunningFake]:
    async with running_fake("anthropic", api_key=KEY) as running:
        yield running


@pytest.fixture
async def client(fake: RunningFake) -> AsyncIterator[anthropic.AsyncAnthropic]:
    async with anthropic.AsyncAnthropic(base_url=fake.url, api_key=KEY, max_retries=0) as c:
        yield c


async def raw_post(
    fake: RunningFake, path: str, body: dict[str, Any], **headers: str
) -> tuple[int, dict[str, str], bytes]:
    base = {"x-api-key": KEY, "anthropic-version": "2023-06-01"}
    base.update({k.replace("_", "-"): v for k, v in headers.items()})
    async with (
        aiohttp.ClientSession() as s,
        s.post(fake.root_url + path, json=body, headers=base) as resp,
    ):
        return resp.status, dict(resp.headers), await resp.read()


async def test_create_message(client: anthropic.AsyncAnthropic) -> None:
    raw = await client.messages.with_raw_response.create(
        model=MODEL,
        max_tokens=512,
        system="Be terse.",
        messages=[{"role": "user", "content": "hello"}],
    )
    msg = await raw.parse()
    assert raw.headers["request-id"].startswith("req_")
    assert msg.id.startswith("msg_") and msg.type == "message" and msg.role == "assistant"
    assert msg.model == MODEL
    assert msg.stop_reason == "end_turn"
    assert msg.content[0].type == "text" and msg.content[0].text
    assert msg.usage.input_tokens > 0 and msg.usage.output_tokens > 0
    assert msg.usage.cache_read_input_tokens == 0


async def test_stream_with_helper(client: anthropic.AsyncAnthropic) -> None:
    async with client.messages.stream(
        model=MODEL, max_tokens=64, messages=[{"role": "user", "content": "hello sim:tokens=12"}]
    ) as stream:
        texts = [t async for t in stream.text_stream]
        final = await stream.get_final_message()
    assert len(texts) == 12
    assert final.content[0].type == "text" and final.content[0].text == "".join(texts)
    assert final.stop_reason == "end_turn"
    assert final.usage.output_tokens == 12 and final.usage.input_tokens > 0


async def test_stream_wire_has_event_names_and_pings(fake: RunningFake) -> None:
    body = {
        "model": MODEL,
        "max_tokens": 30,
        "stream": True,
        "messages": [{"role": "user", "content": "hi sim:tokens=25"}],
    }
    status, headers, data = await raw_post(fake, "/v1/messages", body)
    assert status == 200 and headers["Content-Type"].startswith("text/event-stream")
    frames = [f for f in data.decode().split("\n\n") if f]
    names = [f.split("\n")[0].removeprefix("event: ") for f in frames]
    assert names[0] == "message_start" and names[-2:] == ["message_delta", "message_stop"]
    assert "ping" in names
    assert all(f.split("\n")[1].startswith("data: ") for f in frames)


async def test_tool_round_trip(client: anthropic.AsyncAnthropic) -> None:
    first = await client.messages.create(
        model=MODEL,
        max_tokens=200,
        tools=[WEATHER],
        tool_choice={"type": "any"},
        messages=[{"role": "user", "content": "weather in Paris?"}],
    )
    assert first.stop_reason == "tool_use"
    call = next(b for b in first.content if b.type == "tool_use")
    assert call.id.startswith("toolu_") and call.name == "get_weather"
    assert isinstance(call.input, dict) and "city" in call.input
    second = await client.messages.create(
        model=MODEL,
        max_tokens=200,
        tools=[WEATHER],
        messages=[
            {"role": "user", "content": "weather in Paris?"},
            {"role": "assistant", "content": first.content},
            {
                "role": "user",
                "content": [{"type": "tool_result", "tool_use_id": call.id, "content": "18C"}],
            },
        ],
    )
    assert second.stop_reason == "end_turn" and second.content[0].type == "text"


async def test_streamed_tool_call_accumulates(client: anthropic.AsyncAnthropic) -> None:
    async with client.messages.stream(
        model=MODEL,
        max_tokens=200,
        tools=[WEATHER],
        tool_choice={"type": "tool", "name": "get_weather"},
        messages=[{"role": "user", "content": "weather?"}],
    ) as stream:
        final = await stream.get_final_message()
    block = final.content[0]
    assert block.type == "tool_use" and block.name == "get_weather"
    assert isinstance(block.input, dict) and isinstance(block.input["city"], str)
    assert final.stop_reason == "tool_use"


async def test_required_fields_and_version_header(fake: RunningFake) -> None:
    status, _, data = await raw_post(
        fake, "/v1/messages", {"model": MODEL, "messages": [{"role": "user", "content": "x"}]}
    )
    assert (
        status == 400 and b"max_tokens: Field required" in data and b"invalid_request_error" in data
    )
    body = {"model": MODEL, "max_tokens": 5, "messages": [{"role": "user", "content": "x"}]}
    status, headers, data = await raw_post(fake, "/v1/messages", body, anthropic_version="")
    assert status == 400 and b"anthropic-version" in data
    assert headers["request-id"].startswith("req_")


async def test_bearer_auth_accepted_and_bad_key_refused(fake: RunningFake) -> None:
    async with anthropic.AsyncAnthropic(base_url=fake.url, auth_token=KEY, max_retries=0) as c:
        msg = await c.messages.create(
            model=MODEL, max_tokens=5, messages=[{"role": "user", "content": "x"}]
        )
        assert msg.content
    async with anthropic.AsyncAnthropic(base_url=fake.url, api_key="wrong", max_retries=0) as c:
        with pytest.raises(anthropic.AuthenticationError) as info:
            await c.messages.create(
                model=MODEL, max_tokens=5, messages=[{"role": "user", "content": "x"}]
            )
    assert info.value.body["error"]["type"] == "authentication_error"  # type: ignore[index]


async def test_rate_limit_headers_and_429(
    fake: RunningFake, client: anthropic.AsyncAnthropic
) -> None:
    await fake.control(rpm=1, tpm=100_000)
    raw = await client.messages.with_raw_response.create(
        model=MODEL, max_tokens=5, messages=[{"role": "user", "content": "x"}]
    )
    assert raw.headers["anthropic-ratelimit-requests-limit"] == "1"
    assert raw.headers["anthropic-ratelimit-requests-remaining"] == "0"
    reset = dt.datetime.fromisoformat(
        raw.headers["anthropic-ratelimit-requests-reset"].replace("Z", "+00:00")
    )
    assert reset.tzinfo is not None
    for kind in ("tokens", "input-tokens", "output-tokens"):
        assert raw.headers[f"anthropic-ratelimit-{kind}-limit"] == "100000"
    with pytest.raises(anthropic.RateLimitError) as info:
        await client.messages.create(
            model=MODEL, max_tokens=5, messages=[{"role": "user", "content": "x"}]
        )
    assert info.value.status_code == 429
    assert info.value.body["error"]["type"] == "rate_limit_error"  # type: ignore[index]
    assert int(info.value.response.headers["retry-after"]) >= 1


@pytest.mark.parametrize(
    ("status", "cls", "etype"),
    [
        (529, anthropic.OverloadedError, "overloaded_error"),
        (500, anthropic.InternalServerError, "api_error"),
        (400, anthropic.BadRequestError, "invalid_request_error"),
        (403, anthropic.PermissionDeniedError, "permission_error"),
        (413, anthropic.APIStatusError, "request_too_large"),
    ],
)
async def test_injected_errors(
    fake: RunningFake,
    client: anthropic.AsyncAnthropic,
    status: int,
    cls: type[Exception],
    etype: str,
) -> None:
    await fake.control(error_rate=1.0, error_status=status)
    with pytest.raises(cls) as info:
        await client.messages.create(
            model=MODEL, max_tokens=5, messages=[{"role": "user", "content": "x"}]
        )
    err = info.value
    assert isinstance(err, anthropic.APIStatusError) and err.status_code == status
    assert err.body["type"] == "error" and err.body["error"]["type"] == etype  # type: ignore[index]
    assert err.request_id and err.request_id.startswith("req_")


async def test_error_event_mid_stream(fake: RunningFake, client: anthropic.AsyncAnthropic) -> None:
    await fake.control(error_after_tokens=3)
    with pytest.raises(anthropic.APIStatusError) as info:
        async with client.messages.stream(
            model=MODEL, max_tokens=50, messages=[{"role": "user", "content": "x sim:tokens=10"}]
        ) as stream:
            async for _ in stream.text_stream:
                pass
    assert info.value.status_code == 200
    assert info.value.body["error"]["type"] == "api_error"  # type: ignore[index]


async def test_count_tokens_and_models(client: anthropic.AsyncAnthropic) -> None:
    counted = await client.messages.count_tokens(
        model=MODEL, messages=[{"role": "user", "content": "hello there"}]
    )
    created = await client.messages.create(
        model=MODEL, max_tokens=5, messages=[{"role": "user", "content": "hello there"}]
    )
    assert counted.input_tokens == created.usage.input_tokens > 0
    page = await client.models.list()
    assert MODEL in [m.id for m in page.data]
    assert (await client.models.retrieve(MODEL)).id == MODEL
    with pytest.raises(anthropic.NotFoundError):
        await client.models.retrieve("claude-nope")


async def test_unknown_model_when_strict(
    fake: RunningFake, client: anthropic.AsyncAnthropic
) -> None:
    await fake.control(known_models_only=True)
    with pytest.raises(anthropic.NotFoundError) as info:
        await client.messages.create(
            model="claude-nope", max_tokens=5, messages=[{"role": "user", "content": "x"}]
        )
    assert info.value.body["error"]["type"] == "not_found_error"  # type: ignore[index]


async def test_stats_count_streams(fake: RunningFake, client: anthropic.AsyncAnthropic) -> None:
    await client.messages.create(
        model=MODEL, max_tokens=5, messages=[{"role": "user", "content": "x"}]
    )
    async with client.messages.stream(
        model=MODEL, max_tokens=5, messages=[{"role": "user", "content": "x"}]
    ) as s:
        await s.get_final_message()
    stats = await fake.stats()
    assert stats["by_endpoint"]["messages"] == 2
    assert stats["streamed"] == 1 and stats["non_streamed"] == 1
