"""OpenAI-shaped error bodies and rate-limit headers -> headway errors and snapshots.

Covers OpenAI and Azure (providers.md 2.8, 2.9, 3) and the compatible servers of 7.x: vLLM's
integer `code`s and flat bodies without the `error` wrapper, Ollama's `code: null`, llama.cpp's
`exceed_context_size_error`, Azure's string code `"429"` and its `-1`/`0` header sentinels.

Decisions worth knowing:
- A 404 is `UpstreamModelNotFound`: the deployment's model id is wrong or retired at *that*
  provider, which is headway's configuration problem, not the caller's; another deployment of the
  chain may well serve the call, so it is fallback-eligible (and never retried in place).
- 401/403 are `UpstreamAuthFailed`: headway's own key was refused, not the caller's.
- 429 with `insufficient_quota` is `UpstreamQuotaExceeded` (not retryable; waiting won't help).
- Errors the caller caused (400/422: bad parameters, context too long, content filter) keep the
  upstream's message, code and param so the caller can fix the request.
"""

from __future__ import annotations

import email.utils
import re
from collections.abc import Callable, Mapping
from typing import Any

from headway.errors import (
    ContentFiltered,
    ContextLengthExceeded,
    HeadwayError,
    InvalidRequest,
    RequestTooLarge,
    StreamInterrupted,
    UpstreamAuthFailed,
    UpstreamError,
    UpstreamModelNotFound,
    UpstreamOverloaded,
    UpstreamQuotaExceeded,
    UpstreamRateLimited,
    UpstreamTimeout,
)
from headway.providers.base import RateLimitSnapshot
from headway.transport.headers import Headers
from headway.wire.util import body_text, loads_object, parse_retry_after

_CONTEXT_CODES = frozenset(
    {"context_length_exceeded", "exceed_context_size_error", "context_window_exceeded"}
)
_CONTEXT_TEXT = ("maximum context length", "context length", "context window", "context size")
_FILTER_CODES = frozenset(
    {"content_filter", "content_policy_violation", "responsibleaipolicyviolation"}
)
_QUOTA_CODES = frozenset({"insufficient_quota", "billing_hard_limit_reached"})
_RATE_CODES = frozenset({"rate_limit_exceeded", "tokens", "requests", "rate_limit_error", "429"})
_OVERLOAD_CODES = frozenset({"overloaded", "overloaded_error", "unavailable_error", "server_busy"})

_TRY_AGAIN = re.compile(r"try again in ((?:\d+(?:\.\d+)?(?:ms|h|m|s))+)", re.IGNORECASE)
_RETRY_AFTER_TEXT = re.compile(r"retry after (\d+(?:\.\d+)?) ?(?:s\b|sec|second)", re.IGNORECASE)
_GO_PART = re.compile(r"(\d+(?:\.\d*)?|\.\d+)(ns|us|µs|μs|ms|s|m|h)")
_UNIT = {
    "ns": 1e-9,
    "us": 1e-6,
    "µs": 1e-6,
    "μs": 1e-6,
    "ms": 1e-3,
    "s": 1.0,
    "m": 60.0,
    "h": 3600.0,
}


# ---- durations and retry hints ----------------------------------------------------------------


def parse_duration(value: str | None) -> float | None:
    """Seconds in a Go duration (`6m0s`, `1.5s`, `20ms`, `1h2m`) or a plain number of seconds
    (Azure sends `0`). None when unparseable or negative (Azure's `-1` means "not applicable")."""
    if value is None:
        return None
    value = value.strip()
    if not value:
        return None
    try:
        seconds = float(value)
    except ValueError:
        pass
    else:
        return seconds if seconds >= 0 else None
    total = 0.0
    pos = 0
    for m in _GO_PART.finditer(value):
        if m.start() != pos:
            return None
        total += float(m.group(1)) * _UNIT[m.group(2)]
        pos = m.end()
    return total if pos == len(value) and pos > 0 else None


def retry_hint(message: str) -> float | None:
    """The delay a 429 message asks for: "Please try again in 1.4s", "retry after 6 seconds"."""
    m = _TRY_AGAIN.search(message)
    if m:
        return parse_duration(m.group(1))
    m = _RETRY_AFTER_TEXT.search(message)
    return float(m.group(1)) if m else None


def _lower(headers: Mapping[str, str]) -> Mapping[str, str]:
    # The transport's `Headers` (a dict) and aiohttp's multidicts are case-insensitive already:
    # no copy of every response header. Plain dicts (tests, other callers) are not.
    if isinstance(headers, dict) and not isinstance(headers, Headers):
        return {k.lower(): v for k, v in headers.items()}
    return headers


def retry_after(headers: Mapping[str, str], message: str = "") -> float | None:
    """`retry-after-ms`, else `retry-after` (seconds, or an HTTP date measured against the
    response's own `Date`, so no local clock is needed), else a hint in the message."""
    headers = _lower(headers)
    now: float | None = None
    date = headers.get("date")
    if date:
        try:
            now = email.utils.parsedate_to_datetime(date).timestamp()
        except (TypeError, ValueError):
            now = None
    delay = parse_retry_after(headers, now)
    if delay is None and message:
        delay = retry_hint(message)
    return delay


# ---- errors ------------------------------------------------------------------------------------


def _error_object(body: bytes) -> dict[str, Any]:
    obj = loads_object(body)
    if obj is None:
        return {"message": body_text(body)}
    err = obj.get("error")
    if isinstance(err, dict):
        return err
    if isinstance(err, str):  # `{"error": "model not found"}` (older Ollama, some proxies)
        return {"message": err}
    return obj  # vLLM's flat `{"object": "error", "message": ..., "code": 400}`


def _markers(err: Mapping[str, Any]) -> set[str]:
    out = set()
    for key in ("code", "type"):
        value = err.get(key)
        if value is not None:
            out.add(str(value).lower())
    inner = err.get("innererror")
    if isinstance(inner, dict) and inner.get("code") is not None:
        out.add(str(inner["code"]).lower())
    return out


def error_from_payload(
    status: int,
    err: Mapping[str, Any],
    headers: Mapping[str, str],
    *,
    provider: str = "openai",
    in_band: bool = False,
) -> HeadwayError:
    """Classify one error object. `in_band`: it arrived inside a 200 stream, so `status` says
    nothing and a numeric `code` (vLLM, Azure) stands in for the HTTP status."""
    message = str(err.get("message") or err.get("detail") or "").strip()
    markers = _markers(err)
    code = err.get("code")
    if in_band and (isinstance(code, int) or (isinstance(code, str) and code.isdigit())):
        status = int(code)
    elif in_band:
        status = 0
    upstream = status or None
    raw_param = err.get("param")
    param = str(raw_param) if raw_param is not None else None
    lowered = message.lower()
    label = f"{provider} ({status})" if status else provider

    if status in (0, 400, 413, 422) and (
        markers & _CONTEXT_CODES or any(t in lowered for t in _CONTEXT_TEXT)
    ):
        return ContextLengthExceeded(
            message or "the prompt is too long for the model's context window",
            param=param or "messages",
            provider=provider,
            upstream_status=upstream,
        )
    if status in (0, 400) and markers & _FILTER_CODES:
        return ContentFiltered(
            message or "the provider's content filter blocked the request",
            param=param,
            provider=provider,
            upstream_status=upstream,
        )
    text = f"upstream {label}: {message or 'no message'}"
    kw: dict[str, Any] = {"provider": provider, "upstream_status": upstream}
    if status in (401, 403):
        return UpstreamAuthFailed(text, **kw)
    if status == 404:
        return UpstreamModelNotFound(text, **kw)
    if status in (408, 504):
        return UpstreamTimeout(text, **kw)
    if status == 413:
        return RequestTooLarge(message or "request too large", param=param, **kw)
    if status == 429 or (status == 0 and markers & (_RATE_CODES | _QUOTA_CODES)):
        if markers & _QUOTA_CODES:
            return UpstreamQuotaExceeded(text, **kw)
        return UpstreamRateLimited(text, retry_after=retry_after(headers, message), **kw)
    if status == 503 or markers & _OVERLOAD_CODES:
        return UpstreamOverloaded(text, retry_after=retry_after(headers, message), **kw)
    if 400 <= status < 500 and status != 409:
        str_code = str(code) if code is not None and not str(code).isdigit() else None
        return InvalidRequest(
            message or f"upstream rejected the request ({status})", code=str_code, param=param, **kw
        )
    if in_band:
        return StreamInterrupted(f"upstream {label} failed mid-stream: {message}", **kw)
    return UpstreamError(text, retry_after=retry_after(headers), **kw)


def classify_error(
    status: int, body: bytes, headers: Mapping[str, str], *, provider: str = "openai"
) -> HeadwayError:
    """A non-2xx answer -> the most specific headway error."""
    return error_from_payload(status, _error_object(body), headers, provider=provider)


# ---- rate-limit headers -------------------------------------------------------------------------


def _count(value: str | None) -> int | None:
    if value is None:
        return None
    try:
        n = int(float(value))
    except ValueError:
        return None
    return n if n >= 0 else None


#: (limit, reset, remaining) header names of each bucket, built once rather than per response
_REQUESTS = (
    "x-ratelimit-limit-requests",
    "x-ratelimit-reset-requests",
    "x-ratelimit-remaining-requests",
)
_TOKENS = ("x-ratelimit-limit-tokens", "x-ratelimit-reset-tokens", "x-ratelimit-remaining-tokens")


def _bucket(
    get: Callable[[str], str | None], names: tuple[str, ...], now: float
) -> tuple[int | None, int | None, float | None]:
    """(limit, remaining, reset_at) for `_REQUESTS` or `_TOKENS`. A negative limit is Azure's
    "not applicable" sentinel: the bucket's other values (a `0` reset) mean nothing then."""
    raw_limit = get(names[0])
    limit = _count(raw_limit)
    if raw_limit is not None and limit is None:
        return None, None, None
    seconds = parse_duration(get(names[1]))
    reset = None if seconds is None else now + seconds
    return limit, _count(get(names[2])), reset


def ratelimit_snapshot(headers: Mapping[str, str], now: float) -> RateLimitSnapshot | None:
    """The six `x-ratelimit-*` headers (any subset) -> a snapshot with absolute reset times.
    None when the response carried none of them (local servers never do)."""
    get = _lower(headers).get
    req = _bucket(get, _REQUESTS, now)
    tok = _bucket(get, _TOKENS, now)
    if req == (None, None, None) and tok == (None, None, None):
        return None
    return RateLimitSnapshot(
        observed_at=now,
        limit_requests=req[0],
        remaining_requests=req[1],
        reset_requests_at=req[2],
        limit_tokens=tok[0],
        remaining_tokens=tok[1],
        reset_tokens_at=tok[2],
    )
