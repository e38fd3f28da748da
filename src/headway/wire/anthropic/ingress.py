"""Anthropic Messages request bodies -> neutral `ChatRequest` (headway's Anthropic ingress).

Validation errors are `InvalidRequest` naming the offending parameter the way Anthropic does
(`messages.1.content.0.type: ...`), so the Anthropic SDK shows callers a familiar message.

Mapping (providers.md 4.2, 4.4, 6.3): the top-level `system` becomes one system message;
`tool_use` blocks become the assistant message's `tool_calls` (input serialised to a JSON string);
each `tool_result` block becomes a neutral `tool` message, in order, so a user turn mixing results
and text splits into tool messages followed by a user message. Anthropic streams always report
usage, so `include_usage` is always set. Fields with no neutral equivalent that matter when the
upstream is Anthropic too (`top_k`, `thinking`, `service_tier`, `cache_control`) travel in
`extra["anthropic"]`: the Anthropic egress merges them back (Gemini reads `top_k`); no other
egress may forward that key.
"""

from __future__ import annotations

from typing import Any

import orjson

from headway.errors import InvalidRequest
from headway.types import ChatRequest, ContentPart, ImagePart, Message, TextPart, ToolCall, ToolSpec
from headway.wire.util import data_url

#: fields forwarded untouched to an Anthropic upstream (and dropped for any other)
PASSTHROUGH = ("top_k", "thinking", "service_tier", "cache_control")

_TOOL_CHOICE = {"auto": "auto", "any": "required", "none": "none"}


def _fail(param: str, message: str) -> InvalidRequest:
    return InvalidRequest(f"{param}: {message}", param=param)


def _number(body: dict[str, Any], key: str, lo: float, hi: float) -> float | None:
    value = body.get(key)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise _fail(key, "Input should be a valid number")
    if not lo <= value <= hi:
        raise _fail(key, f"Input should be between {lo:g} and {hi:g}")
    return float(value)


def parse_messages_request(body: Any, *, require_max_tokens: bool = True) -> ChatRequest:
    """Validate and translate a `POST /v1/messages` body. `require_max_tokens=False` serves
    `POST /v1/messages/count_tokens`, whose body has no `max_tokens`."""
    if not isinstance(body, dict):
        raise InvalidRequest("request body must be a JSON object")
    model = body.get("model")
    if not isinstance(model, str) or not model:
        raise _fail("model", "Field required")
    max_tokens = body.get("max_tokens")
    if max_tokens is None:
        if require_max_tokens:
            raise _fail("max_tokens", "Field required")
    elif isinstance(max_tokens, bool) or not isinstance(max_tokens, int) or max_tokens < 1:
        raise _fail("max_tokens", "Input should be an integer greater than or equal to 1")
    raw_messages = body.get("messages")
    if not isinstance(raw_messages, list) or not raw_messages:
        raise _fail(
            "messages",
            "Field required" if raw_messages is None else "at least one message is required",
        )

    messages: list[Message] = []
    system = _system(body.get("system"))
    if system:
        messages.append(Message(role="system", content=system))
    for i, raw in enumerate(raw_messages):
        messages.extend(_message(raw, f"messages.{i}"))

    stream = body.get("stream", False)
    if not isinstance(stream, bool):
        raise _fail("stream", "Input should be a valid boolean")
    stop = body.get("stop_sequences") or ()
    if not isinstance(stop, list | tuple) or not all(isinstance(s, str) for s in stop):
        raise _fail("stop_sequences", "Input should be a list of strings")
    choice, parallel = _tool_choice(body.get("tool_choice"))

    top_k = body.get("top_k")
    if top_k is not None and (isinstance(top_k, bool) or not isinstance(top_k, int) or top_k < 0):
        raise _fail("top_k", "Input should be a non-negative integer")
    passthrough = {key: body[key] for key in PASSTHROUGH if body.get(key) is not None}
    extra: dict[str, Any] = {"anthropic": passthrough} if passthrough else {}

    return ChatRequest(
        model=model,
        messages=tuple(messages),
        max_tokens=max_tokens,
        temperature=_number(body, "temperature", 0.0, 1.0),
        top_p=_number(body, "top_p", 0.0, 1.0),
        stop=tuple(stop),
        tools=_tools(body.get("tools")),
        tool_choice=choice,
        parallel_tool_calls=parallel,
        response_format=_response_format(body.get("output_config")),
        user=_user(body.get("metadata")),
        stream=stream,
        include_usage=True,
        extra=extra,
    )


def _system(raw: Any) -> str:
    if raw is None:
        return ""
    if isinstance(raw, str):
        return raw
    if not isinstance(raw, list):
        raise _fail("system", "Input should be a string or a list of text blocks")
    texts: list[str] = []
    for j, block in enumerate(raw):
        if not isinstance(block, dict) or block.get("type") != "text":
            raise _fail(f"system.{j}.type", "only text blocks are allowed in system")
        text = block.get("text")
        if not isinstance(text, str):
            raise _fail(f"system.{j}.text", "Field required")
        texts.append(text)
    return "\n".join(texts)


def _message(raw: Any, at: str) -> list[Message]:
    if not isinstance(raw, dict):
        raise _fail(at, "Input should be an object")
    role = raw.get("role")
    if role not in ("user", "assistant"):
        raise _fail(f"{at}.role", "Input should be 'user' or 'assistant'")
    content = raw.get("content")
    if isinstance(content, str):
        return [Message(role=role, content=content)]
    if not isinstance(content, list):
        raise _fail(f"{at}.content", "Input should be a string or a list of content blocks")
    if role == "assistant":
        return [_assistant(content, at)]
    return _user_turn(content, at)


def _assistant(blocks: list[Any], at: str) -> Message:
    texts: list[str] = []
    calls: list[ToolCall] = []
    for j, block in enumerate(blocks):
        where = f"{at}.content.{j}"
        kind = block.get("type") if isinstance(block, dict) else None
        if kind == "text":
            texts.append(_text_of(block, where))
        elif kind == "tool_use":
            calls.append(_tool_use(block, where))
        elif kind in ("thinking", "redacted_thinking"):
            continue  # reasoning of an earlier turn: not replayable across providers
        else:
            raise _fail(
                f"{where}.type", f"unsupported content block type {kind!r} in assistant turn"
            )
    text = "".join(texts)
    return Message(role="assistant", content=text if texts else None, tool_calls=tuple(calls))


def _user_turn(blocks: list[Any], at: str) -> list[Message]:
    out: list[Message] = []
    parts: list[ContentPart] = []
    for j, block in enumerate(blocks):
        where = f"{at}.content.{j}"
        kind = block.get("type") if isinstance(block, dict) else None
        if kind == "tool_result":
            if parts:
                out.append(Message(role="user", content=tuple(parts)))
                parts = []
            out.append(_tool_result(block, where))
        elif kind in ("text", "image"):
            parts.append(_part(block, where))
        else:
            raise _fail(f"{where}.type", f"unsupported content block type {kind!r}")
    if parts:
        out.append(Message(role="user", content=tuple(parts)))
    return out


def _text_of(block: dict[str, Any], where: str) -> str:
    text = block.get("text")
    if not isinstance(text, str):
        raise _fail(f"{where}.text", "Field required")
    return text


def _part(block: dict[str, Any], where: str) -> ContentPart:
    if block.get("type") == "text":
        return TextPart(_text_of(block, where))
    source = block.get("source")
    if not isinstance(source, dict):
        raise _fail(f"{where}.source", "Field required")
    kind = source.get("type")
    if kind == "base64":
        media_type, data = source.get("media_type"), source.get("data")
        if not isinstance(media_type, str) or not isinstance(data, str):
            raise _fail(f"{where}.source", "base64 sources need media_type and data")
        return ImagePart(url=data_url(media_type, data), media_type=media_type, data=data)
    if kind == "url":
        url = source.get("url")
        if not isinstance(url, str):
            raise _fail(f"{where}.source.url", "Field required")
        return ImagePart(url=url)
    raise _fail(f"{where}.source.type", f"unsupported image source {kind!r}")


def _tool_use(block: dict[str, Any], where: str) -> ToolCall:
    call_id, name, args = block.get("id"), block.get("name"), block.get("input", {})
    if not isinstance(call_id, str) or not call_id:
        raise _fail(f"{where}.id", "Field required")
    if not isinstance(name, str) or not name:
        raise _fail(f"{where}.name", "Field required")
    if not isinstance(args, dict):
        raise _fail(f"{where}.input", "Input should be an object")
    return ToolCall(id=call_id, name=name, arguments=orjson.dumps(args).decode())


def _tool_result(block: dict[str, Any], where: str) -> Message:
    call_id = block.get("tool_use_id")
    if not isinstance(call_id, str) or not call_id:
        raise _fail(f"{where}.tool_use_id", "Field required")
    raw = block.get("content", "")
    content: str | tuple[ContentPart, ...]
    if raw is None or isinstance(raw, str):
        content = raw or ""
    elif isinstance(raw, list):
        parts: list[ContentPart] = []
        for k, inner in enumerate(raw):
            if not isinstance(inner, dict) or inner.get("type") not in ("text", "image"):
                raise _fail(f"{where}.content.{k}.type", "only text and image blocks are allowed")
            parts.append(_part(inner, f"{where}.content.{k}"))
        content = tuple(parts)
    else:
        raise _fail(f"{where}.content", "Input should be a string or a list of blocks")
    return Message(
        role="tool", content=content, tool_call_id=call_id, is_error=bool(block.get("is_error"))
    )


def _tools(raw: Any) -> tuple[ToolSpec, ...]:
    if raw is None:
        return ()
    if not isinstance(raw, list):
        raise _fail("tools", "Input should be a list")
    specs: list[ToolSpec] = []
    for i, tool in enumerate(raw):
        if not isinstance(tool, dict):
            raise _fail(f"tools.{i}", "Input should be an object")
        if tool.get("type") not in (None, "custom"):
            raise _fail(f"tools.{i}.type", f"server tool {tool.get('type')!r} is not supported")
        name, schema = tool.get("name"), tool.get("input_schema")
        if not isinstance(name, str) or not name:
            raise _fail(f"tools.{i}.name", "Field required")
        if not isinstance(schema, dict):
            raise _fail(f"tools.{i}.input_schema", "Field required")
        description = tool.get("description")
        specs.append(ToolSpec(name=name, description=description, parameters=schema))
    return tuple(specs)


def _tool_choice(raw: Any) -> tuple[str | None, bool | None]:
    if raw is None:
        return None, None
    if not isinstance(raw, dict):
        raise _fail("tool_choice", "Input should be an object")
    kind = raw.get("type")
    parallel = False if raw.get("disable_parallel_tool_use") else None
    if kind == "tool":
        name = raw.get("name")
        if not isinstance(name, str) or not name:
            raise _fail("tool_choice.name", "Field required")
        return name, parallel
    if kind not in _TOOL_CHOICE:
        raise _fail("tool_choice.type", "Input should be 'auto', 'any', 'tool' or 'none'")
    return _TOOL_CHOICE[kind], parallel


def _response_format(raw: Any) -> dict[str, Any] | None:
    if not isinstance(raw, dict):
        return None
    fmt = raw.get("format")
    if not isinstance(fmt, dict) or fmt.get("type") != "json_schema":
        return None
    schema = fmt.get("schema")
    if not isinstance(schema, dict):
        raise _fail("output_config.format.schema", "Field required")
    return {"type": "json_schema", "json_schema": {"name": "output", "schema": schema}}


def _user(raw: Any) -> str | None:
    if not isinstance(raw, dict):
        return None
    user = raw.get("user_id")
    return user if isinstance(user, str) and user else None
