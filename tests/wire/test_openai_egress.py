"""Neutral requests -> OpenAI Chat Completions and Embeddings bodies."""

from __future__ import annotations

from typing import Any

import pytest

from headway.types import (
    ChatRequest,
    EmbedRequest,
    ImagePart,
    Message,
    TextPart,
    ToolCall,
    ToolSpec,
)
from headway.wire.openai.egress import (
    CHAT_PATH,
    OpenAIOptions,
    OpenAIWire,
    chat_body,
    embed_body,
    max_tokens_param_for,
)

OPTS = OpenAIOptions()


def body(**kw: Any) -> dict[str, Any]:
    kw.setdefault("messages", (Message("user", "hi"),))
    return chat_body(ChatRequest(model="alias", **kw), "gpt-4o", OPTS)


def test_minimal_body_uses_the_upstream_model_id() -> None:
    assert body() == {"model": "gpt-4o", "messages": [{"role": "user", "content": "hi"}]}


def test_image_parts_and_details() -> None:
    parts = (
        TextPart("What is this?"),
        ImagePart(url="https://example.com/cat.png", detail="low"),
        ImagePart(url="", media_type="image/png", data="iVBOR"),
    )
    out = body(messages=(Message("user", parts),))
    assert out["messages"][0]["content"] == [
        {"type": "text", "text": "What is this?"},
        {"type": "image_url", "image_url": {"url": "https://example.com/cat.png", "detail": "low"}},
        {"type": "image_url", "image_url": {"url": "data:image/png;base64,iVBOR"}},
    ]


def test_tool_turns_round_trip_the_openai_shapes() -> None:
    messages = (
        Message("user", "weather?"),
        Message(
            "assistant", None, tool_calls=(ToolCall("call_1", "get_weather", '{"city":"Paris"}'),)
        ),
        Message("tool", '{"temp_c": 18}', tool_call_id="call_1"),
    )
    out = body(messages=messages)["messages"]
    assert out[1] == {
        "role": "assistant",
        "content": None,
        "tool_calls": [
            {
                "id": "call_1",
                "type": "function",
                "function": {"name": "get_weather", "arguments": '{"city":"Paris"}'},
            }
        ],
    }
    assert out[2] == {"role": "tool", "content": '{"temp_c": 18}', "tool_call_id": "call_1"}


def test_system_parts_are_joined_to_text_and_names_are_kept() -> None:
    out = body(
        messages=(
            Message("system", (TextPart("a"), TextPart("b"))),
            Message("user", "x", name="bob"),
        )
    )
    assert out["messages"][0] == {"role": "system", "content": "ab"}
    assert out["messages"][1]["name"] == "bob"


def test_tools_choice_and_parallel_calls() -> None:
    tools = (
        ToolSpec("f", "does f", {"type": "object", "properties": {}}, strict=True),
        ToolSpec("g"),
    )
    out = body(tools=tools, tool_choice="required", parallel_tool_calls=False)
    assert out["tools"][0] == {
        "type": "function",
        "function": {
            "name": "f",
            "description": "does f",
            "parameters": {"type": "object", "properties": {}},
            "strict": True,
        },
    }
    assert out["tools"][1]["function"]["parameters"] == {"type": "object", "properties": {}}
    assert out["tool_choice"] == "required"
    assert out["parallel_tool_calls"] is False
    assert body(tools=tools, tool_choice="g")["tool_choice"] == {
        "type": "function",
        "function": {"name": "g"},
    }


def test_tool_choice_without_tools_is_not_sent() -> None:
    out = body(tool_choice="auto", parallel_tool_calls=True)
    assert "tool_choice" not in out and "parallel_tool_calls" not in out


def test_sampling_and_passthrough_fields() -> None:
    out = body(
        temperature=0.2,
        top_p=0.9,
        stop=("END",),
        response_format={"type": "json_object"},
        seed=7,
        n=2,
        user="u1",
        extra={"reasoning_effort": "low", "model": "hijack", "top_k": 5},
    )
    assert out["temperature"] == 0.2 and out["top_p"] == 0.9
    assert out["stop"] == ["END"]
    assert out["response_format"] == {"type": "json_object"}
    assert (out["seed"], out["n"], out["user"]) == (7, 2, "u1")
    assert out["reasoning_effort"] == "low" and out["top_k"] == 5
    assert out["model"] == "gpt-4o"  # extra never overrides what headway sets


def test_metadata_only_travels_with_store() -> None:
    assert "metadata" not in body(metadata={"task": "qa"})
    out = body(metadata={"task": "qa"}, extra={"store": True})
    assert out["metadata"] == {"task": "qa"} and out["store"] is True


def test_streams_always_ask_for_usage() -> None:
    out = body(
        stream=True, include_usage=False, extra={"stream_options": {"include_obfuscation": False}}
    )
    assert out["stream"] is True
    assert out["stream_options"] == {"include_obfuscation": False, "include_usage": True}
    assert "stream" not in body()


@pytest.mark.parametrize(
    ("model", "field"),
    [
        ("gpt-4o", "max_tokens"),
        ("gpt-4.1-mini", "max_tokens"),
        ("o3-mini", "max_completion_tokens"),
        ("o1", "max_completion_tokens"),
        ("gpt-5-nano", "max_completion_tokens"),
        ("openai/gpt-5", "max_completion_tokens"),
        ("llama3.2", "max_tokens"),
    ],
)
def test_output_cap_field_by_model_family(model: str, field: str) -> None:
    assert max_tokens_param_for(model) == field
    out = chat_body(ChatRequest(model="a", messages=(), max_tokens=9), model, OPTS)
    assert out[field] == 9


def test_output_cap_field_by_option_and_from_extra() -> None:
    opts = OpenAIOptions(max_tokens_param="max_completion_tokens")
    out = chat_body(ChatRequest(model="a", messages=(), max_tokens=9), "my-azure-dep", opts)
    assert out == {"model": "my-azure-dep", "messages": [], "max_completion_tokens": 9}
    req = ChatRequest(model="a", messages=(), extra={"max_completion_tokens": 4})
    assert chat_body(req, "gpt-4o", OPTS) == {"model": "gpt-4o", "messages": [], "max_tokens": 4}


def test_developer_role_can_be_mapped_to_system() -> None:
    req = ChatRequest(model="a", messages=(Message("developer", "be brief"),))
    assert chat_body(req, "m", OPTS)["messages"][0]["role"] == "developer"
    mapped = chat_body(req, "m", OpenAIOptions(developer_role=False))
    assert mapped["messages"][0]["role"] == "system"


def test_embeddings_body() -> None:
    req = EmbedRequest(model="e", inputs=("a", "b"), dimensions=256, user="u")
    assert embed_body(req, "text-embedding-3-small", OPTS) == {
        "model": "text-embedding-3-small",
        "input": ["a", "b"],
        "encoding_format": "base64",
        "dimensions": 256,
        "user": "u",
    }
    tokens = EmbedRequest(model="e", inputs=((1, 2), (3,)))
    out = embed_body(tokens, "m", OpenAIOptions(embedding_encoding="float"))
    assert out == {"model": "m", "input": [[1, 2], [3]], "encoding_format": "float"}


def test_wire_format_calls() -> None:
    wire = OpenAIWire()
    call = wire.chat_call(ChatRequest(model="a", messages=(Message("user", "x"),)), "gpt-4o")
    assert (call.method, call.path, call.query) == ("POST", CHAT_PATH, {})
    assert call.body is not None and call.body["model"] == "gpt-4o"
    assert wire.embed_call(EmbedRequest(model="e", inputs=("x",)), "m").path == "/embeddings"


def test_vendor_only_extras_from_other_ingresses_never_reach_openai() -> None:
    from headway.types import ChatRequest, Message
    from headway.wire.openai.egress import chat_body

    request = ChatRequest(
        model="m",
        messages=(Message("user", "hi"),),
        extra={"anthropic": {"top_k": 5}, "gemini": {"x": 1}, "reasoning_effort": "low"},
    )
    body = chat_body(request, "gpt-4o", OPTS)
    assert "anthropic" not in body and "gemini" not in body
    assert body["reasoning_effort"] == "low"
