"""Neutral values as JSON-able data, so a queued call survives a restart (the job queue stores
bytes; every backend stores the same bytes)."""

from __future__ import annotations

import dataclasses
from decimal import Decimal
from typing import Any

import orjson

from headway.budgets.values import BudgetSpec
from headway.context import Principal
from headway.limits.values import LimitSpec
from headway.response_json import response_fields, response_from
from headway.types import (
    ChatRequest,
    ChatResponse,
    ContentPart,
    ImagePart,
    Message,
    TextPart,
    ToolCall,
    ToolSpec,
)

VERSION = 1


def _part(p: ContentPart) -> dict[str, Any]:
    if isinstance(p, TextPart):
        return {"t": p.text}
    return {"u": p.url, "d": p.detail, "m": p.media_type, "b": p.data}


def _unpart(d: dict[str, Any]) -> ContentPart:
    if "t" in d:
        return TextPart(d["t"])
    return ImagePart(d["u"], d.get("d"), d.get("m"), d.get("b"))


def _message(m: Message) -> dict[str, Any]:
    content: Any = m.content
    if isinstance(content, tuple):
        content = [_part(p) for p in content]
    return {
        "role": m.role,
        "content": content,
        "tool_calls": [[t.id, t.name, t.arguments] for t in m.tool_calls],
        "tool_call_id": m.tool_call_id,
        "name": m.name,
        "is_error": m.is_error,
    }


def _unmessage(d: dict[str, Any]) -> Message:
    content = d["content"]
    if isinstance(content, list):
        content = tuple(_unpart(p) for p in content)
    return Message(
        d["role"],
        content,
        tuple(ToolCall(*t) for t in d["tool_calls"]),
        d["tool_call_id"],
        d["name"],
        d["is_error"],
    )


def encode_request(r: ChatRequest) -> bytes:
    return orjson.dumps(
        {
            "v": VERSION,
            "model": r.model,
            "messages": [_message(m) for m in r.messages],
            "max_tokens": r.max_tokens,
            "temperature": r.temperature,
            "top_p": r.top_p,
            "stop": list(r.stop),
            "tools": [[t.name, t.description, t.parameters, t.strict] for t in r.tools],
            "tool_choice": r.tool_choice,
            "parallel_tool_calls": r.parallel_tool_calls,
            "response_format": r.response_format,
            "seed": r.seed,
            "n": r.n,
            "user": r.user,
            "metadata": r.metadata,
            "extra": r.extra,
        }
    )


def decode_request(raw: bytes) -> ChatRequest:
    d = orjson.loads(raw)
    return ChatRequest(
        model=d["model"],
        messages=tuple(_unmessage(m) for m in d["messages"]),
        max_tokens=d["max_tokens"],
        temperature=d["temperature"],
        top_p=d["top_p"],
        stop=tuple(d["stop"]),
        tools=tuple(ToolSpec(*t) for t in d["tools"]),
        tool_choice=d["tool_choice"],
        parallel_tool_calls=d["parallel_tool_calls"],
        response_format=d["response_format"],
        seed=d["seed"],
        n=d["n"],
        user=d["user"],
        metadata=d["metadata"],
        extra=d["extra"],
    )


def encode_response(r: ChatResponse) -> bytes:
    return orjson.dumps(response_fields(r, VERSION))


def decode_response(raw: bytes) -> ChatResponse:
    return response_from(orjson.loads(raw))


def encode_principal(p: Principal) -> bytes:
    allowed = sorted(p.allowed_models) if p.allowed_models is not None else None
    return orjson.dumps(
        {
            "tenant": p.tenant,
            "user": p.user,
            "team": p.team,
            "key_id": p.key_id,
            "allowed": allowed,
            "admin": p.is_admin,
            "limits": dataclasses.asdict(p.limits) if p.limits is not None else None,
            "budgets": (
                [[b.period, None if b.usd is None else str(b.usd), b.tokens] for b in p.budgets]
                if p.budgets is not None
                else None
            ),
        }
    )


def decode_principal(raw: bytes) -> Principal:
    d = orjson.loads(raw)
    allowed = frozenset(d["allowed"]) if d["allowed"] is not None else None
    limits = LimitSpec(**d["limits"]) if d.get("limits") is not None else None
    budgets = None
    if d.get("budgets") is not None:
        budgets = tuple(
            BudgetSpec(period, None if usd is None else Decimal(usd), tokens)
            for period, usd, tokens in d["budgets"]
        )
    return Principal(
        d["tenant"], d["user"], d["team"], d["key_id"], allowed, d["admin"], limits, budgets
    )
