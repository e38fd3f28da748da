"""`POST /v1/messages` on the real server, with the official `anthropic` SDK as the client."""

from __future__ import annotations

from pathlib import Path

import aiohttp
import anthropic
import orjson
import pytest
from anthropic.types import MessageParam

from headway.errors import HeadwayError, InvalidRequest, UpstreamOverloaded, UpstreamRateLimited
from headway.types import ToolCall
from tests.server.helpers import Scripted, fails, running, scripted_gateway, sim_gateway

USER: list[MessageParam] = [{"role": "user", "content": "Say hello."}]


def client(base: str, key: str = "sk-test") -> anthropic.AsyncAnthropic:
    return anthropic.AsyncAnthropic(base_url=base, api_key=key, max_retries=0)


async def post(
    base: str, path: str, body: dict[str, object]
) -> tuple[int, dict[str, object], dict[str, str]]:
    async with aiohttp.ClientSession() as s, s.post(base + path, json=body) as resp:
        return resp.status, orjson.loads(await resp.read()), dict(resp.headers)


async def test_message_through_the_sim(tmp_path: Path) -> None:
    async with running(sim_gateway(tmp_path)) as base, client(base) as c:
        raw = await c.messages.with_raw_response.create(
            model="default", max_tokens=300, messages=USER
        )
        msg = await raw.parse()
    assert msg.type == "message" and msg.role == "assistant" and msg.model == "default"
    assert msg.id.startswith("msg_")
    assert msg.content[0].type == "text" and msg.content[0].text
    assert msg.stop_reason in ("end_turn", "max_tokens")
    assert msg.usage.input_tokens > 0 and msg.usage.output_tokens > 0
    assert raw.headers["request-id"].startswith("req_")
    assert raw.headers["x-headway-route"] == "default"


async def test_stream_through_the_sim(tmp_path: Path) -> None:
    async with (
        running(sim_gateway(tmp_path)) as base,
        client(base) as c,
        c.messages.stream(model="default", max_tokens=300, messages=USER) as stream,
    ):
        texts = [t async for t in stream.text_stream]
        final = await stream.get_final_message()
    assert len(texts) > 1
    assert final.content[0].type == "text" and final.content[0].text == "".join(texts)
    assert final.usage.output_tokens > 0 and final.usage.input_tokens > 0
    assert final.stop_reason in ("end_turn", "max_tokens")


async def test_scripted_usage_and_cache_split() -> None:
    async with running(scripted_gateway()) as base, client(base) as c:
        msg = await c.messages.create(model="m", max_tokens=10, messages=USER)
    assert msg.content[0].type == "text" and msg.content[0].text == "Hello there!"
    assert (msg.usage.input_tokens, msg.usage.cache_read_input_tokens, msg.usage.output_tokens) == (
        5,
        2,
        3,
    )


async def test_tool_use_plain_and_streamed() -> None:
    call = ToolCall("call_7", "get_weather", '{"city": "Paris"}')
    async with running(scripted_gateway(Scripted("m", tool_call=call))) as base, client(base) as c:
        msg = await c.messages.create(model="m", max_tokens=10, messages=USER)
        async with c.messages.stream(model="m", max_tokens=10, messages=USER) as stream:
            final = await stream.get_final_message()
    for message in (msg, final):
        block = message.content[0]
        assert block.type == "tool_use" and block.id == "call_7" and block.name == "get_weather"
        assert block.input == {"city": "Paris"}
        assert message.stop_reason == "tool_use"


async def test_missing_max_tokens_is_400_in_anthropic_shape() -> None:
    async with running(scripted_gateway()) as base:
        status, body, headers = await post(base, "/v1/messages", {"model": "m", "messages": USER})
    assert status == 400
    assert body["type"] == "error"
    assert body["error"] == {
        "type": "invalid_request_error",
        "message": "max_tokens: Field required",
    }
    assert body["request_id"] == headers["request-id"]


@pytest.mark.parametrize(
    ("err", "cls", "status", "etype"),
    [
        (UpstreamOverloaded("Overloaded"), anthropic.OverloadedError, 529, "overloaded_error"),
        (
            UpstreamRateLimited("slow down", retry_after=2.5),
            anthropic.RateLimitError,
            429,
            "rate_limit_error",
        ),
        (
            InvalidRequest("bad thing", param="messages"),
            anthropic.BadRequestError,
            400,
            "invalid_request_error",
        ),
    ],
)
async def test_errors_in_caller_format(
    err: HeadwayError, cls: type[anthropic.APIStatusError], status: int, etype: str
) -> None:
    async with running(scripted_gateway(fails(err))) as base, client(base) as c:
        with pytest.raises(cls) as info:
            await c.messages.create(model="solo", max_tokens=10, messages=USER)
    exc = info.value
    assert exc.status_code == status
    assert exc.body["type"] == "error" and exc.body["error"]["type"] == etype  # type: ignore[index]
    assert exc.request_id and exc.request_id.startswith("req_")
    if status == 429:
        assert exc.response.headers["retry-after"] == "3"


async def test_error_mid_stream_is_an_error_event() -> None:
    scripted = Scripted("m", fail_after=UpstreamOverloaded("Overloaded"), fail_at=1)
    async with running(scripted_gateway(scripted)) as base, client(base) as c:
        with pytest.raises(anthropic.APIStatusError) as info:
            async with c.messages.stream(model="solo", max_tokens=10, messages=USER) as stream:
                async for _ in stream.text_stream:
                    pass
    assert info.value.status_code == 200
    assert info.value.body["error"]["type"] == "overloaded_error"  # type: ignore[index]


async def test_count_tokens_and_auth_with_either_header() -> None:
    async with running(scripted_gateway(master_key="sk-master")) as base:
        async with client(base, "sk-master") as c:
            counted = await c.messages.count_tokens(model="m", messages=USER)
        async with anthropic.AsyncAnthropic(
            base_url=base, auth_token="sk-master", max_retries=0
        ) as c:
            msg = await c.messages.create(model="m", max_tokens=5, messages=USER)
        async with client(base, "wrong") as c:
            with pytest.raises(anthropic.AuthenticationError) as info:
                await c.messages.create(model="m", max_tokens=5, messages=USER)
    assert counted.input_tokens > 3
    assert msg.content
    assert info.value.body["error"]["type"] == "authentication_error"  # type: ignore[index]
