"""Small pure helpers shared by the wire formats: data URLs, retry hints, timestamps."""

from __future__ import annotations

import datetime as dt
import email.utils
from collections.abc import Mapping
from typing import Any

import orjson

from headway.wire.gemini.signature import clean


def split_data_url(url: str) -> tuple[str, str] | None:
    """`data:<mime>;base64,<data>` -> (mime, data); None for anything else (http URLs)."""
    if not url.startswith("data:"):
        return None
    head, sep, data = url[5:].partition(",")
    if not sep or not head.endswith(";base64"):
        return None
    return head[: -len(";base64")] or "application/octet-stream", data


def data_url(media_type: str, data: str) -> str:
    return f"data:{media_type};base64,{data}"


def header(headers: Mapping[str, str], name: str) -> str | None:
    """Case-insensitive lookup that works on plain dicts as well as multidicts."""
    value = headers.get(name)
    if value is not None:
        return value
    lname = name.lower()
    for key, val in headers.items():
        if key.lower() == lname:
            return val
    return None


def parse_retry_after(headers: Mapping[str, str], now: float | None = None) -> float | None:
    """Seconds to wait, from `retry-after-ms` (float ms) or `retry-after` (seconds or an HTTP
    date, which needs `now`). None when absent or unparseable; never negative."""
    raw_ms = header(headers, "retry-after-ms")
    if raw_ms:
        try:
            return max(0.0, float(raw_ms) / 1000.0)
        except ValueError:
            pass
    raw = header(headers, "retry-after")
    if not raw:
        return None
    try:
        return max(0.0, float(raw))
    except ValueError:
        pass
    if now is None:
        return None
    try:
        when = email.utils.parsedate_to_datetime(raw)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - now)


def parse_rfc3339(value: str | None) -> float | None:
    """An RFC 3339 timestamp (`2026-01-05T12:00:31Z`) as epoch seconds; None if unparseable."""
    if not value:
        return None
    try:
        parsed = dt.datetime.fromisoformat(value.replace("Z", "+00:00").replace("z", "+00:00"))
    except ValueError:
        return None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=dt.UTC)
    return parsed.timestamp()


def parse_int(value: str | None) -> int | None:
    if value is None or value == "":
        return None
    try:
        return int(float(value))
    except ValueError:
        return None


def loads_object(body: bytes | str) -> dict[str, Any] | None:
    """The JSON object in `body`, or None when it is not JSON or not an object."""
    try:
        value = orjson.loads(body)
    except orjson.JSONDecodeError:
        return None
    return value if isinstance(value, dict) else None


def body_text(body: bytes, limit: int = 500) -> str:
    return body[:limit].decode("utf-8", "replace").strip()


def plain_call_id(call_id: str) -> str:
    """A tool-call id as another provider than Gemini gets it: without the thought signature
    headway carries in it for Gemini (wire/gemini/signature.py), which means nothing elsewhere
    and would make it too long for OpenAI (40 characters at most) when a conversation begun on
    a Gemini model falls back to another. Done the same way for an assistant's calls and for the
    results that answer them, so the two still match."""
    return clean(call_id)
