"""Anthropic failures -> the error tree, and `anthropic-ratelimit-*` headers -> a snapshot.

Classification (providers.md 4.6): 429 is the account's limit (`UpstreamRateLimited`, with the
`retry-after` hint); 529 is Anthropic's capacity (`UpstreamOverloaded`); 401/402/403 mean
headway's own key or account was refused (another deployment may work); 404 is a model the
deployment names but Anthropic does not serve; 400 and 413 are the caller's request (a too-long
prompt becomes `ContextLengthExceeded`). In-band `event: error` frames arrive with status 200 and
are classified by their error type alone. Errors name no provider: `HttpProvider` tags them
with the deployment's configured provider name.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from headway.errors import (
    ContextLengthExceeded,
    HeadwayError,
    InvalidRequest,
    RequestTooLarge,
    UpstreamAuthFailed,
    UpstreamError,
    UpstreamModelNotFound,
    UpstreamOverloaded,
    UpstreamRateLimited,
    UpstreamTimeout,
)
from headway.providers.base import RateLimitSnapshot
from headway.wire.util import body_text, loads_object, parse_int, parse_retry_after, parse_rfc3339

_BY_STATUS: dict[int, type[HeadwayError]] = {
    400: InvalidRequest,
    401: UpstreamAuthFailed,
    402: UpstreamAuthFailed,
    403: UpstreamAuthFailed,
    404: UpstreamModelNotFound,
    408: UpstreamTimeout,
    409: UpstreamError,
    413: RequestTooLarge,
    429: UpstreamRateLimited,
    504: UpstreamTimeout,
    529: UpstreamOverloaded,
}

_BY_TYPE: dict[str, type[HeadwayError]] = {
    "invalid_request_error": InvalidRequest,
    "authentication_error": UpstreamAuthFailed,
    "billing_error": UpstreamAuthFailed,
    "permission_error": UpstreamAuthFailed,
    "not_found_error": UpstreamModelNotFound,
    "request_too_large": RequestTooLarge,
    "rate_limit_error": UpstreamRateLimited,
    "timeout_error": UpstreamTimeout,
    "overloaded_error": UpstreamOverloaded,
    "api_error": UpstreamError,
}

_CONTEXT_MARKERS = ("prompt is too long", "exceed context limit", "context window")


def _class_for(status: int, etype: str | None) -> type[HeadwayError]:
    if status == 200:  # an in-band stream error: only its type says what happened
        return _BY_TYPE.get(etype or "", UpstreamError)
    cls = _BY_STATUS.get(status)
    if cls is not None:
        return cls
    if status >= 500:
        return UpstreamError
    if 400 <= status < 500:
        return InvalidRequest
    return UpstreamError


def error_from_body(
    parsed: dict[str, Any] | None,
    *,
    status: int,
    fallback_message: str = "",
    retry_after: float | None = None,
) -> HeadwayError:
    inner = (parsed or {}).get("error")
    inner = inner if isinstance(inner, dict) else {}
    etype = inner.get("type") if isinstance(inner.get("type"), str) else None
    message = inner.get("message")
    if not isinstance(message, str) or not message:
        message = fallback_message or f"anthropic answered HTTP {status}"
    cls = _class_for(status, etype)
    if cls is InvalidRequest and any(m in message.lower() for m in _CONTEXT_MARKERS):
        cls = ContextLengthExceeded
    return cls(
        message,
        retry_after=retry_after,
        upstream_status=status,
    )


def classify_error(status: int, body: bytes, headers: Mapping[str, str]) -> HeadwayError:
    return error_from_body(
        loads_object(body),
        status=status,
        fallback_message=body_text(body),
        retry_after=parse_retry_after(headers),
    )


_KINDS = {
    "requests": ("limit_requests", "remaining_requests", "reset_requests_at"),
    "tokens": ("limit_tokens", "remaining_tokens", "reset_tokens_at"),
    "input-tokens": ("limit_input_tokens", "remaining_input_tokens", "reset_input_tokens_at"),
    "output-tokens": ("limit_output_tokens", "remaining_output_tokens", "reset_output_tokens_at"),
}
_PREFIX = "anthropic-ratelimit-"


def ratelimit_snapshot(headers: Mapping[str, str], now: float) -> RateLimitSnapshot | None:
    """Reset values are RFC 3339 instants at which the bucket is fully refilled (providers.md
    4.8); they are absolute already, so `now` only stamps the observation."""
    # every header of every answer passes here: each name lower-cased once
    found = {name: v for k, v in headers.items() if (name := k.lower()).startswith(_PREFIX)}
    if not found:
        return None
    snapshot = RateLimitSnapshot(observed_at=now)
    for kind, (limit, remaining, reset) in _KINDS.items():
        base = _PREFIX + kind
        setattr(snapshot, limit, parse_int(found.get(base + "-limit")))
        setattr(snapshot, remaining, parse_int(found.get(base + "-remaining")))
        setattr(snapshot, reset, parse_rfc3339(found.get(base + "-reset")))
    return snapshot
