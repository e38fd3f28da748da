"""Parsing OpenAI-shaped bodies: everything providers.md 2.2-2.5 allows, and named rejections."""

from __future__ import annotations

from typing import Any

import pytest

from headway.errors import InvalidRequest
from headway.types import ChatRequest, ImagePart, Message, TextPart, ToolCall, ToolSpec
from headway.wire.openai.ingress import _number, parse_chat_request, parse_embed_request

USER = {"role": "user", "content": "hi"}


def body(**fields: Any) -> dict[str, Any]:
    return {"model": "gpt-4o", "messages": [USER], **fields}


def test_minimal_request() -> None:
    req = parse_chat_request(body())
    assert req.model == "gpt-4o" and req.messages == (Message("user", "hi"),)
    assert (req.max_tokens, req.stream, req.include_usage, req.n, req.extra) == (
        None,
        False,
        False,
        1,
        {},
    )


def test_full_conversation_with_tools_images_and_tool_results() -> None:
    messages = [
        {"role": "developer", "content": [{"type": "text", "text": "Be terse."}]},
        {
            "role": "user",
            "name": "ann",
            "content": [
                {"type": "text", "text": "Weather where this is?"},
                {
                    "type": "image_url",
                    "image_url": {"url": "https://x.test/a.png", "detail": "high"},
                },
                {"type": "image_url", "image_url": {"url": "data:image/jpeg;base64,/9j/4AAQ"}},
            ],
        },
        {
            "role": "assistant",
            "content": None,
            "tool_calls": [
                {
                    "id": "call_1",
                    "type": "function",
                    "function": {"name": "get_weather", "arguments": '{"city":"Paris"}'},
                }
            ],
        },
        {"role": "tool", "tool_call_id": "call_1", "content": '{"temp_c": 18}'},
    ]
    tools = [
        {
            "type": "function",
            "function": {
                "name": "get_weather",
                "description": "Current weather",
                "parameters": {"type": "object", "properties": {"city": {"type": "string"}}},
                "strict": True,
            },
        }
    ]
    req = parse_chat_request(
        body(
            messages=messages,
            tools=tools,
            tool_choice={"type": "function", "function": {"name": "get_weather"}},
            parallel_tool_calls=False,
        )
    )
    dev, user, assistant, tool = req.messages
    assert dev.role == "developer" and dev.content == (TextPart("Be terse."),)
    assert req.system_text() == "Be terse."
    assert isinstance(user.content, tuple) and user.name == "ann"
    assert user.content[1] == ImagePart(url="https://x.test/a.png", detail="high")
    image = user.content[2]
    assert isinstance(image, ImagePart)
    assert (image.media_type, image.data) == ("image/jpeg", "/9j/4AAQ")
    assert assistant.content is None
    assert assistant.tool_calls == (ToolCall("call_1", "get_weather", '{"city":"Paris"}'),)
    assert tool.tool_call_id == "call_1" and tool.content == '{"temp_c": 18}'
    assert req.tools == (
        ToolSpec("get_weather", "Current weather", tools[0]["function"]["parameters"], True),  # type: ignore[index]
    )
    assert req.tool_choice == "get_weather" and req.parallel_tool_calls is False


def test_sampling_fields_stream_options_and_pass_through() -> None:
    req = parse_chat_request(
        body(
            max_tokens=10,
            max_completion_tokens=20,
            temperature=0,
            top_p=0.5,
            stop="END",
            seed=7,
            n=2,
            user="u1",
            metadata={"team": "search"},
            response_format={"type": "json_schema", "json_schema": {"name": "A", "schema": {}}},
            stream=True,
            stream_options={"include_usage": True, "include_obfuscation": False},
            reasoning_effort="low",
            presence_penalty=0.5,
            logit_bias={"50256": -100},
            functions=[{"name": "legacy"}],
        )
    )
    assert req.max_tokens == 20  # max_completion_tokens is the current name and wins
    assert (req.temperature, req.top_p, req.stop, req.seed, req.n) == (0.0, 0.5, ("END",), 7, 2)
    assert req.user == "u1" and req.metadata == {"team": "search"}
    assert req.response_format is not None and req.response_format["type"] == "json_schema"
    assert req.stream and req.include_usage
    assert req.extra == {
        "reasoning_effort": "low",
        "presence_penalty": 0.5,
        "logit_bias": {"50256": -100},
        "functions": [{"name": "legacy"}],
    }


def test_include_usage_only_counts_when_streaming_and_nulls_mean_unset() -> None:
    req = parse_chat_request(body(stream_options={"include_usage": True}))
    assert not req.include_usage
    req = parse_chat_request(body(max_tokens=None, temperature=None, tools=None, stop=None))
    assert req.max_tokens is None and req.tools == () and req.stop == ()


@pytest.mark.parametrize(
    ("payload", "param", "words"),
    [
        ([], "body", "object"),
        ({"messages": [USER]}, "model", "Missing"),
        ({"model": 4, "messages": [USER]}, "model", "a string"),
        ({"model": "m"}, "messages", "Missing"),
        ({"model": "m", "messages": []}, "messages", "empty"),
        ({"model": "m", "messages": "hi"}, "messages", "an array"),
        (
            body(messages=[USER, USER, {"role": "robot", "content": "x"}]),
            "messages[2].role",
            "robot",
        ),
        (
            body(messages=[{"role": "function", "content": "x", "name": "f"}]),
            "messages[0].role",
            "function",
        ),
        (body(messages=[{"role": "user", "content": 5}]), "messages[0].content", "an integer"),
        (body(messages=[{"role": "user", "content": None}]), "messages[0].content", "null"),
        (body(messages=[{"role": "system"}]), "messages[0].content", "Missing"),
        (
            body(
                messages=[{"role": "user", "content": [{"type": "input_audio", "input_audio": {}}]}]
            ),
            "messages[0].content[0].type",
            "input_audio",
        ),
        (
            body(
                messages=[
                    {
                        "role": "system",
                        "content": [{"type": "image_url", "image_url": {"url": "x"}}],
                    }
                ]
            ),
            "messages[0].content[0].type",
            "not supported",
        ),
        (
            body(
                messages=[
                    {
                        "role": "user",
                        "content": [
                            {"type": "image_url", "image_url": {"url": "data:image/png,abc"}}
                        ],
                    }
                ]
            ),
            "messages[0].content[0].image_url.url",
            "base64",
        ),
        (
            body(
                messages=[
                    {
                        "role": "user",
                        "content": [
                            {"type": "image_url", "image_url": {"url": "u", "detail": "max"}}
                        ],
                    }
                ]
            ),
            "messages[0].content[0].image_url.detail",
            "auto",
        ),
        (body(messages=[{"role": "tool", "content": "x"}]), "messages[0].tool_call_id", "a string"),
        (
            body(
                messages=[
                    {
                        "role": "assistant",
                        "tool_calls": [{"id": "c", "function": {"name": "f", "arguments": {}}}],
                    }
                ]
            ),
            "messages[0].tool_calls[0].function.arguments",
            "a string",
        ),
        (body(max_tokens=0), "max_tokens", "minimum"),
        (body(max_tokens=1.5), "max_tokens", "an integer"),
        (body(max_completion_tokens=True), "max_completion_tokens", "a boolean"),
        (body(temperature=2.5), "temperature", "between 0 and 2"),
        (body(top_p="high"), "top_p", "a number"),
        (body(presence_penalty=-3), "presence_penalty", "between"),
        (body(n=0), "n", "minimum"),
        (body(stop=["a", "b", "c", "d", "e"]), "stop", "at most 4"),
        (body(stop=[1]), "stop[0]", "a string"),
        (body(stream="yes"), "stream", "a boolean"),
        (
            body(stream=True, stream_options={"include_usage": 1}),
            "stream_options.include_usage",
            "boolean",
        ),
        (body(tools={"type": "function"}), "tools", "an array"),
        (body(tools=[{"type": "retrieval"}]), "tools[0].type", "function"),
        (body(tools=[{"type": "function"}]), "tools[0].function", "an object"),
        (
            body(tools=[{"type": "function", "function": {"name": "x" * 65}}]),
            "tools[0].function.name",
            "64",
        ),
        (
            body(tools=[{"type": "function", "function": {"name": "f", "parameters": []}}]),
            "tools[0].function.parameters",
            "object",
        ),
        (body(tool_choice="always"), "tool_choice", "always"),
        (
            body(tool_choice={"type": "function", "function": {"name": "nope"}}),
            "tool_choice",
            "nope",
        ),
        (body(response_format={"type": "xml"}), "response_format.type", "json_schema"),
        (
            body(response_format={"type": "json_schema", "json_schema": {}}),
            "response_format.json_schema.name",
            "string",
        ),
        (body(metadata={"a": 1}), "metadata.a", "a string"),
        (body(user=["u"]), "user", "a string"),
    ],
)
def test_rejections_name_the_field(payload: Any, param: str, words: str) -> None:
    with pytest.raises(InvalidRequest) as exc:
        parse_chat_request(payload)
    assert exc.value.param == param
    assert words in exc.value.message
    assert exc.value.status == 400 and exc.value.openai_type == "invalid_request_error"


def test_embed_inputs_of_every_shape() -> None:
    assert parse_embed_request({"model": "e", "input": "hello"}).inputs == ("hello",)
    req = parse_embed_request(
        {
            "model": "e",
            "input": ["a", "b"],
            "encoding_format": "base64",
            "dimensions": 64,
            "user": "u",
        }
    )
    assert req.inputs == ("a", "b") and req.encoding_format == "base64"
    assert (req.dimensions, req.user) == (64, "u")
    assert parse_embed_request({"model": "e", "input": [1, 2, 3]}).inputs == ((1, 2, 3),)
    assert parse_embed_request({"model": "e", "input": [[1], [2, 3]]}).inputs == ((1,), (2, 3))
    assert parse_embed_request({"model": "e", "input": "x"}).encoding_format == "float"


@pytest.mark.parametrize(
    ("payload", "param"),
    [
        ({"input": "x"}, "model"),
        ({"model": "e"}, "input"),
        ({"model": "e", "input": []}, "input"),
        ({"model": "e", "input": ""}, "input"),
        ({"model": "e", "input": ["a", 1]}, "input"),
        ({"model": "e", "input": [[1, "a"]]}, "input[0][1]"),
        ({"model": "e", "input": "x", "encoding_format": "int8"}, "encoding_format"),
        ({"model": "e", "input": "x", "dimensions": 0}, "dimensions"),
    ],
)
def test_embed_rejections(payload: dict[str, Any], param: str) -> None:
    with pytest.raises(InvalidRequest) as exc:
        parse_embed_request(payload)
    assert exc.value.param == param


def test_every_field_lands_in_its_place() -> None:
    """The request is built positionally: each parsed field must be the one of its name."""
    fn = {"name": "f", "parameters": {"type": "object"}}
    got = parse_chat_request(
        body(
            max_tokens=5,
            temperature=1.5,
            top_p=0.25,
            stop=["a", "b"],
            tools=[{"type": "function", "function": fn}],
            tool_choice="required",
            parallel_tool_calls=False,
            response_format={"type": "json_object"},
            seed=3,
            n=4,
            user="u",
            metadata={"k": "v"},
            stream=True,
            stream_options={"include_usage": True},
            other=1,
        )
    )
    want = ChatRequest(
        model="gpt-4o",
        messages=(Message("user", "hi"),),
        max_tokens=5,
        temperature=1.5,
        top_p=0.25,
        stop=("a", "b"),
        tools=(ToolSpec("f", None, {"type": "object"}, None),),
        tool_choice="required",
        parallel_tool_calls=False,
        response_format={"type": "json_object"},
        seed=3,
        n=4,
        user="u",
        metadata={"k": "v"},
        stream=True,
        include_usage=True,
        extra={"other": 1},
    )
    assert got == want
    assert parse_chat_request(body()) == ChatRequest(
        model="gpt-4o", messages=(Message("user", "hi"),)
    )


@pytest.mark.parametrize("value", [0, 2, 1.5, 0.0, True, -0.1, 2.01, "1", None])
def test_temperature_shortcut_checks_as_number_does(value: object) -> None:
    want: object = None
    if value is not None:
        try:
            want = _number(value, "temperature", 0, 2)
        except InvalidRequest as exc:
            want = (exc.param, exc.message)
    try:
        got: object = parse_chat_request(body(temperature=value)).temperature
    except InvalidRequest as exc:
        got = (exc.param, exc.message)
    assert got == want
