"""Serialising answers to OpenAI callers: JSON bodies, SSE frames, embeddings, errors."""

from __future__ import annotations

import base64
import struct
from typing import Any

import orjson

from headway.errors import ModelNotFound, RateLimited
from headway.types import (
    ChatChunk,
    ChatResponse,
    EmbedRequest,
    EmbedResponse,
    FinishReason,
    ModelInfo,
    ToolCall,
    ToolCallDelta,
    Usage,
)
from headway.wire.openai.ingress import (
    ChatStreamEncoder,
    chat_response_json,
    embeddings_json,
    error_json,
    models_json,
    stream_error_frame,
)

USAGE = Usage(input_tokens=19, output_tokens=3, cached_input_tokens=4, reasoning_tokens=1)


def frames(data: bytes) -> list[Any]:
    assert data.endswith(b"\n\n")
    out: list[Any] = []
    for frame in data[:-2].split(b"\n\n"):
        assert frame.startswith(b"data: ")
        payload = frame[len(b"data: ") :]
        out.append("[DONE]" if payload == b"[DONE]" else orjson.loads(payload))
    return out


def test_chat_completion_body() -> None:
    resp = ChatResponse(
        id="chatcmpl-1",
        model="gpt-4o-2024",
        content="Hello!",
        finish_reason=FinishReason.STOP,
        usage=USAGE,
        created=5,
    )
    doc = orjson.loads(chat_response_json(resp, "default", created=99))
    assert doc == {
        "id": "chatcmpl-1",
        "object": "chat.completion",
        "created": 5,
        "model": "default",
        "choices": [
            {
                "index": 0,
                "message": {"role": "assistant", "content": "Hello!", "refusal": None},
                "logprobs": None,
                "finish_reason": "stop",
            }
        ],
        "usage": {
            "prompt_tokens": 19,
            "completion_tokens": 3,
            "total_tokens": 22,
            "prompt_tokens_details": {"cached_tokens": 4},
            "completion_tokens_details": {"reasoning_tokens": 1},
        },
    }


def test_chat_completion_with_tool_calls_and_defaults() -> None:
    resp = ChatResponse(
        id="",
        model="x",
        content=None,
        finish_reason=FinishReason.TOOL_CALLS,
        usage=Usage(1, 1, cache_write_tokens=7),
        tool_calls=(ToolCall("call_1", "f", '{"a":1}'),),
    )
    doc = orjson.loads(chat_response_json(resp, "m", created=99))
    assert doc["created"] == 99 and doc["id"].startswith("chatcmpl-")
    choice = doc["choices"][0]
    assert choice["finish_reason"] == "tool_calls" and choice["message"]["content"] is None
    assert choice["message"]["tool_calls"] == [
        {"id": "call_1", "type": "function", "function": {"name": "f", "arguments": '{"a":1}'}}
    ]
    assert doc["usage"]["prompt_tokens_details"] == {"cached_tokens": 0, "cache_write_tokens": 7}


def test_stream_frames_with_usage() -> None:
    enc = ChatStreamEncoder(id="c1", created=7, model="default", include_usage=True)
    data = enc.start()
    data += enc.chunk(ChatChunk("u", "dep", text="Hel"))
    data += enc.chunk(ChatChunk("u", "dep", role="assistant"))  # nothing to say: no frame
    data += enc.chunk(
        ChatChunk("u", "dep", text='lo "x"', finish_reason=FinishReason.LENGTH, usage=USAGE)
    )
    data += enc.finish()
    out = frames(data)
    assert out[-1] == "[DONE]"
    chunks = out[:-1]
    assert all((c["id"], c["created"], c["model"]) == ("c1", 7, "default") for c in chunks)
    assert [c["choices"][0]["delta"] if c["choices"] else None for c in chunks] == [
        {"role": "assistant", "content": ""},
        {"content": "Hel"},
        {"content": 'lo "x"'},
        {},
        None,
    ]
    assert chunks[3]["choices"][0]["finish_reason"] == "length"
    assert [c["usage"] for c in chunks[:-1]] == [None] * 4
    assert chunks[-1]["usage"]["total_tokens"] == 22


def test_stream_frames_without_usage_and_implied_finish() -> None:
    enc = ChatStreamEncoder(id="c1", created=7, model="m", include_usage=False)
    data = enc.start() + enc.chunk(ChatChunk("u", "d", text="a", usage=USAGE)) + enc.finish(USAGE)
    out = frames(data)
    assert all("usage" not in c for c in out[:-1])
    assert out[-2]["choices"][0] == {
        "index": 0,
        "delta": {},
        "logprobs": None,
        "finish_reason": "stop",
    }
    assert out[-1] == "[DONE]"


def test_stream_tool_call_deltas() -> None:
    enc = ChatStreamEncoder(id="c", created=1, model="m", include_usage=False)
    first = enc.chunk(
        ChatChunk(
            "u", "d", tool_calls=(ToolCallDelta(0, "call_1", "f"), ToolCallDelta(1, "call_2", "g"))
        )
    )
    later = enc.chunk(ChatChunk("u", "d", tool_calls=(ToolCallDelta(1, arguments='{"b":'),)))
    assert frames(first)[0]["choices"][0]["delta"]["tool_calls"] == [
        {
            "index": 0,
            "id": "call_1",
            "type": "function",
            "function": {"arguments": "", "name": "f"},
        },
        {
            "index": 1,
            "id": "call_2",
            "type": "function",
            "function": {"arguments": "", "name": "g"},
        },
    ]
    assert frames(later)[0]["choices"][0]["delta"]["tool_calls"] == [
        {"index": 1, "function": {"arguments": '{"b":'}}
    ]


def test_usage_falls_back_to_what_was_served() -> None:
    enc = ChatStreamEncoder(id="c", created=1, model="m", include_usage=True)
    enc.chunk(ChatChunk("u", "d", text="x", finish_reason=FinishReason.STOP))
    assert frames(enc.finish(USAGE))[0]["usage"]["prompt_tokens"] == 19
    assert frames(
        ChatStreamEncoder(id="c", created=1, model="m", include_usage=True).finish(None)
    ) == [
        {
            "id": "c",
            "object": "chat.completion.chunk",
            "created": 1,
            "model": "m",
            "choices": [{"index": 0, "delta": {}, "logprobs": None, "finish_reason": "stop"}],
            "usage": None,
        },
        "[DONE]",
    ]


def test_embeddings_float_and_base64_little_endian_float32() -> None:
    resp = EmbedResponse(
        model="dep", vectors=[[0.5, -1.25], [3.0, 0.0]], usage=Usage(input_tokens=4)
    )
    floats = orjson.loads(embeddings_json(resp, EmbedRequest(model="e", inputs=("a", "b"))))
    assert floats == {
        "object": "list",
        "model": "e",
        "data": [
            {"object": "embedding", "index": 0, "embedding": [0.5, -1.25]},
            {"object": "embedding", "index": 1, "embedding": [3.0, 0.0]},
        ],
        "usage": {"prompt_tokens": 4, "total_tokens": 4},
    }
    packed = orjson.loads(
        embeddings_json(resp, EmbedRequest(model="e", inputs=("a", "b"), encoding_format="base64"))
    )
    raw = base64.b64decode(packed["data"][0]["embedding"])
    assert raw == struct.pack("<2f", 0.5, -1.25)


def test_models_and_errors() -> None:
    doc = orjson.loads(models_json([ModelInfo("a", "p", 3), ModelInfo("b", sunset="2027-01-31")]))
    assert doc["object"] == "list"
    assert doc["data"][0] == {"id": "a", "object": "model", "created": 3, "owned_by": "p"}
    assert doc["data"][1]["shutdown_date"] == "2027-01-31"
    err = orjson.loads(error_json(ModelNotFound("no such model", param="model")))
    assert err == {
        "error": {
            "message": "no such model",
            "type": "invalid_request_error",
            "param": "model",
            "code": "model_not_found",
        }
    }
    frame = stream_error_frame(RateLimited("slow down"))
    assert frames(frame) == [
        {
            "error": {
                "message": "slow down",
                "type": "rate_limit_exceeded",
                "param": None,
                "code": "rate_limit_exceeded",
            }
        }
    ]
