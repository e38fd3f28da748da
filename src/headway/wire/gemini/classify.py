"""Gemini (Google RPC style) failures -> the error tree (providers.md 5.5).

The RPC `status` decides where it can: `RESOURCE_EXHAUSTED` is a quota (`UpstreamRateLimited`,
retry-after from the `RetryInfo.retryDelay` detail — Gemini sends no Retry-After header),
`UNAVAILABLE` is capacity (`UpstreamOverloaded`). An invalid API key comes back as 400
`INVALID_ARGUMENT` with `ErrorInfo.reason = API_KEY_INVALID`: that is headway's credential, not
the caller's request, so it is `UpstreamAuthFailed` (another deployment may work). Errors name
no provider: `HttpProvider` tags them with the deployment's configured provider name.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

import orjson

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
from headway.wire.util import body_text, parse_retry_after

_BY_RPC: dict[str, type[HeadwayError]] = {
    "INVALID_ARGUMENT": InvalidRequest,
    "OUT_OF_RANGE": InvalidRequest,
    "FAILED_PRECONDITION": UpstreamAuthFailed,  # billing or region: the account, not the call
    "UNAUTHENTICATED": UpstreamAuthFailed,
    "PERMISSION_DENIED": UpstreamAuthFailed,
    "NOT_FOUND": UpstreamModelNotFound,
    "RESOURCE_EXHAUSTED": UpstreamRateLimited,
    "INTERNAL": UpstreamError,
    "UNKNOWN": UpstreamError,
    "UNAVAILABLE": UpstreamOverloaded,
    "DEADLINE_EXCEEDED": UpstreamTimeout,
}

_BY_STATUS: dict[int, type[HeadwayError]] = {
    400: InvalidRequest,
    401: UpstreamAuthFailed,
    403: UpstreamAuthFailed,
    404: UpstreamModelNotFound,
    408: UpstreamTimeout,
    413: RequestTooLarge,
    429: UpstreamRateLimited,
    503: UpstreamOverloaded,
    504: UpstreamTimeout,
}

_AUTH_REASONS = frozenset({"API_KEY_INVALID", "API_KEY_EXPIRED", "API_KEY_SERVICE_BLOCKED"})
_CONTEXT_MARKERS = ("exceeds the maximum number of tokens", "input token count", "context length")
_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)s\s*$")


def parse_duration(value: Any) -> float | None:
    """A protobuf Duration string (`"37s"`, `"57.238747106s"`) as seconds."""
    if not isinstance(value, str):
        return None
    match = _DURATION.match(value)
    return float(match.group(1)) if match else None


def _details(inner: dict[str, Any], kind: str) -> list[dict[str, Any]]:
    details = inner.get("details")
    if not isinstance(details, list):
        return []
    return [
        d for d in details if isinstance(d, dict) and str(d.get("@type", "")).endswith("." + kind)
    ]


def error_from_body(
    parsed: Any,
    *,
    status: int,
    fallback_message: str = "",
    headers: Mapping[str, str] | None = None,
) -> HeadwayError:
    if isinstance(parsed, list) and parsed:
        parsed = parsed[0]
    inner = parsed.get("error") if isinstance(parsed, dict) else None
    inner = inner if isinstance(inner, dict) else {}
    rpc = inner.get("status") if isinstance(inner.get("status"), str) else ""
    message = inner.get("message")
    if not isinstance(message, str) or not message:
        message = fallback_message or f"gemini answered HTTP {status}"
    reasons = {str(d.get("reason")) for d in _details(inner, "ErrorInfo")}

    cls: type[HeadwayError]
    if reasons & _AUTH_REASONS or "api key not valid" in message.lower():
        cls = UpstreamAuthFailed
    elif rpc in _BY_RPC:
        cls = _BY_RPC[rpc]
    elif status in _BY_STATUS:
        cls = _BY_STATUS[status]
    else:
        cls = UpstreamError if status >= 500 or status < 400 else InvalidRequest
    if cls is InvalidRequest and any(m in message.lower() for m in _CONTEXT_MARKERS):
        cls = ContextLengthExceeded

    retry_after = None
    for info in _details(inner, "RetryInfo"):
        retry_after = parse_duration(info.get("retryDelay"))
    if retry_after is None and headers is not None:
        retry_after = parse_retry_after(headers)
    return cls(message, retry_after=retry_after, upstream_status=status)


def classify_error(status: int, body: bytes, headers: Mapping[str, str]) -> HeadwayError:
    try:
        parsed = orjson.loads(body)
    except orjson.JSONDecodeError:
        parsed = None
    return error_from_body(parsed, status=status, fallback_message=body_text(body), headers=headers)
