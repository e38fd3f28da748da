"""OpenAI-shaped error bodies and `x-ratelimit-*` headers (providers.md 2.8, 2.9, 3, 7)."""

from __future__ import annotations

from typing import Any

import orjson
import pytest

from headway.errors import (
    ContentFiltered,
    ContextLengthExceeded,
    HeadwayError,
    InvalidRequest,
    RequestTooLarge,
    UpstreamAuthFailed,
    UpstreamError,
    UpstreamModelNotFound,
    UpstreamOverloaded,
    UpstreamQuotaExceeded,
    UpstreamRateLimited,
    UpstreamTimeout,
)
from headway.transport.headers import Headers
from headway.wire.openai.classify import (
    classify_error,
    parse_duration,
    ratelimit_snapshot,
    retry_after,
    retry_hint,
)


def err(
    message: str, type_: str | None = None, code: Any = None, param: str | None = None
) -> bytes:
    return orjson.dumps(
        {"error": {"message": message, "type": type_, "param": param, "code": code}}
    )


AZURE_FILTER = orjson.dumps(
    {
        "error": {
            "message": "The response was filtered due to the prompt triggering Azure OpenAI's content management policy.",
            "type": None,
            "param": "prompt",
            "code": "content_filter",
            "status": 400,
            "innererror": {"code": "ResponsibleAIPolicyViolation", "content_filter_result": {}},
        }
    }
)


@pytest.mark.parametrize(
    ("status", "body", "expected"),
    [
        (
            400,
            err(
                "This model's maximum context length is 8192 tokens.",
                "invalid_request_error",
                "context_length_exceeded",
                "messages",
            ),
            ContextLengthExceeded,
        ),
        (
            400,
            err("the request exceeds the available context size", "exceed_context_size_error", 400),
            ContextLengthExceeded,
        ),
        (400, AZURE_FILTER, ContentFiltered),
        (
            400,
            err(
                "Invalid value for temperature",
                "invalid_request_error",
                "invalid_value",
                "temperature",
            ),
            InvalidRequest,
        ),
        (422, err("unprocessable"), InvalidRequest),
        (
            401,
            err(
                "Incorrect API key provided: sk-abc***.", "invalid_request_error", "invalid_api_key"
            ),
            UpstreamAuthFailed,
        ),
        (
            403,
            err(
                "Country, region, or territory not supported",
                "request_forbidden",
                "unsupported_country_region_territory",
            ),
            UpstreamAuthFailed,
        ),
        (
            404,
            err("The model `gpt-9` does not exist", "invalid_request_error", "model_not_found"),
            UpstreamModelNotFound,
        ),
        (
            404,
            orjson.dumps(
                {
                    "error": {
                        "message": 'model "llama9" not found, try pulling it first',
                        "type": "not_found_error",
                        "param": None,
                        "code": None,
                    }
                }
            ),
            UpstreamModelNotFound,
        ),
        (408, err("timeout"), UpstreamTimeout),
        (409, err("lock timeout"), UpstreamError),
        (413, err("too big"), RequestTooLarge),
        (429, err("Rate limit reached", "requests", "rate_limit_exceeded"), UpstreamRateLimited),
        (
            429,
            err("You exceeded your current quota", "insufficient_quota", "insufficient_quota"),
            UpstreamQuotaExceeded,
        ),
        (500, err("The server had an error", "server_error"), UpstreamError),
        (502, b"<html>bad gateway</html>", UpstreamError),
        (503, err("Loading model", "unavailable_error", 503), UpstreamOverloaded),
        (504, b"", UpstreamTimeout),
    ],
)
def test_status_and_body_classification(
    status: int, body: bytes, expected: type[HeadwayError]
) -> None:
    exc = classify_error(status, body, {}, provider="up")
    assert type(exc) is expected
    assert exc.provider == "up"
    assert exc.upstream_status == status


def test_caller_errors_keep_message_code_and_param() -> None:
    exc = classify_error(
        400,
        err(
            "Invalid value for temperature", "invalid_request_error", "invalid_value", "temperature"
        ),
        {},
    )
    assert (exc.message, exc.code, exc.param) == (
        "Invalid value for temperature",
        "invalid_value",
        "temperature",
    )
    assert not exc.fallback_eligible
    ctx = classify_error(
        400, err("maximum context length is 10", code="context_length_exceeded"), {}
    )
    assert ctx.param == "messages" and ctx.code == "context_length_exceeded"


def test_upstream_failures_are_fallback_eligible_and_auth_is_not_retried() -> None:
    missing = classify_error(404, err("no such model"), {})
    assert missing.fallback_eligible and not missing.retryable
    auth = classify_error(401, err("bad key"), {})
    assert auth.fallback_eligible and not auth.retryable
    assert "bad key" in auth.message
    quota = classify_error(429, err("quota", "insufficient_quota", "insufficient_quota"), {})
    assert quota.fallback_eligible and not quota.retryable
    assert classify_error(500, b"", {}).retryable


def test_vllm_flat_body_and_int_code() -> None:
    flat = orjson.dumps(
        {
            "object": "error",
            "message": "bad top_k",
            "type": "BadRequestError",
            "param": None,
            "code": 400,
        }
    )
    exc = classify_error(400, flat, {})
    assert type(exc) is InvalidRequest and exc.message == "bad top_k"
    assert exc.code is None  # an integer code is a status, not an error code


def test_string_error_body() -> None:
    exc = classify_error(404, b'{"error": "model not found"}', {})
    assert type(exc) is UpstreamModelNotFound and "model not found" in exc.message


@pytest.mark.parametrize(
    ("headers", "message", "expected"),
    [
        ({"retry-after-ms": "1500", "retry-after": "9"}, "", 1.5),
        ({"Retry-After": "2"}, "", 2.0),
        (
            {
                "retry-after": "Wed, 21 Oct 2026 07:28:30 GMT",
                "date": "Wed, 21 Oct 2026 07:28:00 GMT",
            },
            "",
            30.0,
        ),
        ({"retry-after": "Wed, 21 Oct 2026 07:28:30 GMT"}, "", None),  # no Date to measure from
        ({}, "Rate limit reached ... Please try again in 1.4s. Visit ...", 1.4),
        ({}, "Please try again in 6m0s.", 360.0),
        ({}, "Please try again in 20ms.", 0.02),
        ({}, "Please retry after 6 seconds.", 6.0),
        ({}, "slow down", None),
    ],
)
def test_retry_after_sources(headers: dict[str, str], message: str, expected: float | None) -> None:
    value = retry_after(headers, message)
    assert value == (pytest.approx(expected) if expected is not None else None)
    if headers or expected is not None:
        exc = classify_error(
            429, err(message or "limited", "tokens", "rate_limit_exceeded"), headers
        )
        assert exc.retry_after == (pytest.approx(expected) if expected is not None else None)


def test_overloaded_carries_retry_after() -> None:
    exc = classify_error(503, err("busy"), {"retry-after": "3"})
    assert isinstance(exc, UpstreamOverloaded) and exc.retry_after == 3.0


@pytest.mark.parametrize(
    ("raw", "seconds"),
    [
        ("6m0s", 360.0),
        ("1.5s", 1.5),
        ("20ms", 0.02),
        ("1h2m3s", 3723.0),
        ("0", 0.0),
        ("60", 60.0),
        ("250us", 0.00025),
    ],
)
def test_go_durations(raw: str, seconds: float) -> None:
    assert parse_duration(raw) == pytest.approx(seconds)


@pytest.mark.parametrize("raw", ["", "-1", "soon", "1x", "s", "5m junk"])
def test_bad_durations(raw: str) -> None:
    assert parse_duration(raw) is None


def test_retry_hint_needs_a_duration() -> None:
    assert retry_hint("try again in a bit") is None


def test_ratelimit_snapshot_from_the_six_headers() -> None:
    headers = {
        "x-ratelimit-limit-requests": "5000",
        "x-ratelimit-remaining-requests": "4999",
        "x-ratelimit-reset-requests": "12ms",
        "X-RateLimit-Limit-Tokens": "160000",
        "x-ratelimit-remaining-tokens": "159976",
        "x-ratelimit-reset-tokens": "6m0s",
    }
    snap = ratelimit_snapshot(headers, 1000.0)
    assert snap is not None
    assert (snap.limit_requests, snap.remaining_requests) == (5000, 4999)
    assert snap.reset_requests_at == pytest.approx(1000.012)
    assert (snap.limit_tokens, snap.remaining_tokens) == (160000, 159976)
    assert snap.reset_tokens_at == pytest.approx(1360.0)
    assert snap.observed_at == 1000.0
    # the transport's own case-insensitive headers are read as they are, without a copy
    received = Headers()
    for name, value in headers.items():
        received.add(name.lower(), value)
    assert ratelimit_snapshot(received, 1000.0) == snap
    assert retry_after(received) == retry_after(headers)


def test_ratelimit_snapshot_tolerates_azure_sentinels_and_subsets() -> None:
    azure = {
        "x-ratelimit-limit-tokens": "-1",
        "x-ratelimit-reset-tokens": "0",
        "x-ratelimit-remaining-requests": "99",
    }
    snap = ratelimit_snapshot(azure, 50.0)
    assert snap is not None
    assert snap.remaining_requests == 99 and snap.limit_requests is None
    assert (snap.limit_tokens, snap.remaining_tokens, snap.reset_tokens_at) == (None, None, None)
    only_sentinel = {"x-ratelimit-limit-tokens": "-1", "x-ratelimit-reset-tokens": "0"}
    assert ratelimit_snapshot(only_sentinel, 50.0) is None
    assert ratelimit_snapshot({"content-type": "application/json"}, 50.0) is None
