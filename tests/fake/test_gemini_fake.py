"""The Gemini fake, checked with the official `google-genai` SDK as its client (providers.md 5, 11)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import orjson
import pytest
from google import genai
from google.genai import errors, types

from headway.providers.fake import RunningFake, running_fake

KEY = "AIza-test"
MODEL = "gemini-2.5-flash"
WEATHER = types.Tool(
    function_declarations=[
        types.FunctionDeclaration(
            name="get_weather",
            description="Current weather",
            parameters_json_schema={
                "type": "object",
                "properties": {"city": {"type": "string"}},
                "required": ["city"],
            },
        )
    ]
)


@pytest.fixture
async def fake() -> AsyncIterator[RunningFake]:
    async with running_fake("gemini", api_key=KEY) as running:
        yield running


def client_for(fake: RunningFake, key: str = KEY) -> genai.Client:
    return genai.Client(api_key=key, http_options=types.HttpOptions(base_url=fake.root_url))


@pytest.fixture
def client(fake: RunningFake) -> genai.Client:
    return client_for(fake)


async def raw(
    fake: RunningFake, path: str, body: dict[str, Any], **query: str
) -> tuple[int, dict[str, str], bytes]:
    async with (
        aiohttp.ClientSession() as s,
        s.post(fake.root_url + path, json=body, params=query) as resp,
    ):
        return resp.status, dict(resp.headers), await resp.read()


async def test_generate_content(client: genai.Client) -> None:
    resp = await client.aio.models.generate_content(
        model=MODEL,
        contents="hello sim:tokens=7",
        config=types.GenerateContentConfig(system_instruction="Be terse.", max_output_tokens=100),
    )
    assert resp.text and len(resp.text.split()) >= 1
    assert resp.candidates and resp.candidates[0].finish_reason == types.FinishReason.STOP
    usage = resp.usage_metadata
    assert usage is not None and usage.prompt_token_count and usage.candidates_token_count == 7
    assert usage.total_token_count == usage.prompt_token_count + 7
    assert resp.model_version == MODEL and resp.response_id


async def test_max_tokens_finish(client: genai.Client) -> None:
    resp = await client.aio.models.generate_content(
        model=MODEL,
        contents="hello sim:tokens=50",
        config=types.GenerateContentConfig(max_output_tokens=5),
    )
    assert resp.candidates and resp.candidates[0].finish_reason == types.FinishReason.MAX_TOKENS


async def test_stream_cumulative_usage_and_finish_last(client: genai.Client) -> None:
    chunks = [
        c
        async for c in await client.aio.models.generate_content_stream(
            model=MODEL, contents="hi sim:tokens=6"
        )
    ]
    assert "".join(c.text or "" for c in chunks).strip()
    counts = [c.usage_metadata.candidates_token_count or 0 for c in chunks if c.usage_metadata]
    assert counts == sorted(counts) and counts[-1] == 6
    finishes = [c.candidates[0].finish_reason for c in chunks if c.candidates]
    assert finishes[-1] == types.FinishReason.STOP and all(f is None for f in finishes[:-1])


async def test_stream_wire_is_sse_without_done(fake: RunningFake) -> None:
    body = {"contents": [{"role": "user", "parts": [{"text": "hi sim:tokens=3"}]}]}
    status, headers, data = await raw(
        fake, f"/v1beta/models/{MODEL}:streamGenerateContent", body, alt="sse", key=KEY
    )
    assert status == 200 and headers["Content-Type"].startswith("text/event-stream")
    events = [e for e in data.decode().replace("\r\n", "\n").split("\n\n") if e]
    assert (
        all(e.startswith("data: ") for e in events)
        and b"[DONE]" not in data
        and b"event:" not in data
    )
    last = orjson.loads(events[-1][6:])
    assert last["candidates"][0]["finishReason"] == "STOP"
    status, _, data = await raw(
        fake, f"/v1beta/models/{MODEL}:streamGenerateContent", body, key=KEY
    )
    array = orjson.loads(data)  # without alt=sse: one JSON array
    assert (
        status == 200
        and isinstance(array, list)
        and array[-1]["candidates"][0]["finishReason"] == "STOP"
    )


async def test_function_call_round_trip(client: genai.Client) -> None:
    config = types.GenerateContentConfig(
        tools=[WEATHER],
        tool_config=types.ToolConfig(
            function_calling_config=types.FunctionCallingConfig(
                mode=types.FunctionCallingConfigMode.ANY
            )
        ),
    )
    first = await client.aio.models.generate_content(
        model=MODEL, contents="weather in Paris?", config=config
    )
    calls = first.function_calls
    assert calls and calls[0].name == "get_weather" and calls[0].id is None
    assert isinstance(calls[0].args, dict) and "city" in calls[0].args
    assert first.candidates and first.candidates[0].finish_reason == types.FinishReason.STOP
    history = [
        types.Content(role="user", parts=[types.Part(text="weather in Paris?")]),
        first.candidates[0].content,
        types.Content(
            role="user",
            parts=[types.Part.from_function_response(name="get_weather", response={"temp_c": 18})],
        ),
    ]
    second = await client.aio.models.generate_content(
        model=MODEL,
        contents=history,
        config=types.GenerateContentConfig(tools=[WEATHER]),
    )
    assert second.text and not second.function_calls


async def test_streamed_function_call_arrives_whole(client: genai.Client) -> None:
    config = types.GenerateContentConfig(
        tools=[WEATHER],
        tool_config=types.ToolConfig(
            function_calling_config=types.FunctionCallingConfig(
                mode=types.FunctionCallingConfigMode.ANY
            )
        ),
    )
    chunks = [
        c
        async for c in await client.aio.models.generate_content_stream(
            model=MODEL, contents="weather?", config=config
        )
    ]
    calls = [call for c in chunks for call in c.function_calls or ()]
    assert len(calls) == 1 and calls[0].name == "get_weather" and "city" in (calls[0].args or {})


async def test_bad_key_and_missing_key(fake: RunningFake) -> None:
    with pytest.raises(errors.ClientError) as info:
        await client_for(fake, "wrong").aio.models.generate_content(model=MODEL, contents="x")
    assert info.value.code == 400 and info.value.status == "INVALID_ARGUMENT"
    assert "API_KEY_INVALID" in orjson.dumps(info.value.details).decode()
    body = {"contents": [{"parts": [{"text": "x"}]}]}
    status, _, data = await raw(fake, f"/v1beta/models/{MODEL}:generateContent", body)
    assert status == 403 and b"PERMISSION_DENIED" in data
    status, _, _ = await raw(fake, f"/v1beta/models/{MODEL}:generateContent", body, key=KEY)
    assert status == 200  # the key as a query parameter works too


async def test_resource_exhausted_with_retry_info(fake: RunningFake, client: genai.Client) -> None:
    await fake.control(rpm=1)
    await client.aio.models.generate_content(model=MODEL, contents="x")
    with pytest.raises(errors.ClientError) as info:
        await client.aio.models.generate_content(model=MODEL, contents="x")
    assert info.value.code == 429 and info.value.status == "RESOURCE_EXHAUSTED"
    details = info.value.details["error"]["details"]
    kinds = [d["@type"].rsplit(".", 1)[-1] for d in details]
    assert kinds == ["QuotaFailure", "Help", "RetryInfo"]
    assert details[-1]["retryDelay"].endswith("s")
    status, headers, _ = await raw(
        fake,
        f"/v1beta/models/{MODEL}:generateContent",
        {"contents": [{"parts": [{"text": "x"}]}]},
        key=KEY,
    )
    assert status == 429 and "retry-after" not in {k.lower() for k in headers}


@pytest.mark.parametrize(
    ("status", "rpc", "cls"),
    [
        (500, "INTERNAL", errors.ServerError),
        (503, "UNAVAILABLE", errors.ServerError),
        (404, "NOT_FOUND", errors.ClientError),
    ],
)
async def test_injected_errors(
    fake: RunningFake, client: genai.Client, status: int, rpc: str, cls: type[errors.APIError]
) -> None:
    await fake.control(error_rate=1.0, error_status=status)
    with pytest.raises(cls) as info:
        await client.aio.models.generate_content(model=MODEL, contents="x")
    assert info.value.code == status and info.value.status == rpc


async def test_blocked_prompt_is_200_with_feedback(client: genai.Client) -> None:
    resp = await client.aio.models.generate_content(model=MODEL, contents="something sim:block")
    assert not resp.candidates
    assert resp.prompt_feedback and resp.prompt_feedback.block_reason == types.BlockedReason.SAFETY


async def test_in_band_stream_error(fake: RunningFake, client: genai.Client) -> None:
    await fake.control(error_after_tokens=2)
    with pytest.raises(errors.APIError) as info:
        async for _ in await client.aio.models.generate_content_stream(
            model=MODEL, contents="x sim:tokens=8"
        ):
            pass
    assert info.value.code == 500


async def test_embeddings_and_count_tokens(client: genai.Client) -> None:
    one = await client.aio.models.embed_content(
        model="gemini-embedding-001",
        contents="hello",
        config=types.EmbedContentConfig(output_dimensionality=64),
    )
    assert one.embeddings and len(one.embeddings) == 1 and len(one.embeddings[0].values or []) == 64
    many = await client.aio.models.embed_content(
        model="gemini-embedding-001", contents=["a", "b", "c"]
    )
    assert many.embeddings and len(many.embeddings) == 3
    counted = await client.aio.models.count_tokens(model=MODEL, contents="hello there")
    made = await client.aio.models.generate_content(model=MODEL, contents="hello there")
    assert counted.total_tokens and made.usage_metadata
    assert counted.total_tokens == made.usage_metadata.prompt_token_count


async def test_models_list_and_get(client: genai.Client) -> None:
    names = [m.name async for m in await client.aio.models.list()]
    assert f"models/{MODEL}" in names
    got = await client.aio.models.get(model=MODEL)
    assert got.name == f"models/{MODEL}" and got.input_token_limit
