"""The Gemini fake's newer models sign their function calls and want the signature back
(providers.md 5.2), checked with the official `google-genai` SDK as the client."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from google import genai
from google.genai import errors, types

from headway.providers.fake import RunningFake, running_fake

KEY = "AIza-test"
NEWER = "gemini-3-flash"
WEATHER = types.Tool(
    function_declarations=[
        types.FunctionDeclaration(
            name="get_weather",
            parameters_json_schema={"type": "object", "properties": {"city": {"type": "string"}}},
        )
    ]
)
FORCED = types.GenerateContentConfig(
    tools=[WEATHER],
    tool_config=types.ToolConfig(
        function_calling_config=types.FunctionCallingConfig(
            mode=types.FunctionCallingConfigMode.ANY
        )
    ),
)
ASK = types.Content(role="user", parts=[types.Part(text="weather in Paris?")])


@pytest.fixture
async def fake() -> AsyncIterator[RunningFake]:
    async with running_fake("gemini", api_key=KEY) as running:
        yield running


@pytest.fixture
def client(fake: RunningFake) -> genai.Client:
    return genai.Client(api_key=KEY, http_options=types.HttpOptions(base_url=fake.root_url))


def answer(call: types.FunctionCall, part: types.Part | None = None) -> list[types.Content]:
    result = types.Part(
        function_response=types.FunctionResponse(id=call.id, name=call.name, response={"t": 18})
    )
    model = types.Content(role="model", parts=[part or types.Part(function_call=call)])
    return [ASK, model, types.Content(role="user", parts=[result])]


async def first_call(client: genai.Client, model: str = NEWER) -> types.Part:
    first = await client.aio.models.generate_content(model=model, contents=[ASK], config=FORCED)
    assert first.candidates and first.candidates[0].content and first.candidates[0].content.parts
    (part,) = first.candidates[0].content.parts
    return part


async def test_newer_model_signs_and_accepts_its_signature_back(client: genai.Client) -> None:
    part = await first_call(client)
    assert part.thought_signature and part.function_call and part.function_call.id
    second = await client.aio.models.generate_content(
        model=NEWER, contents=answer(part.function_call, part)
    )
    assert second.text  # the turn was accepted


async def test_streamed_call_is_signed(client: genai.Client) -> None:
    parts = [
        p
        async for c in await client.aio.models.generate_content_stream(
            model=NEWER, contents=[ASK], config=FORCED
        )
        for p in (
            c.candidates[0].content.parts or () if c.candidates and c.candidates[0].content else ()
        )
        if p.function_call
    ]
    assert len(parts) == 1 and parts[0].thought_signature


async def test_missing_signature_is_invalid_argument(client: genai.Client) -> None:
    part = await first_call(client)
    assert part.function_call
    with pytest.raises(errors.ClientError) as info:
        await client.aio.models.generate_content(model=NEWER, contents=answer(part.function_call))
    assert info.value.code == 400 and info.value.status == "INVALID_ARGUMENT"
    assert "missing a thought_signature" in (info.value.message or "")


async def test_altered_call_or_signature_is_corrupted(client: genai.Client) -> None:
    part = await first_call(client)
    assert part.function_call and part.thought_signature
    other = part.function_call.model_copy(update={"args": {"city": "Rome"}})
    for bad in (
        types.Part(function_call=other, thought_signature=part.thought_signature),
        types.Part(function_call=part.function_call, thought_signature=b"forged"),
    ):
        with pytest.raises(errors.ClientError) as info:
            await client.aio.models.generate_content(
                model=NEWER, contents=answer(part.function_call, bad)
            )
        assert info.value.code == 400 and "Corrupted thought signature" in (
            info.value.message or ""
        )


async def test_unknown_function_response_id_is_refused(client: genai.Client) -> None:
    part = await first_call(client)
    assert part.function_call
    stray = part.function_call.model_copy(update={"id": "not-issued"})
    contents = answer(part.function_call, part)
    contents[2] = answer(stray)[2]
    with pytest.raises(errors.ClientError) as info:
        await client.aio.models.generate_content(model=NEWER, contents=contents)
    assert info.value.code == 400 and "function_response.id" in (info.value.message or "")


async def test_older_model_neither_signs_nor_checks(client: genai.Client) -> None:
    part = await first_call(client, "gemini-2.5-flash")
    assert part.function_call and part.thought_signature is None and part.function_call.id is None
    second = await client.aio.models.generate_content(
        model="gemini-2.5-flash", contents=answer(part.function_call)
    )
    assert second.text
