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
    calls = r.tool_calls
    return {
        "v": version,
        "id": r.id,
        "model": r.model,
        "content": r.content,
        # `_value_` is what the enum's `value` property returns, read without the property's
        # Python-level call (once per stored answer)
        "finish": r.finish_reason._value_,
        "usage": [
            u.input_tokens,
            u.output_tokens,
            u.cached_input_tokens,
            u.cache_write_tokens,
            u.reasoning_tokens,
        ],
        # most answers call no tools: no comprehension (a function call on 3.11) for them
        "tools": [[t.id, t.name, t.arguments] for t in calls] if calls else [],
        "created": r.created,
        "refusal": r.refusal,
    }


#: finish reasons by value: `FinishReason(value)` is a Python-level call into the enum machinery
_FINISH: dict[str, FinishReason] = {reason.value: reason for reason in FinishReason}


def response_from(d: Mapping[str, Any]) -> ChatResponse:
    """The inverse of `response_fields` (the version is the caller's to check)."""
    finish = d["finish"]
    tools = d["tools"]
    return ChatResponse(  # positional: keywords to a class cost ~1k instructions each on 3.11
        d["id"],
        d["model"],
        d["content"],
        # an unknown value still raises, in FinishReason's own words
        (_FINISH.get(finish) if type(finish) is str else None) or FinishReason(finish),
        Usage(*d["usage"]),
        () if tools == [] else tuple(ToolCall(*t) for t in tools),  # no generator for none
        d["created"],
        d["refusal"],
    )
