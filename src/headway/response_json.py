"""A `ChatResponse` as JSON-able data: the one layout that both the response cache
(`cache/entry.py`) and the job queue (`degrade/codec.py`) store, so the two cannot drift apart.

Usage is a positional list and tool calls are `[id, name, arguments]` triples: stored values are
many and small, so the layout favours size over self-description; `"v"` lets a reader refuse
values written by another layout.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from headway.types import ChatResponse, FinishReason, ToolCall, Usage


def response_fields(r: ChatResponse, version: int) -> dict[str, Any]:
    """The response as a dict, `"v": version` first; callers may add their own keys after."""
    u = r.usage
    return {
        "v": version,
        "id": r.id,
        "model": r.model,
        "content": r.content,
        "finish": r.finish_reason.value,
        "usage": [
            u.input_tokens,
            u.output_tokens,
            u.cached_input_tokens,
            u.cache_write_tokens,
            u.reasoning_tokens,
        ],
        "tools": [[t.id, t.name, t.arguments] for t in r.tool_calls],
        "created": r.created,
        "refusal": r.refusal,
    }


def response_from(d: Mapping[str, Any]) -> ChatResponse:
    """The inverse of `response_fields` (the version is the caller's to check)."""
    return ChatResponse(
        id=d["id"],
        model=d["model"],
        content=d["content"],
        finish_reason=FinishReason(d["finish"]),
        usage=Usage(*d["usage"]),
        tool_calls=tuple(ToolCall(*t) for t in d["tools"]),
        created=d["created"],
        refusal=d["refusal"],
    )
