"""Anthropic Messages bodies -> neutral ChatRequest, and the validation errors callers see."""

from __future__ import annotations

from typing import Any

import orjson
import pytest

from headway.errors import InvalidRequest
from headway.types import ImagePart, Message, TextPart, ToolCall
from headway.wire.anthropic.ingress import parse_messages_request


def body(**kw: Any) -> dict[str, Any]:
    base: dict[str, Any] = {
        "model": "claude-x",
        "max_tokens": 100,
        "messages": [{"role": "user", "content": "hi"}],
    }
    base.update(kw)
    return base


def test_plain_request() -> None:
    req = parse_messages_request(
        body(temperature=0.5, top_p=0.9, top_k=5, stop_sequences=["END"], stream=True)
    )
    assert req.model == "claude-x"
    assert req.max_tokens == 100
    assert req.messages == (Message(role="user", content="hi"),)
    assert req.temperature == 0.5 and req.top_p == 0.9
    assert req.stop == ("END",)
    assert req.stream is True and req.include_usage is True
    assert req.extra == {"anthropic": {"top_k": 5}}


@pytest.mark.parametrize(
    ("change", "param"),
    [
        ({"max_tokens": None}, "max_tokens"),
        ({"max_tokens": 0}, "max_tokens"),
        ({"max_tokens": "10"}, "max_tokens"),
        ({"model": None}, "model"),
        ({"messages": []}, "messages"),
        ({"temperature": 1.5}, "temperature"),
        ({"stream": "yes"}, "stream"),
        ({"stop_sequences": "END"}, "stop_sequences"),
        ({"tool_choice": {"type": "whatever"}}, "tool_choice.type"),
        ({"tool_choice": {"type": "tool"}}, "tool_choice.name"),
        ({"tools": [{"name": "f"}]}, "tools.0.input_schema"),
        ({"tools": [{"type": "web_search_20250305", "name": "w"}]}, "tools.0.type"),
        ({"messages": [{"role": "system", "content": "x"}]}, "messages.0.role"),
        (
            {"messages": [{"role": "user", "content": [{"type": "document"}]}]},
            "messages.0.content.0.type",
        ),
        (
            {"messages": [{"role": "user", "content": [{"type": "text"}]}]},
            "messages.0.content.0.text",
        ),
        (
            {"messages": [{"role": "user", "content": [{"type": "tool_result", "content": "x"}]}]},
            "messages.0.content.0.tool_use_id",
        ),
        ({"system": [{"type": "image"}]}, "system.0.type"),
    ],
)
def test_validation_names_the_param(change: dict[str, Any], param: str) -> None:
    raw = body()
    for key, value in change.items():
        if value is None:
            raw.pop(key)
        else:
            raw[key] = value
    with pytest.raises(InvalidRequest) as info:
        parse_messages_request(raw)
    assert info.value.param == param
    assert info.value.message.startswith(param)
    assert info.value.status == 400


def test_max_tokens_optional_for_count_tokens() -> None:
    raw = body()
    raw.pop("max_tokens")
    assert parse_messages_request(raw, require_max_tokens=False).max_tokens is None


def test_non_object_body() -> None:
    with pytest.raises(InvalidRequest):
        parse_messages_request([1, 2])


@pytest.mark.parametrize(
    ("system", "text"),
    [
        ("Be terse.", "Be terse."),
        (
            [
                {"type": "text", "text": "Be", "cache_control": {"type": "ephemeral"}},
                {"type": "text", "text": "terse."},
            ],
            "Be\nterse.",
        ),
    ],
)
def test_system_string_or_blocks(system: Any, text: str) -> None:
    req = parse_messages_request(body(system=system))
    assert req.messages[0] == Message(role="system", content=text)
    assert req.system_text() == text


def test_images_base64_and_url() -> None:
    content = [
        {"type": "text", "text": "look"},
        {"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": "QUJD"}},
        {"type": "image", "source": {"type": "url", "url": "https://x.test/cat.png"}},
    ]
    req = parse_messages_request(body(messages=[{"role": "user", "content": content}]))
    parts = req.messages[0].content
    assert isinstance(parts, tuple)
    assert parts[0] == TextPart("look")
    assert parts[1] == ImagePart(
        url="data:image/png;base64,QUJD", media_type="image/png", data="QUJD"
    )
    assert parts[2] == ImagePart(url="https://x.test/cat.png")


def test_tool_round_trip_messages() -> None:
    messages = [
        {"role": "user", "content": "weather?"},
        {
            "role": "assistant",
            "content": [
                {"type": "thinking", "thinking": "hmm", "signature": "s"},
                {"type": "text", "text": "Checking."},
                {
                    "type": "tool_use",
                    "id": "toolu_1",
                    "name": "get_weather",
                    "input": {"city": "Paris"},
                },
                {"type": "tool_use", "id": "toolu_2", "name": "get_time", "input": {}},
            ],
        },
        {
            "role": "user",
            "content": [
                {"type": "tool_result", "tool_use_id": "toolu_1", "content": "18C"},
                {
                    "type": "tool_result",
                    "tool_use_id": "toolu_2",
                    "content": [{"type": "text", "text": "noon"}],
                    "is_error": True,
                },
                {"type": "text", "text": "and tomorrow?"},
            ],
        },
    ]
    req = parse_messages_request(body(messages=messages))
    assert [m.role for m in req.messages] == ["user", "assistant", "tool", "tool", "user"]
    assistant = req.messages[1]
    assert assistant.content == "Checking."
    assert assistant.tool_calls == (
        ToolCall("toolu_1", "get_weather", '{"city":"Paris"}'),
        ToolCall("toolu_2", "get_time", "{}"),
    )
    assert orjson.loads(assistant.tool_calls[0].arguments) == {"city": "Paris"}
    assert req.messages[2] == Message(role="tool", content="18C", tool_call_id="toolu_1")
    assert req.messages[3].tool_call_id == "toolu_2" and req.messages[3].is_error
    assert req.messages[3].content == (TextPart("noon"),)
    assert req.messages[4].content == (TextPart("and tomorrow?"),)


def test_assistant_with_only_tool_use_has_no_content() -> None:
    messages = [
        {"role": "user", "content": "x"},
        {
            "role": "assistant",
            "content": [{"type": "tool_use", "id": "t", "name": "f", "input": {}}],
        },
    ]
    req = parse_messages_request(body(messages=messages))
    assert req.messages[1].content is None


@pytest.mark.parametrize(
    ("choice", "expected", "parallel"),
    [
        ({"type": "auto"}, "auto", None),
        ({"type": "any"}, "required", None),
        ({"type": "none"}, "none", None),
        ({"type": "tool", "name": "get_weather"}, "get_weather", None),
        ({"type": "auto", "disable_parallel_tool_use": True}, "auto", False),
    ],
)
def test_tool_choice(choice: dict[str, Any], expected: str, parallel: bool | None) -> None:
    tools = [{"name": "get_weather", "description": "w", "input_schema": {"type": "object"}}]
    req = parse_messages_request(body(tools=tools, tool_choice=choice))
    assert req.tool_choice == expected
    assert req.parallel_tool_calls is parallel
    assert req.tools[0].name == "get_weather"
    assert req.tools[0].parameters == {"type": "object"}
    assert req.tools[0].description == "w"


def test_metadata_user_and_passthrough() -> None:
    req = parse_messages_request(
        body(
            metadata={"user_id": "u-42"},
            thinking={"type": "enabled", "budget_tokens": 1024},
            output_config={"format": {"type": "json_schema", "schema": {"type": "object"}}},
        )
    )
    assert req.user == "u-42"
    assert req.extra["anthropic"] == {"thinking": {"type": "enabled", "budget_tokens": 1024}}
    assert req.response_format == {
        "type": "json_schema",
        "json_schema": {"name": "output", "schema": {"type": "object"}},
    }
