"""Neutral requests -> Anthropic `/v1/messages` bodies (providers.md 4.4, 6.3)."""

from __future__ import annotations

import pytest

from headway.errors import InvalidRequest
from headway.types import ChatRequest, ImagePart, Message, TextPart, ToolCall, ToolSpec
from headway.wire.anthropic.egress import AnthropicWire, messages_body


def req(*messages: Message, **kw: object) -> ChatRequest:
    return ChatRequest(model="alias", messages=messages, **kw)  # type: ignore[arg-type]


def test_call_shape_and_defaults() -> None:
    call = AnthropicWire(default_max_tokens=777).chat_call(
        req(Message("user", "hi"), stream=True), "claude-sonnet-4-5"
    )
    assert call.method == "POST" and call.path == "/v1/messages"
    assert call.headers == {}
    assert call.body == {
        "model": "claude-sonnet-4-5",
        "max_tokens": 777,
        "messages": [{"role": "user", "content": [{"type": "text", "text": "hi"}]}],
        "stream": True,
    }


def test_system_and_developer_concatenated_to_top_level() -> None:
    body = messages_body(
        req(Message("system", "A."), Message("developer", "B."), Message("user", "hi")), "m"
    )
    assert body["system"] == "A.\n\nB."
    assert [m["role"] for m in body["messages"]] == ["user"]


def test_sampling_parameters() -> None:
    body = messages_body(
        req(
            Message("user", "hi"),
            max_tokens=50,
            temperature=1.7,
            top_p=0.5,
            stop=("END",),
            user="u1",
            extra={"top_k": 3, "reasoning_effort": "high"},
        ),
        "m",
    )
    assert body["max_tokens"] == 50
    assert body["temperature"] == 1.0  # clamped to Anthropic's range
    assert body["top_p"] == 0.5 and body["top_k"] == 3
    assert body["stop_sequences"] == ["END"]
    assert body["metadata"] == {"user_id": "u1"}
    assert "reasoning_effort" not in body  # an OpenAI-only extra is not forwarded


def test_tool_conversation_merges_consecutive_tool_results() -> None:
    messages = (
        Message("user", "weather and time?"),
        Message(
            "assistant",
            None,
            tool_calls=(
                ToolCall("call_1", "get_weather", '{"city":"Paris"}'),
                ToolCall("call_2", "get_time", ""),
            ),
        ),
        Message("tool", "18C", tool_call_id="call_1"),
        Message("tool", "failed", tool_call_id="call_2", is_error=True),
        Message("user", "thanks"),
    )
    body = messages_body(req(*messages), "m")
    assert [m["role"] for m in body["messages"]] == ["user", "assistant", "user"]
    assert body["messages"][1]["content"] == [
        {"type": "tool_use", "id": "call_1", "name": "get_weather", "input": {"city": "Paris"}},
        {"type": "tool_use", "id": "call_2", "name": "get_time", "input": {}},
    ]
    assert body["messages"][2]["content"] == [
        {"type": "tool_result", "tool_use_id": "call_1", "content": "18C"},
        {"type": "tool_result", "tool_use_id": "call_2", "content": "failed", "is_error": True},
        {"type": "text", "text": "thanks"},
    ]


def test_invalid_tool_arguments_name_the_param() -> None:
    messages = (
        Message("user", "x"),
        Message("assistant", None, tool_calls=(ToolCall("c", "f", "{oops"),)),
    )
    with pytest.raises(InvalidRequest) as info:
        messages_body(req(*messages), "m")
    assert info.value.param == "messages[1].tool_calls[0].function.arguments"


def test_images() -> None:
    parts = (
        TextPart("look"),
        ImagePart(url="data:image/png;base64,QUJD"),
        ImagePart(url="https://x.test/a.jpg"),
        ImagePart(url="ignored", media_type="image/gif", data="R0lG"),
    )
    body = messages_body(req(Message("user", parts)), "m")
    assert body["messages"][0]["content"] == [
        {"type": "text", "text": "look"},
        {"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": "QUJD"}},
        {"type": "image", "source": {"type": "url", "url": "https://x.test/a.jpg"}},
        {"type": "image", "source": {"type": "base64", "media_type": "image/gif", "data": "R0lG"}},
    ]


@pytest.mark.parametrize(
    ("choice", "parallel", "expected"),
    [
        ("auto", None, {"type": "auto"}),
        ("required", None, {"type": "any"}),
        ("none", None, {"type": "none"}),
        ("get_weather", None, {"type": "tool", "name": "get_weather"}),
        (None, False, {"type": "auto", "disable_parallel_tool_use": True}),
        ("required", False, {"type": "any", "disable_parallel_tool_use": True}),
    ],
)
def test_tools_and_choice(
    choice: str | None, parallel: bool | None, expected: dict[str, object]
) -> None:
    tools = (
        ToolSpec("get_weather", "Weather", {"type": "object", "properties": {}}),
        ToolSpec("noop"),
    )
    body = messages_body(
        req(Message("user", "x"), tools=tools, tool_choice=choice, parallel_tool_calls=parallel),
        "m",
    )
    assert body["tools"] == [
        {
            "name": "get_weather",
            "description": "Weather",
            "input_schema": {"type": "object", "properties": {}},
        },
        {"name": "noop", "input_schema": {"type": "object", "properties": {}}},
    ]
    assert body["tool_choice"] == expected


def test_json_schema_and_passthrough() -> None:
    body = messages_body(
        req(
            Message("user", "x"),
            response_format={
                "type": "json_schema",
                "json_schema": {"name": "A", "schema": {"type": "object"}},
            },
            extra={"anthropic": {"thinking": {"type": "adaptive"}}},
        ),
        "m",
    )
    assert body["output_config"] == {
        "format": {"type": "json_schema", "schema": {"type": "object"}}
    }
    assert body["thinking"] == {"type": "adaptive"}


def test_n_greater_than_one_is_rejected() -> None:
    with pytest.raises(InvalidRequest) as info:
        messages_body(req(Message("user", "x"), n=2), "m")
    assert info.value.param == "n"


def test_empty_assistant_turn_is_dropped() -> None:
    body = messages_body(
        req(Message("user", "a"), Message("assistant", ""), Message("user", "b")), "m"
    )
    assert body["messages"] == [
        {"role": "user", "content": [{"type": "text", "text": "a"}, {"type": "text", "text": "b"}]}
    ]
