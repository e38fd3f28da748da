"""Gemini responses, SSE streams, embeddings and errors -> neutral values (providers.md 5.3-5.6)."""

from __future__ import annotations

from typing import Any

import orjson
import pytest

from headway.errors import (
    ContentFiltered,
    ContextLengthExceeded,
    HeadwayError,
    InvalidRequest,
    StreamInterrupted,
    UpstreamAuthFailed,
    UpstreamError,
    UpstreamModelNotFound,
    UpstreamOverloaded,
    UpstreamRateLimited,
    UpstreamTimeout,
)
from headway.providers.base import SSEEvent
from headway.types import FinishReason, Usage
from headway.wire.gemini.decode import SYNTHETIC_ID_PREFIX
from headway.wire.gemini.egress import GeminiWire

WIRE = GeminiWire()
USAGE = {
    "promptTokenCount": 50,
    "candidatesTokenCount": 3,
    "thoughtsTokenCount": 182,
    "cachedContentTokenCount": 20,
    "toolUsePromptTokenCount": 5,
    "totalTokenCount": 240,
}


def response(parts: list[dict[str, Any]], finish: str = "STOP", **kw: Any) -> bytes:
    return orjson.dumps(
        {
            "candidates": [
                {"content": {"role": "model", "parts": parts}, "finishReason": finish, "index": 0}
            ],
            "usageMetadata": USAGE,
            "modelVersion": "models/gemini-2.5-flash",
            "responseId": "resp-1",
            **kw,
        }
    )


def test_text_response_and_usage() -> None:
    resp = WIRE.chat_response(
        response([{"text": "thinking...", "thought": True}, {"text": "Hello!"}])
    )
    assert resp.content == "Hello!"
    assert resp.id == "resp-1" and resp.model == "gemini-2.5-flash"
    assert resp.finish_reason is FinishReason.STOP
    assert resp.usage == Usage(
        input_tokens=55, output_tokens=185, cached_input_tokens=20, reasoning_tokens=182
    )


def test_function_call_response_synthesises_ids() -> None:
    resp = WIRE.chat_response(
        response(
            [
                {"functionCall": {"name": "get_weather", "args": {"city": "Paris"}}},
                {"functionCall": {"name": "get_time", "args": {}, "id": "given-1"}},
            ]
        )
    )
    assert resp.finish_reason is FinishReason.TOOL_CALLS
    assert resp.content is None
    first, second = resp.tool_calls
    assert first.id.startswith(SYNTHETIC_ID_PREFIX) and first.name == "get_weather"
    assert orjson.loads(first.arguments) == {"city": "Paris"}
    assert second.id == "given-1"


@pytest.mark.parametrize(
    ("finish", "reason"),
    [("MAX_TOKENS", FinishReason.LENGTH), ("SAFETY", FinishReason.CONTENT_FILTER)],
)
def test_finish_reasons(finish: str, reason: FinishReason) -> None:
    assert WIRE.chat_response(response([{"text": "x"}], finish)).finish_reason is reason


def test_blocked_prompt_is_content_filtered() -> None:
    body = orjson.dumps(
        {"promptFeedback": {"blockReason": "SAFETY", "safetyRatings": []}, "usageMetadata": USAGE}
    )
    with pytest.raises(ContentFiltered) as info:
        WIRE.chat_response(body)
    assert "SAFETY" in info.value.message and info.value.status == 400


def test_no_candidates_is_an_upstream_error() -> None:
    with pytest.raises(UpstreamError):
        WIRE.chat_response(b'{"usageMetadata": {}}')


def sse(data: dict[str, Any]) -> SSEEvent:
    return SSEEvent(data=orjson.dumps(data).decode())


def chunk(parts: list[dict[str, Any]], finish: str | None = None, candidates: int = 3) -> SSEEvent:
    candidate: dict[str, Any] = {"content": {"parts": parts, "role": "model"}, "index": 0}
    if finish:
        candidate["finishReason"] = finish
    usage = {"promptTokenCount": 5, "candidatesTokenCount": candidates, "thoughtsTokenCount": 10}
    return sse(
        {
            "candidates": [candidate],
            "usageMetadata": usage,
            "modelVersion": "models/gemini-2.5-flash",
            "responseId": "r1",
        }
    )


def test_stream_text_with_cumulative_usage() -> None:
    decoder = WIRE.stream_decoder(None, "gemini-2.5-flash")  # type: ignore[arg-type]
    chunks = [
        c
        for e in (chunk([{"text": "Hel"}], candidates=1), chunk([{"text": "lo"}], "STOP", 2))
        for c in decoder.feed(e)
    ]
    assert not decoder.done  # no terminator: the end of the body is the end
    chunks += decoder.finish()
    assert chunks[0].role == "assistant" and chunks[0].text == "Hel"
    assert "".join(c.text for c in chunks) == "Hello"
    assert chunks[-1].finish_reason is FinishReason.STOP
    assert chunks[-1].usage == Usage(input_tokens=5, output_tokens=12, reasoning_tokens=10)
    assert chunks[-1].id == "r1" and chunks[-1].model == "gemini-2.5-flash"


def test_stream_function_calls_arrive_whole() -> None:
    decoder = WIRE.stream_decoder(None, "g")  # type: ignore[arg-type]
    events = [
        chunk(
            [
                {"functionCall": {"name": "a", "args": {"x": 1}}},
                {"functionCall": {"name": "b", "args": {}}},
            ],
            "STOP",
        )
    ]
    chunks = [c for e in events for c in decoder.feed(e)] + decoder.finish()
    deltas = [d for c in chunks for d in c.tool_calls]
    assert [(d.index, d.name, d.arguments) for d in deltas] == [(0, "a", '{"x":1}'), (1, "b", "{}")]
    assert all(d.id and d.id.startswith(SYNTHETIC_ID_PREFIX) for d in deltas)
    assert chunks[-1].finish_reason is FinishReason.TOOL_CALLS


def test_stream_cut_before_finish_reason() -> None:
    decoder = WIRE.stream_decoder(None, "g")  # type: ignore[arg-type]
    decoder.feed(chunk([{"text": "Hel"}]))
    with pytest.raises(StreamInterrupted):
        decoder.finish()


def test_stream_blocked_and_in_band_error() -> None:
    decoder = WIRE.stream_decoder(None, "g")  # type: ignore[arg-type]
    with pytest.raises(ContentFiltered):
        decoder.feed(sse({"promptFeedback": {"blockReason": "PROHIBITED_CONTENT"}}))
    decoder = WIRE.stream_decoder(None, "g")  # type: ignore[arg-type]
    with pytest.raises(UpstreamOverloaded):
        decoder.feed(
            sse({"error": {"code": 503, "message": "overloaded", "status": "UNAVAILABLE"}})
        )
    with pytest.raises(StreamInterrupted):
        decoder.feed(SSEEvent(data="{bad"))


def test_embeddings() -> None:
    one = WIRE.embed_response(b'{"embedding": {"values": [0.5, -1]}}')
    assert one.vectors == [[0.5, -1.0]]
    many = WIRE.embed_response(b'{"embeddings": [{"values": [1]}, {"values": [2]}]}')
    assert many.vectors == [[1.0], [2.0]]
    with pytest.raises(UpstreamError):
        WIRE.embed_response(b'{"embeddings": [{"nope": 1}]}')


def rpc(
    code: int, status: str, message: str = "msg", details: list[dict[str, Any]] | None = None
) -> bytes:
    return orjson.dumps(
        {"error": {"code": code, "message": message, "status": status, "details": details or []}}
    )


QUOTA: list[dict[str, Any]] = [
    {
        "@type": "type.googleapis.com/google.rpc.QuotaFailure",
        "violations": [
            {"quotaMetric": "generativelanguage.googleapis.com/generate_content_free_tier_requests"}
        ],
    },
    {"@type": "type.googleapis.com/google.rpc.Help", "links": []},
    {"@type": "type.googleapis.com/google.rpc.RetryInfo", "retryDelay": "37s"},
]
BAD_KEY: list[dict[str, Any]] = [
    {
        "@type": "type.googleapis.com/google.rpc.ErrorInfo",
        "reason": "API_KEY_INVALID",
        "domain": "googleapis.com",
    }
]


@pytest.mark.parametrize(
    ("status", "body", "cls"),
    [
        (400, rpc(400, "INVALID_ARGUMENT"), InvalidRequest),
        (
            400,
            rpc(
                400, "INVALID_ARGUMENT", "API key not valid. Please pass a valid API key.", BAD_KEY
            ),
            UpstreamAuthFailed,
        ),
        (
            400,
            rpc(
                400,
                "INVALID_ARGUMENT",
                "The input token count (1200000) exceeds the maximum number of tokens allowed (1048576).",
            ),
            ContextLengthExceeded,
        ),
        (400, rpc(400, "FAILED_PRECONDITION"), UpstreamAuthFailed),
        (403, rpc(403, "PERMISSION_DENIED"), UpstreamAuthFailed),
        (404, rpc(404, "NOT_FOUND"), UpstreamModelNotFound),
        (429, rpc(429, "RESOURCE_EXHAUSTED", details=QUOTA), UpstreamRateLimited),
        (500, rpc(500, "INTERNAL"), UpstreamError),
        (503, rpc(503, "UNAVAILABLE"), UpstreamOverloaded),
        (504, rpc(504, "DEADLINE_EXCEEDED"), UpstreamTimeout),
        (502, b"<html>bad gateway</html>", UpstreamError),
    ],
)
def test_classify(status: int, body: bytes, cls: type[HeadwayError]) -> None:
    error = WIRE.classify_error(status, body, {})
    assert type(error) is cls
    assert error.provider is None and error.upstream_status == status


def test_resource_exhausted_retry_delay() -> None:
    error = WIRE.classify_error(
        429, rpc(429, "RESOURCE_EXHAUSTED", "You exceeded your current quota", QUOTA), {}
    )
    assert error.retry_after == 37.0 and error.retryable and error.fallback_eligible
    assert error.message == "You exceeded your current quota"
    frac = [{"@type": "type.googleapis.com/google.rpc.RetryInfo", "retryDelay": "57.238747106s"}]
    assert WIRE.classify_error(
        429, rpc(429, "RESOURCE_EXHAUSTED", details=frac), {}
    ).retry_after == pytest.approx(57.238747106)
    wrapped = b"[" + rpc(429, "RESOURCE_EXHAUSTED", details=QUOTA) + b"]"
    assert WIRE.classify_error(429, wrapped, {}).retry_after == 37.0


def test_no_ratelimit_headers() -> None:
    assert WIRE.ratelimit({"x-goog-foo": "1"}, 0.0) is None
