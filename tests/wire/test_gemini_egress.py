"""Neutral requests -> Gemini generateContent / embedContent calls (providers.md 5.2, 6.3)."""

from __future__ import annotations

import pytest

from headway.errors import InvalidRequest
from headway.types import (
    ChatRequest,
    EmbedRequest,
    ImagePart,
    Message,
    TextPart,
    ToolCall,
    ToolSpec,
)
from headway.wire.gemini.egress import GeminiWire, clean_schema, generate_body

WIRE = GeminiWire()


def req(*messages: Message, **kw: object) -> ChatRequest:
    return ChatRequest(model="alias", messages=messages, **kw)  # type: ignore[arg-type]


def test_paths() -> None:
    call = WIRE.chat_call(req(Message("user", "hi")), "gemini-2.5-flash")
    assert (call.method, call.path, call.query) == (
        "POST",
        "/v1beta/models/gemini-2.5-flash:generateContent",
        {},
    )
    call = WIRE.chat_call(req(Message("user", "hi"), stream=True), "models/gemini-2.5-flash")
    assert call.path == "/v1beta/models/gemini-2.5-flash:streamGenerateContent"
    assert call.query == {"alt": "sse"}
    assert call.body == {"contents": [{"role": "user", "parts": [{"text": "hi"}]}]}


def test_system_instruction_and_generation_config() -> None:
    body = generate_body(
        req(
            Message("system", "Be terse."),
            Message("user", "hi"),
            Message("assistant", "Hello."),
            Message("user", "again"),
            max_tokens=64,
            temperature=1.5,
            top_p=0.9,
            stop=("END",),
            seed=7,
            n=2,
            extra={
                "top_k": 40,
                "gemini": {"safetySettings": [{"category": "X", "threshold": "BLOCK_NONE"}]},
            },
        )
    )
    assert body["systemInstruction"] == {"parts": [{"text": "Be terse."}]}
    assert [c["role"] for c in body["contents"]] == ["user", "model", "user"]
    assert body["generationConfig"] == {
        "temperature": 1.5,
        "topP": 0.9,
        "topK": 40,
        "maxOutputTokens": 64,
        "stopSequences": ["END"],
        "candidateCount": 2,
        "seed": 7,
    }
    assert body["safetySettings"][0]["threshold"] == "BLOCK_NONE"


def test_function_calls_and_responses_by_name() -> None:
    messages = (
        Message("user", "weather?"),
        Message(
            "assistant",
            "Checking.",
            tool_calls=(
                ToolCall("call_hw0011", "get_weather", '{"city":"Paris"}'),
                ToolCall("gem-id-7", "get_time", "{}"),
            ),
        ),
        Message("tool", '{"temp_c": 18}', tool_call_id="call_hw0011"),
        Message("tool", "noon", tool_call_id="gem-id-7"),
        Message("tool", "boom", tool_call_id="x", name="fallback_name", is_error=True),
    )
    body = generate_body(req(*messages))
    model_turn, results = body["contents"][1], body["contents"][2]
    assert model_turn == {
        "role": "model",
        "parts": [
            {"text": "Checking."},
            {"functionCall": {"name": "get_weather", "args": {"city": "Paris"}}},
            {"functionCall": {"name": "get_time", "args": {}, "id": "gem-id-7"}},
        ],
    }
    assert results == {
        "role": "user",
        "parts": [
            {"functionResponse": {"name": "get_weather", "response": {"temp_c": 18}}},
            {
                "functionResponse": {
                    "name": "get_time",
                    "response": {"result": "noon"},
                    "id": "gem-id-7",
                }
            },
            {
                "functionResponse": {
                    "name": "fallback_name",
                    "response": {"error": "boom"},
                    "id": "x",
                }
            },
        ],
    }


def test_tool_result_without_known_call_is_rejected() -> None:
    with pytest.raises(InvalidRequest) as info:
        generate_body(req(Message("user", "x"), Message("tool", "r", tool_call_id="nope")))
    assert info.value.param == "messages[1].tool_call_id"


@pytest.mark.parametrize(
    ("choice", "config"),
    [
        ("auto", {"mode": "AUTO"}),
        ("required", {"mode": "ANY"}),
        ("none", {"mode": "NONE"}),
        ("get_weather", {"mode": "ANY", "allowedFunctionNames": ["get_weather"]}),
    ],
)
def test_tools_and_tool_config(choice: str, config: dict[str, object]) -> None:
    schema = {
        "type": "object",
        "$schema": "http://json-schema.org/draft-07/schema#",
        "additionalProperties": False,
        "properties": {
            "city": {"type": ["string", "null"]},
            "additionalProperties": {"type": "integer"},
        },
        "required": ["city"],
    }
    body = generate_body(
        req(Message("user", "x"), tools=(ToolSpec("get_weather", "W", schema),), tool_choice=choice)
    )
    assert body["tools"] == [
        {
            "functionDeclarations": [
                {
                    "name": "get_weather",
                    "description": "W",
                    "parameters": {
                        "type": "object",
                        "properties": {
                            "city": {"type": "string", "nullable": True},
                            "additionalProperties": {"type": "integer"},
                        },
                        "required": ["city"],
                    },
                }
            ]
        }
    ]
    assert body["toolConfig"] == {"functionCallingConfig": config}


def test_clean_schema_recurses_into_items() -> None:
    schema = {
        "type": "array",
        "items": {"type": "object", "additionalProperties": True, "properties": {}},
    }
    assert clean_schema(schema) == {"type": "array", "items": {"type": "object", "properties": {}}}


def test_images_and_json_mode() -> None:
    parts = (
        TextPart("look"),
        ImagePart(url="data:image/png;base64,QUJD"),
        ImagePart(url="https://x.test/a.webp?sig=1"),
    )
    body = generate_body(req(Message("user", parts), response_format={"type": "json_object"}))
    assert body["contents"][0]["parts"] == [
        {"text": "look"},
        {"inlineData": {"mimeType": "image/png", "data": "QUJD"}},
        {"fileData": {"mimeType": "image/webp", "fileUri": "https://x.test/a.webp?sig=1"}},
    ]
    assert body["generationConfig"] == {"responseMimeType": "application/json"}
    schema_fmt = {"type": "json_schema", "json_schema": {"name": "A", "schema": {"type": "object"}}}
    body = generate_body(req(Message("user", "x"), response_format=schema_fmt))
    assert body["generationConfig"]["responseJsonSchema"] == {"type": "object"}


def test_embed_calls() -> None:
    one = WIRE.embed_call(
        EmbedRequest(model="e", inputs=("hello",), dimensions=256), "gemini-embedding-001"
    )
    assert one.path == "/v1beta/models/gemini-embedding-001:embedContent"
    assert one.body == {
        "model": "models/gemini-embedding-001",
        "content": {"parts": [{"text": "hello"}]},
        "outputDimensionality": 256,
    }
    many = WIRE.embed_call(EmbedRequest(model="e", inputs=("a", "b")), "gemini-embedding-001")
    assert many.path == "/v1beta/models/gemini-embedding-001:batchEmbedContents"
    assert many.body is not None
    assert [r["content"]["parts"][0]["text"] for r in many.body["requests"]] == ["a", "b"]
    with pytest.raises(InvalidRequest):
        WIRE.embed_call(EmbedRequest(model="e", inputs=((1, 2),)), "g")
