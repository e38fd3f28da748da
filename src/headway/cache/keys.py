"""The canonical, versioned cache key of a request (pure).

The key covers everything that changes the answer: the requested model or route, every
message (role, normalised text, images, tool calls and results), tools and tool_choice,
response_format, sampling (temperature, top_p, seed, stop, max_tokens, n) and provider extras,
and the tenant scope. Fields are written in a fixed order with orjson's sorted keys, then
hashed; the version prefix changes whenever normalisation or layout changes, so old entries are
simply never found again.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Any

import orjson

from headway.cache.normalize import NORMALIZATION_VERSION, normalize_text
from headway.types import ChatRequest, ImagePart, Message, TextPart

KEY_VERSION = f"hw{NORMALIZATION_VERSION}.1"
_OPTS = orjson.OPT_SORT_KEYS | orjson.OPT_NON_STR_KEYS
#: an empty 16-byte BLAKE2b, copied per digest: a copy costs less than building one (the
#: constructor parses its keyword arguments on every call); it is never updated itself
_BLAKE2B_16 = hashlib.blake2b(digest_size=16)


def _digest(obj: Any) -> str:
    h = _BLAKE2B_16.copy()
    h.update(orjson.dumps(obj, option=_OPTS))
    return h.hexdigest()


def _content(message: Message) -> Any:
    if message.content is None or isinstance(message.content, str):
        text = message.content or ""
        # Tool results and assistant turns are data, not phrasing: only whitespace is folded.
        return normalize_text(text) if message.role in ("user", "system", "developer") else text
    parts: list[Any] = []
    for p in message.content:
        if isinstance(p, TextPart):
            parts.append(normalize_text(p.text) if message.role == "user" else p.text)
        elif isinstance(p, ImagePart):
            parts.append(["image", p.url if p.data is None else p.data, p.media_type, p.detail])
    return parts


def _message(m: Message) -> list[Any]:
    return [
        m.role,
        _content(m),
        # ids are random per call: left out (no comprehension frame for the usual none)
        [[c.name, c.arguments] for c in m.tool_calls] if m.tool_calls else [],
        m.name,
        m.is_error,
    ]


def tools_hash(request: ChatRequest) -> str:
    if not request.tools and request.tool_choice is None:
        return "-"
    return _digest(
        [
            [[t.name, t.description, t.parameters, t.strict] for t in request.tools],
            request.tool_choice,
            request.parallel_tool_calls,
        ]
    )


def system_hash(request: ChatRequest) -> str:
    text = request.system_text()
    return _digest(normalize_text(text)) if text else "-"


@dataclass(slots=True, frozen=True)
class Scope:
    """Who may share an entry: tenant, model or route, system prompt and tools."""

    tenant: str
    model: str
    system: str
    tools: str

    def id(self) -> str:
        return f"{self.tenant}|{self.model}|{self.system}|{self.tools}"


def scope_of(request: ChatRequest, tenant: str) -> Scope:
    return Scope(tenant, request.model, system_hash(request), tools_hash(request))


def tenant_tag(tenant: str) -> str:
    """The tenant as it appears in keys: readable, with ':' and '%' escaped so it splits cleanly."""
    if "%" not in tenant and ":" not in tenant:
        return tenant
    return tenant.replace("%", "%25").replace(":", "%3A")


def request_key(request: ChatRequest, tenant: str) -> str:
    """`hw1.1:<tenant>:<hash>`; the tenant stays readable so a purge can find its entries."""
    body = [
        request.model,
        list(map(_message, request.messages)),  # no comprehension frame
        # `tools_hash`'s "-" without the call when there are no tools (most requests)
        "-" if not request.tools and request.tool_choice is None else tools_hash(request),
        request.response_format,
        request.temperature,
        request.top_p,
        request.seed,
        request.stop,  # a tuple: orjson writes it as the same array as a list
        request.max_tokens,
        request.n,
        request.extra,
    ]
    return f"{KEY_VERSION}:{tenant_tag(tenant)}:{_digest(body)}"


def single_turn_text(request: ChatRequest) -> str | None:
    """The user's text when the request is one user turn (after optional system prompts)."""
    users = [m for m in request.messages if m.role not in ("system", "developer")]
    if len(users) != 1 or users[0].role != "user":
        return None
    msg = users[0]
    if not isinstance(msg.content, str) and any(
        isinstance(p, ImagePart) for p in msg.content or ()
    ):
        return None
    text = msg.text()
    return text if text.strip() else None
