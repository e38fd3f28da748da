"""Folding a neutral (OpenAI-shaped) conversation into the turns Anthropic and Gemini want.

Both APIs take system text apart from the turns, carry tool results in a user turn, and want
roles to alternate, so consecutive turns of one role are merged (a user text after tool results
joins that user turn). What differs is only the shape of an item, which the caller supplies.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import orjson

from headway.errors import InvalidRequest
from headway.types import ContentPart, Message, ToolCall

Item = dict[str, Any]


def tool_arguments(arguments: str, at: str) -> dict[str, Any]:
    """A tool call's JSON argument string as the object both APIs want; `at` names the field
    in errors. An empty string is no arguments."""
    if not arguments.strip():
        return {}
    try:
        value = orjson.loads(arguments)
    except orjson.JSONDecodeError:
        raise InvalidRequest(f"{at}: arguments are not valid JSON", param=at) from None
    if not isinstance(value, dict):
        raise InvalidRequest(f"{at}: arguments must be a JSON object", param=at)
    return value


def fold_turns(
    messages: tuple[Message, ...],
    *,
    items_key: str,
    assistant_role: str,
    content: Callable[[str | tuple[ContentPart, ...] | None], list[Item]],
    tool_result: Callable[[int, Message], Item],
    tool_call: Callable[[ToolCall, dict[str, Any]], Item],
) -> list[Item]:
    """`[{"role": ..., items_key: [...]}, ...]`: system and developer messages skipped, `tool`
    messages as `tool_result(index, message)` in a user turn, assistant tool calls appended to
    the assistant's content as `tool_call(call, parsed arguments)`; empty turns dropped."""
    out: list[Item] = []
    role: str
    for i, message in enumerate(messages):
        if message.role in ("system", "developer"):
            continue
        if message.role == "tool":
            role, items = "user", [tool_result(i, message)]
        elif message.role == "assistant":
            role, items = assistant_role, content(message.content)
            for j, call in enumerate(message.tool_calls):
                at = f"messages[{i}].tool_calls[{j}].function.arguments"
                items.append(tool_call(call, tool_arguments(call.arguments, at)))
        else:
            role, items = "user", content(message.content)
        if not items:
            continue
        if out and out[-1]["role"] == role:
            out[-1][items_key].extend(items)
        else:
            out.append({"role": role, items_key: items})
    return out
