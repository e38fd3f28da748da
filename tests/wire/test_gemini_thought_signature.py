"""Gemini thought signatures ride in tool-call ids to the caller and back (providers.md 5.2)."""

from __future__ import annotations

import re
from typing import Any

import orjson
import pytest

from headway.providers.base import SSEEvent
from headway.types import ChatRequest, Message, ToolCall
from headway.wire.gemini.decode import SYNTHETIC_ID_PREFIX
from headway.wire.gemini.egress import GeminiWire, generate_body
from headway.wire.gemini.signature import SEPARATOR, attach, clean, split

WIRE = GeminiWire()
#: what the API sends: standard base64 with `+`, `/` and `=` padding
SIGNATURE = "+vv8/f7/eA=="
ANTHROPIC_ID = re.compile(r"[a-zA-Z0-9_-]+")


@pytest.mark.parametrize(
    "signature",
    [
        SIGNATURE,
        "CiQB+/9zc2lnbmF0dXJlLWJ5dGVz/+Q=",
        "CiQB+/9z",
        "a",
        "already-url_safe",
        "sig with spaces é",
        "==",
    ],
)
@pytest.mark.parametrize("call_id", ["call_hw00ff", "gem-id-7", "toolu_01A"])
def test_round_trip(call_id: str, signature: str) -> None:
    carried = attach(call_id, signature)
    assert carried.startswith(call_id + SEPARATOR)
    assert ANTHROPIC_ID.fullmatch(carried)  # valid as an Anthropic tool_use id too
    assert split(carried) == (call_id, signature)
    assert clean(carried) == call_id


def test_standard_base64_costs_its_length_plus_six() -> None:
    carried = attach("call_hw00ff", SIGNATURE)
    assert carried == "call_hw00ff__tsb_-vv8_f7_eA"
    assert len(carried) <= len("call_hw00ff") + len(SIGNATURE) + 6


def test_no_signature_leaves_the_id_alone() -> None:
    assert attach("call_hw00ff", "") == "call_hw00ff"
    assert attach("", SIGNATURE) == ""
    assert split("call_hw00ff") == ("call_hw00ff", None)
    assert clean("toolu_01A") == "toolu_01A"


def test_an_id_holding_the_separator_is_not_given_a_signature() -> None:
    # it could not be split back into the same id
    assert attach("odd__tsb_id", SIGNATURE) == "odd__tsb_id"


@pytest.mark.parametrize(
    "call_id",
    [
        "x__ts",
        "x__tsb",
        "x__tsb_",
        "x__tsbxabcd",  # no `_` after the kind
        "__tsb_abcd",  # nothing before the separator
        "x__tsz_abcd",  # unknown kind
        "x__tsb_abcde",  # 5 characters: not base64
        "x__tsb_ab+c",  # not the URL-safe alphabet
        "x__tsb_ab=c",
        "x__tsu_____",  # decodes to bytes that are not UTF-8
        "x__tsu_gA",
        "x__tsb_\u00e9\u00e9\u00e9\u00e9",  # not ASCII
        "x" * 5000 + "__tsb_" + "!" * 10,
    ],
)
def test_malformed_ids_are_plain_ids(call_id: str) -> None:
    assert split(call_id) == (call_id, None)
    assert clean(call_id) == call_id


def response(parts: list[dict[str, Any]]) -> bytes:
    candidate = {"content": {"role": "model", "parts": parts}, "finishReason": "STOP"}
    return orjson.dumps({"candidates": [candidate], "modelVersion": "gemini-3-flash"})


def test_response_puts_the_signature_in_the_call_id() -> None:
    resp = WIRE.chat_response(
        response(
            [
                {"text": "Let me check.", "thoughtSignature": "dGV4dA=="},  # nowhere to go
                {
                    "functionCall": {"name": "get_weather", "args": {"city": "Paris"}},
                    "thoughtSignature": SIGNATURE,
                },
                {"functionCall": {"name": "get_time", "args": {}}},  # parallel: unsigned
                {"functionCall": {"name": "x", "args": {}, "id": "g1"}, "thoughtSignature": "eQ=="},
            ]
        )
    )
    assert resp.content == "Let me check."
    weather, time, given = resp.tool_calls
    assert split(weather.id)[1] == SIGNATURE
    assert split(weather.id)[0].startswith(SYNTHETIC_ID_PREFIX)
    assert time.id.startswith(SYNTHETIC_ID_PREFIX) and SEPARATOR not in time.id
    assert split(given.id) == ("g1", "eQ==")


def test_a_non_string_signature_is_ignored() -> None:
    resp = WIRE.chat_response(
        response([{"functionCall": {"name": "f", "args": {}, "id": "g1"}, "thoughtSignature": 7}])
    )
    assert resp.tool_calls[0].id == "g1"


def test_streamed_call_carries_the_signature_in_its_first_delta() -> None:
    decoder = WIRE.stream_decoder(ChatRequest(model="m", messages=()), "gemini-3-flash")
    part = {"functionCall": {"name": "get_weather", "args": {"city": "Paris"}}}
    event = {"candidates": [{"content": {"role": "model", "parts": [{"text": "Hm. "}]}}]}
    assert decoder.feed(SSEEvent(data=orjson.dumps(event).decode()))[0].text == "Hm. "
    event["candidates"][0]["content"]["parts"] = [{**part, "thoughtSignature": SIGNATURE}]
    (chunk,) = decoder.feed(SSEEvent(data=orjson.dumps(event).decode()))
    (delta,) = chunk.tool_calls
    assert delta.name == "get_weather" and delta.id is not None
    assert split(delta.id)[1] == SIGNATURE


def conversation(call: ToolCall) -> ChatRequest:
    return ChatRequest(
        model="m",
        messages=(
            Message("user", "weather?"),
            Message("assistant", None, tool_calls=(call,)),
            Message("tool", '{"temp_c": 18}', tool_call_id=call.id),
        ),
    )


def test_signature_goes_back_on_the_function_call_part_with_clean_ids() -> None:
    first = WIRE.chat_response(
        response(
            [
                {
                    "functionCall": {"name": "get_weather", "args": {"city": "Paris"}, "id": "g1"},
                    "thoughtSignature": SIGNATURE,
                }
            ]
        )
    )
    body = generate_body(conversation(first.tool_calls[0]))
    model_turn, results = body["contents"][1:]
    assert model_turn["parts"] == [
        {
            "functionCall": {"name": "get_weather", "args": {"city": "Paris"}, "id": "g1"},
            "thoughtSignature": SIGNATURE,
        }
    ]
    assert results["parts"] == [
        {"functionResponse": {"name": "get_weather", "response": {"temp_c": 18}, "id": "g1"}}
    ]


def test_synthetic_id_with_a_signature_sends_no_id() -> None:
    call = ToolCall(attach("call_hw00ff", SIGNATURE), "get_weather", '{"city": "Paris"}')
    model_turn, results = generate_body(conversation(call))["contents"][1:]
    assert model_turn["parts"] == [
        {
            "functionCall": {"name": "get_weather", "args": {"city": "Paris"}},
            "thoughtSignature": SIGNATURE,
        }
    ]
    assert results["parts"] == [
        {"functionResponse": {"name": "get_weather", "response": {"temp_c": 18}}}
    ]


def test_malformed_caller_id_is_sent_as_a_plain_id() -> None:
    call = ToolCall("mine__tsb_abcde", "get_weather", "{}")
    model_turn, results = generate_body(conversation(call))["contents"][1:]
    assert model_turn["parts"] == [
        {"functionCall": {"name": "get_weather", "args": {}, "id": "mine__tsb_abcde"}}
    ]
    assert results["parts"][0]["functionResponse"]["id"] == "mine__tsb_abcde"


def test_another_provider_gets_the_ids_without_the_signature() -> None:
    """A conversation begun on a Gemini model that falls back to OpenAI or Anthropic: the
    signature means nothing there, and OpenAI refuses ids over 40 characters."""
    from headway.wire.anthropic.egress import messages_body
    from headway.wire.openai.egress import OpenAIOptions, chat_body

    signature = "CiQB" + "x" * 316  # real ones run to hundreds of characters
    signed = ToolCall(attach("call_hw0123456789abcdef", signature), "get_weather", "{}")
    assert len(signed.id) > 300
    request = conversation(signed)
    openai = chat_body(request, "gpt-4o", OpenAIOptions())["messages"]
    assert openai[1]["tool_calls"][0]["id"] == "call_hw0123456789abcdef"
    assert openai[2]["tool_call_id"] == "call_hw0123456789abcdef"
    anthropic = messages_body(request, "claude")["messages"]
    assert anthropic[1]["content"][0]["id"] == "call_hw0123456789abcdef"
    assert anthropic[2]["content"][0]["tool_use_id"] == "call_hw0123456789abcdef"
