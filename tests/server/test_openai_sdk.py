"""The official `openai` SDK against the real server (headway's native HTTP server, loopback): the happy paths."""

from __future__ import annotations

import json
from pathlib import Path

import openai
import pytest
from openai.types.chat import ChatCompletionMessageParam, ChatCompletionToolParam

from headway.types import ImagePart, ToolCall
from tests.server.helpers import Scripted, running, scripted_gateway, sim_gateway

USER: list[ChatCompletionMessageParam] = [{"role": "user", "content": "Say hello."}]


def client(base: str, key: str = "sk-test") -> openai.AsyncOpenAI:
    return openai.AsyncOpenAI(base_url=f"{base}/v1", api_key=key, max_retries=0)


async def test_chat_completion_through_the_sim(tmp_path: Path) -> None:
    async with running(sim_gateway(tmp_path)) as base, client(base) as c:
        raw = await c.chat.completions.with_raw_response.create(model="default", messages=USER)
        reply = raw.parse()
    assert reply.object == "chat.completion"
    assert reply.model == "default"  # what the caller asked for, not the deployment
    assert reply.choices[0].message.role == "assistant"
    assert reply.choices[0].message.content
    assert reply.choices[0].finish_reason in ("stop", "length")
    usage = reply.usage
    assert usage is not None and usage.prompt_tokens > 0 and usage.completion_tokens > 0
    assert usage.total_tokens == usage.prompt_tokens + usage.completion_tokens
    assert raw.headers["x-request-id"].startswith("req_")
    assert raw.headers["x-headway-route"] == "default"
    assert raw.headers["x-headway-deployment"] == "sim-large"
    assert raw.headers["x-headway-fallback-depth"] == "0"
    assert float(raw.headers["x-headway-overhead-ms"]) >= 0


async def test_stream_without_include_usage_sends_no_usage(tmp_path: Path) -> None:
    async with running(sim_gateway(tmp_path)) as base, client(base) as c:
        stream = await c.chat.completions.create(model="default", messages=USER, stream=True)
        chunks = [chunk async for chunk in stream]
    assert chunks[0].choices[0].delta.role == "assistant"
    assert all(ch.usage is None for ch in chunks)
    assert all(len(ch.choices) == 1 for ch in chunks)
    assert chunks[-1].choices[0].finish_reason in ("stop", "length")
    assert all(ch.choices[0].finish_reason is None for ch in chunks[:-1])
    assert "".join(ch.choices[0].delta.content or "" for ch in chunks)
    assert len({ch.id for ch in chunks}) == 1 and {ch.model for ch in chunks} == {"default"}


async def test_stream_with_include_usage_ends_with_one_usage_chunk(tmp_path: Path) -> None:
    async with running(sim_gateway(tmp_path)) as base, client(base) as c:
        stream = await c.chat.completions.create(
            model="default",
            messages=USER,
            stream=True,
            stream_options={"include_usage": True},
            max_tokens=6,
        )
        chunks = [chunk async for chunk in stream]
    usage_chunks = [ch for ch in chunks if ch.usage is not None]
    assert len(usage_chunks) == 1 and usage_chunks[0] is chunks[-1]
    assert chunks[-1].choices == []
    assert chunks[-2].choices[0].finish_reason == "length"
    usage = chunks[-1].usage
    assert usage is not None and usage.completion_tokens == 6
    text = "".join(ch.choices[0].delta.content or "" for ch in chunks if ch.choices)
    assert text


async def test_embeddings_base64_by_default_and_float_on_request(tmp_path: Path) -> None:
    async with running(sim_gateway(tmp_path)) as base, client(base) as c:
        b64 = await c.embeddings.create(model="sim-embed", input=["red apple", "green pear"])
        floats = await c.embeddings.create(
            model="sim-embed", input=["red apple", "green pear"], encoding_format="float"
        )
    assert [d.index for d in b64.data] == [0, 1]
    assert len(b64.data[0].embedding) == 256
    assert b64.usage.prompt_tokens > 0
    for packed, plain in zip(b64.data, floats.data, strict=True):
        assert packed.embedding == pytest.approx(plain.embedding, rel=1e-6, abs=1e-7)
    assert b64.data[0].embedding != b64.data[1].embedding


async def test_models_list_and_retrieve(tmp_path: Path) -> None:
    async with running(sim_gateway(tmp_path)) as base, client(base) as c:
        page = await c.models.list()
        one = await c.models.retrieve("sim-small")
        with pytest.raises(openai.NotFoundError) as missing:
            await c.models.retrieve("gpt-17")
    ids = {m.id for m in page.data}
    assert {"default", "sim-large", "sim-small", "sim-embed"} <= ids
    assert one.id == "sim-small" and one.object == "model" and one.owned_by == "sim"
    assert missing.value.code == "model_not_found"


async def test_tool_calls_round_trip() -> None:
    call = ToolCall("call_1", "get_weather", '{"city": "Paris"}')
    gw = scripted_gateway(Scripted("m", tool_call=call))
    tools: list[ChatCompletionToolParam] = [
        {
            "type": "function",
            "function": {
                "name": "get_weather",
                "parameters": {"type": "object", "properties": {"city": {"type": "string"}}},
            },
        }
    ]
    async with running(gw) as base, client(base) as c:
        reply = await c.chat.completions.create(
            model="m",
            messages=USER,
            tools=tools,
            tool_choice="auto",
        )
        stream = await c.chat.completions.create(
            model="m",
            messages=USER,
            tools=tools,
            stream=True,
        )
        fragments = [
            tc
            for ch in [x async for x in stream]
            if ch.choices
            for tc in ch.choices[0].delta.tool_calls or []
        ]
    message = reply.choices[0].message
    assert reply.choices[0].finish_reason == "tool_calls" and message.content is None
    assert message.tool_calls is not None
    first = message.tool_calls[0]
    assert first.id == "call_1" and first.type == "function"
    assert first.function.name == "get_weather"
    assert json.loads(first.function.arguments) == {"city": "Paris"}
    assert fragments[0].id == "call_1" and fragments[0].function is not None
    assert fragments[0].function.name == "get_weather"
    assert all(f.id is None for f in fragments[1:])
    args = "".join(f.function.arguments or "" for f in fragments if f.function)
    assert json.loads(args) == {"city": "Paris"}


async def test_request_fields_reach_the_provider() -> None:
    provider = Scripted("m")
    image = "data:image/png;base64,iVBORw0KGgo="
    async with running(scripted_gateway(provider)) as base, client(base) as c:
        await c.chat.completions.create(
            model="m",
            messages=[
                {"role": "system", "content": "Be brief."},
                {
                    "role": "user",
                    "content": [
                        {"type": "text", "text": "What is this?"},
                        {"type": "image_url", "image_url": {"url": image, "detail": "low"}},
                    ],
                },
            ],
            max_completion_tokens=50,
            temperature=0.2,
            stop=["END"],
            user="alice",
            extra_body={"top_k": 5},
            extra_headers={"x-headway-timeout": "30"},
        )
    request = provider.last
    assert request is not None and provider.last_ctx is not None
    assert request.max_tokens == 50 and request.temperature == 0.2 and request.stop == ("END",)
    assert request.user == "alice" and request.extra == {"top_k": 5}
    parts = request.messages[1].content
    assert isinstance(parts, tuple) and isinstance(parts[1], ImagePart)
    assert parts[1].media_type == "image/png" and parts[1].data == "iVBORw0KGgo="
    assert provider.last_ctx.deadline is not None  # x-headway-timeout became the call's deadline
