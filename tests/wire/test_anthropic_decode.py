"""Anthropic responses, stream events, errors and rate-limit headers -> neutral values."""

from __future__ import annotations

import datetime as dt

import orjson
import pytest

from headway.errors import (
    ContextLengthExceeded,
    HeadwayError,
    InvalidRequest,
    RequestTooLarge,
    StreamInterrupted,
    UpstreamAuthFailed,
    UpstreamError,
    UpstreamModelNotFound,
    UpstreamOverloaded,
    UpstreamRateLimited,
)
from headway.providers.base import SSEEvent
from headway.types import FinishReason, ToolCall, Usage
from headway.wire.anthropic.egress import AnthropicWire

WIRE = AnthropicWire()


def test_parse_message_with_tool_and_cache_usage() -> None:
    body = {
        "id": "msg_01",
        "type": "message",
        "role": "assistant",
        "model": "claude-sonnet-4-5-20250929",
        "content": [
            {"type": "thinking", "thinking": "..."},
            {"type": "text", "text": "Checking."},
            {
                "type": "tool_use",
                "id": "toolu_1",
                "name": "get_weather",
                "input": {"city": "Paris"},
            },
        ],
        "stop_reason": "tool_use",
        "stop_sequence": None,
        "usage": {
            "input_tokens": 12,
            "output_tokens": 6,
            "cache_creation_input_tokens": 100,
            "cache_read_input_tokens": 300,
        },
    }
    resp = WIRE.chat_response(orjson.dumps(body))
    assert resp.id == "msg_01" and resp.model == "claude-sonnet-4-5-20250929"
    assert resp.content == "Checking."
    assert resp.tool_calls == (ToolCall("toolu_1", "get_weather", '{"city":"Paris"}'),)
    assert resp.finish_reason is FinishReason.TOOL_CALLS
    assert resp.usage == Usage(
        input_tokens=412, output_tokens=6, cached_input_tokens=300, cache_write_tokens=100
    )


def test_parse_refusal_and_length() -> None:
    base = {"id": "m", "model": "c", "usage": {}, "content": [{"type": "text", "text": "No."}]}
    refusal = WIRE.chat_response(orjson.dumps({**base, "stop_reason": "refusal"}))
    assert refusal.finish_reason is FinishReason.CONTENT_FILTER and refusal.refusal == "No."
    cut = WIRE.chat_response(orjson.dumps({**base, "stop_reason": "max_tokens"}))
    assert cut.finish_reason is FinishReason.LENGTH


def test_malformed_message_is_an_upstream_error() -> None:
    with pytest.raises(UpstreamError):
        WIRE.chat_response(b"<html>")


def ev(name: str, data: dict[str, object]) -> SSEEvent:
    return SSEEvent(data=orjson.dumps(data).decode(), event=name)


START = ev(
    "message_start",
    {
        "type": "message_start",
        "message": {
            "id": "msg_01Ab",
            "model": "claude-sonnet-4-5-20250929",
            "content": [],
            "usage": {"input_tokens": 412, "cache_read_input_tokens": 100, "output_tokens": 1},
        },
    },
)
STREAM = [
    START,
    ev(
        "content_block_start",
        {"type": "content_block_start", "index": 0, "content_block": {"type": "text", "text": ""}},
    ),
    ev("ping", {"type": "ping"}),
    ev(
        "content_block_delta",
        {
            "type": "content_block_delta",
            "index": 0,
            "delta": {"type": "text_delta", "text": "Let me check"},
        },
    ),
    ev("content_block_stop", {"type": "content_block_stop", "index": 0}),
    ev("brand_new_event", {"type": "brand_new_event", "x": 1}),
    ev(
        "content_block_start",
        {
            "type": "content_block_start",
            "index": 1,
            "content_block": {
                "type": "tool_use",
                "id": "toolu_01Xy",
                "name": "get_weather",
                "input": {},
            },
        },
    ),
    ev(
        "content_block_delta",
        {
            "type": "content_block_delta",
            "index": 1,
            "delta": {"type": "input_json_delta", "partial_json": ""},
        },
    ),
    ev(
        "content_block_delta",
        {
            "type": "content_block_delta",
            "index": 1,
            "delta": {"type": "input_json_delta", "partial_json": '{"city": "Paris"}'},
        },
    ),
    ev("content_block_stop", {"type": "content_block_stop", "index": 1}),
    ev(
        "message_delta",
        {
            "type": "message_delta",
            "delta": {"stop_reason": "tool_use"},
            "usage": {"output_tokens": 58},
        },
    ),
    ev("message_stop", {"type": "message_stop"}),
]


def test_stream_decodes_text_tools_usage() -> None:
    decoder = WIRE.stream_decoder(None, "claude")  # type: ignore[arg-type]
    chunks = [c for e in STREAM for c in decoder.feed(e)]
    assert decoder.done
    assert decoder.finish() == []
    assert chunks[0].role == "assistant" and chunks[0].id == "msg_01Ab"
    assert "".join(c.text for c in chunks) == "Let me check"
    deltas = [d for c in chunks for d in c.tool_calls]
    assert deltas[0].id == "toolu_01Xy" and deltas[0].name == "get_weather" and deltas[0].index == 0
    assert "".join(d.arguments for d in deltas) == '{"city": "Paris"}'
    last = chunks[-1]
    assert last.finish_reason is FinishReason.TOOL_CALLS
    assert last.usage == Usage(input_tokens=512, output_tokens=58, cached_input_tokens=100)
    assert all(c.model == "claude-sonnet-4-5-20250929" for c in chunks)


def test_stream_without_message_stop_is_interrupted() -> None:
    decoder = WIRE.stream_decoder(None, "claude")  # type: ignore[arg-type]
    for event in STREAM[:-1]:
        decoder.feed(event)
    assert not decoder.done
    with pytest.raises(StreamInterrupted):
        decoder.finish()


def test_stream_events_by_data_type_when_unnamed() -> None:
    decoder = WIRE.stream_decoder(None, "claude")  # type: ignore[arg-type]
    chunks = [c for e in STREAM for c in decoder.feed(SSEEvent(data=e.data))]
    assert chunks[-1].finish_reason is FinishReason.TOOL_CALLS


@pytest.mark.parametrize(
    ("etype", "cls"),
    [
        ("overloaded_error", UpstreamOverloaded),
        ("rate_limit_error", UpstreamRateLimited),
        ("api_error", UpstreamError),
        ("whatever", UpstreamError),
    ],
)
def test_stream_error_event_raises_classified(etype: str, cls: type[HeadwayError]) -> None:
    decoder = WIRE.stream_decoder(None, "claude")  # type: ignore[arg-type]
    decoder.feed(START)
    with pytest.raises(cls) as info:
        decoder.feed(
            ev("error", {"type": "error", "error": {"type": etype, "message": "Overloaded"}})
        )
    assert type(info.value) is cls
    assert info.value.message == "Overloaded" and info.value.provider is None


def test_malformed_stream_event() -> None:
    decoder = WIRE.stream_decoder(None, "claude")  # type: ignore[arg-type]
    with pytest.raises(StreamInterrupted):
        decoder.feed(SSEEvent(data="{nope", event="content_block_delta"))


def err(etype: str, message: str = "msg") -> bytes:
    return orjson.dumps(
        {"type": "error", "error": {"type": etype, "message": message}, "request_id": "req_1"}
    )


@pytest.mark.parametrize(
    ("status", "body", "cls", "retryable", "fallback"),
    [
        (400, err("invalid_request_error"), InvalidRequest, False, False),
        (
            400,
            err("invalid_request_error", "prompt is too long: 208310 tokens > 200000 maximum"),
            ContextLengthExceeded,
            False,
            False,
        ),
        (401, err("authentication_error"), UpstreamAuthFailed, False, True),
        (403, err("permission_error"), UpstreamAuthFailed, False, True),
        (404, err("not_found_error"), UpstreamModelNotFound, False, True),
        (413, b"<html>too large</html>", RequestTooLarge, False, False),
        (429, err("rate_limit_error"), UpstreamRateLimited, True, True),
        (500, err("api_error"), UpstreamError, True, True),
        (503, b"", UpstreamError, True, True),
        (529, err("overloaded_error"), UpstreamOverloaded, True, True),
        (418, err("invalid_request_error"), InvalidRequest, False, False),
    ],
)
def test_classify_error(
    status: int, body: bytes, cls: type[HeadwayError], retryable: bool, fallback: bool
) -> None:
    error = WIRE.classify_error(status, body, {})
    assert type(error) is cls
    assert error.retryable is retryable and error.fallback_eligible is fallback
    assert error.upstream_status == status and error.provider is None
    assert error.message


def test_classify_keeps_message_and_retry_after() -> None:
    error = WIRE.classify_error(
        429, err("rate_limit_error", "Number of request tokens has exceeded"), {"Retry-After": "7"}
    )
    assert error.retry_after == 7.0
    assert error.message == "Number of request tokens has exceeded"
    error = WIRE.classify_error(529, err("overloaded_error"), {"retry-after-ms": "1500"})
    assert error.retry_after == 1.5
    assert WIRE.classify_error(502, b"Bad gateway", {}).message == "Bad gateway"


def iso(seconds: float) -> str:
    return dt.datetime.fromtimestamp(seconds, dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def test_ratelimit_headers_snapshot() -> None:
    now = 1_767_225_600.0
    headers = {
        "anthropic-ratelimit-requests-limit": "50",
        "anthropic-ratelimit-requests-remaining": "49",
        "anthropic-ratelimit-requests-reset": iso(now + 1),
        "Anthropic-Ratelimit-Tokens-Limit": "90000",
        "anthropic-ratelimit-tokens-remaining": "89000",
        "anthropic-ratelimit-tokens-reset": iso(now + 31),
        "anthropic-ratelimit-input-tokens-limit": "80000",
        "anthropic-ratelimit-input-tokens-remaining": "79000",
        "anthropic-ratelimit-input-tokens-reset": iso(now + 30),
        "anthropic-ratelimit-output-tokens-limit": "10000",
        "anthropic-ratelimit-output-tokens-remaining": "9000",
        "anthropic-ratelimit-output-tokens-reset": "2026-01-01T00:00:05+00:00",
        "request-id": "req_1",
    }
    snap = WIRE.ratelimit(headers, now)
    assert snap is not None
    assert snap.observed_at == now
    assert (snap.limit_requests, snap.remaining_requests, snap.reset_requests_at) == (
        50,
        49,
        now + 1,
    )
    assert (snap.limit_tokens, snap.remaining_tokens, snap.reset_tokens_at) == (
        90000,
        89000,
        now + 31,
    )
    assert (snap.limit_input_tokens, snap.remaining_input_tokens) == (80000, 79000)
    assert snap.reset_input_tokens_at == now + 30
    assert (snap.limit_output_tokens, snap.remaining_output_tokens) == (10000, 9000)
    assert snap.reset_output_tokens_at == now + 5


def test_no_ratelimit_headers() -> None:
    assert WIRE.ratelimit({"request-id": "r"}, 0.0) is None


def test_no_embeddings() -> None:
    with pytest.raises(InvalidRequest):
        WIRE.embed_call(None, "m")  # type: ignore[arg-type]
