"""Neutral results -> Anthropic wire: message JSON, SSE frames, error bodies."""

from __future__ import annotations

import orjson
import pytest

from headway.errors import (
    AllAttemptsFailed,
    Attempt,
    HeadwayError,
    InvalidRequest,
    RateLimited,
    UpstreamError,
    UpstreamOverloaded,
)
from headway.types import ChatChunk, ChatResponse, FinishReason, ToolCall, ToolCallDelta, Usage
from headway.wire.anthropic.decode import AnthropicStreamDecoder
from headway.wire.anthropic.render import (
    StreamEncoder,
    error_body,
    error_frame,
    error_status,
    message_json,
    usage_json,
)
from tests.wire.sse_util import parse_sse


def test_usage_splits_cache_out_of_input() -> None:
    usage = Usage(input_tokens=100, output_tokens=7, cached_input_tokens=60, cache_write_tokens=10)
    assert usage_json(usage) == {
        "input_tokens": 30,
        "output_tokens": 7,
        "cache_creation_input_tokens": 10,
        "cache_read_input_tokens": 60,
    }


def test_message_json_with_text_and_tool() -> None:
    resp = ChatResponse(
        id="chatcmpl-1",
        model="gpt-x",
        content="Checking.",
        finish_reason=FinishReason.TOOL_CALLS,
        usage=Usage(input_tokens=10, output_tokens=3),
        tool_calls=(ToolCall("call_1", "get_weather", '{"city":"Paris"}'),),
    )
    msg = message_json(resp)
    assert msg["id"] == "msg_chatcmpl-1"
    assert msg["type"] == "message" and msg["role"] == "assistant"
    assert msg["stop_reason"] == "tool_use"
    assert msg["content"] == [
        {"type": "text", "text": "Checking."},
        {"type": "tool_use", "id": "call_1", "name": "get_weather", "input": {"city": "Paris"}},
    ]
    assert msg["usage"]["input_tokens"] == 10


def test_invalid_tool_arguments_survive_wrapped() -> None:
    resp = ChatResponse(
        id="msg_1",
        model="m",
        content=None,
        finish_reason=FinishReason.TOOL_CALLS,
        usage=Usage(),
        tool_calls=(ToolCall("c", "f", "{not json"),),
    )
    assert message_json(resp)["content"][0]["input"] == {"_raw_arguments": "{not json"}
    assert message_json(resp)["id"] == "msg_1"


@pytest.mark.parametrize(
    ("err", "status", "etype"),
    [
        (
            InvalidRequest("max_tokens: Field required", param="max_tokens"),
            400,
            "invalid_request_error",
        ),
        (UpstreamOverloaded("Overloaded"), 529, "overloaded_error"),
        (RateLimited("slow down"), 429, "rate_limit_error"),
        (UpstreamError("boom"), 502, "api_error"),
        (AllAttemptsFailed([Attempt("a", "429")], status=429), 429, "rate_limit_error"),
    ],
)
def test_error_body(err: HeadwayError, status: int, etype: str) -> None:
    assert error_status(err) == status
    body = error_body(err, "req_1")
    assert body["type"] == "error"
    assert body["error"]["type"] == etype
    assert body["error"]["message"] == err.message
    assert body["request_id"] == "req_1"


def test_error_frame_has_event_name() -> None:
    (event,) = parse_sse(error_frame(UpstreamOverloaded("Overloaded")))
    assert event.event == "error"
    assert orjson.loads(event.data) == {
        "type": "error",
        "error": {"type": "overloaded_error", "message": "Overloaded"},
    }


def _encode(chunks: list[ChatChunk]) -> bytes:
    enc = StreamEncoder(message_id="msg_9", model="m")
    return b"".join(enc.feed(c) for c in chunks) + enc.finish()


def test_stream_text_then_tool_events_in_order() -> None:
    chunks = [
        ChatChunk(id="c", model="up", role="assistant"),
        ChatChunk(id="c", model="up", text="Let me "),
        ChatChunk(id="c", model="up", text="check"),
        ChatChunk(id="c", model="up", tool_calls=(ToolCallDelta(0, "call_1", "get_weather", ""),)),
        ChatChunk(id="c", model="up", tool_calls=(ToolCallDelta(0, arguments='{"city":'),)),
        ChatChunk(id="c", model="up", tool_calls=(ToolCallDelta(0, arguments='"Paris"}'),)),
        ChatChunk(id="c", model="up", finish_reason=FinishReason.TOOL_CALLS),
        ChatChunk(id="c", model="up", usage=Usage(input_tokens=12, output_tokens=5)),
    ]
    events = parse_sse(_encode(chunks))
    names = [e.event for e in events]
    assert names == [
        "message_start",
        "ping",
        "content_block_start",
        "content_block_delta",
        "content_block_delta",
        "content_block_stop",
        "content_block_start",
        "content_block_delta",
        "content_block_delta",
        "content_block_stop",
        "message_delta",
        "message_stop",
    ]
    datas = [orjson.loads(e.data) for e in events]
    assert all(d["type"] == e.event for d, e in zip(datas, events, strict=True))
    assert datas[0]["message"]["model"] == "m" and datas[0]["message"]["id"] == "msg_9"
    assert datas[6]["content_block"] == {
        "type": "tool_use",
        "id": "call_1",
        "name": "get_weather",
        "input": {},
    }
    assert datas[6]["index"] == 1
    assert datas[7]["delta"] == {"type": "input_json_delta", "partial_json": '{"city":'}
    assert datas[10]["delta"]["stop_reason"] == "tool_use"
    assert datas[10]["usage"]["input_tokens"] == 12 and datas[10]["usage"]["output_tokens"] == 5


def test_encoder_output_decodes_back_to_the_same_stream() -> None:
    chunks = [
        ChatChunk(id="c", model="up", text="Hi "),
        ChatChunk(id="c", model="up", text="there"),
        ChatChunk(id="c", model="up", tool_calls=(ToolCallDelta(0, "call_1", "f", '{"a":1}'),)),
        ChatChunk(id="c", model="up", tool_calls=(ToolCallDelta(1, "call_2", "g", "{}"),)),
        ChatChunk(id="c", model="up", finish_reason=FinishReason.TOOL_CALLS, usage=Usage(9, 4, 2)),
    ]
    decoder = AnthropicStreamDecoder("m")
    out = [c for e in parse_sse(_encode(chunks)) for c in decoder.feed(e)] + decoder.finish()
    assert decoder.done
    assert "".join(c.text for c in out) == "Hi there"
    deltas = [d for c in out for d in c.tool_calls]
    assert [(d.index, d.id, d.name) for d in deltas if d.id] == [
        (0, "call_1", "f"),
        (1, "call_2", "g"),
    ]
    assert "".join(d.arguments for d in deltas if d.index == 0) == '{"a":1}'
    assert out[-1].finish_reason is FinishReason.TOOL_CALLS
    assert out[-1].usage == Usage(input_tokens=9, output_tokens=4, cached_input_tokens=2)


def test_empty_stream_still_frames_a_message() -> None:
    events = parse_sse(StreamEncoder(message_id="msg_1", model="m").finish())
    assert [e.event for e in events] == ["message_start", "ping", "message_delta", "message_stop"]
    assert orjson.loads(events[2].data)["delta"]["stop_reason"] == "end_turn"
