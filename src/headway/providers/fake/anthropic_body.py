"""The Anthropic fake's own reading and writing of Messages API bodies (providers.md 4.2-4.6).

Written apart from `headway.wire.anthropic` on purpose: the fake is the yardstick the adapters are
measured against, so it must not share their mistakes. It accepts what the real API accepts
(system string or blocks, text/image/tool_use/tool_result blocks, tools, tool_choice) and rejects
what the real API rejects with the same 400 `invalid_request_error` wording style.
"""

from __future__ import annotations

import json
from typing import Any

from headway.errors import InvalidRequest
from headway.types import (
    ChatChunk,
    ChatRequest,
    ChatResponse,
    ContentPart,
    FinishReason,
    ImagePart,
    Message,
    TextPart,
    ToolCall,
    ToolSpec,
)

STOP_REASONS = {
    FinishReason.STOP: "end_turn",
    FinishReason.LENGTH: "max_tokens",
    FinishReason.TOOL_CALLS: "tool_use",
    FinishReason.CONTENT_FILTER: "refusal",
}

ERROR_TYPES = {
    400: "invalid_request_error",
    401: "authentication_error",
    402: "billing_error",
    403: "permission_error",
    404: "not_found_error",
    413: "request_too_large",
    429: "rate_limit_error",
    500: "api_error",
    504: "timeout_error",
    529: "overloaded_error",
}


def error_type(status: int) -> str:
    return ERROR_TYPES.get(status) or ("api_error" if status >= 500 else "invalid_request_error")


def bad(message: str) -> InvalidRequest:
    return InvalidRequest(message, upstream_status=400)


def tool_id(raw: str) -> str:
    """Anthropic's ids look like `toolu_…`; the engine's look like `call_…`."""
    return "toolu_" + raw.removeprefix("call_")


def _blocks(content: Any, where: str) -> list[dict[str, Any]]:
    if isinstance(content, str):
        return [{"type": "text", "text": content}]
    if not isinstance(content, list):
        raise bad(f"{where}: Input should be a valid string or list")
    for j, block in enumerate(content):
        if not isinstance(block, dict) or not isinstance(block.get("type"), str):
            raise bad(f"{where}.{j}: Input should be an object with a type")
        if block["type"] == "text" and not block.get("text"):
            raise bad(f"{where}.{j}: text content blocks must be non-empty")
    return content


def _image(block: dict[str, Any], where: str) -> ImagePart:
    source = block.get("source") or {}
    if source.get("type") == "base64":
        media = source.get("media_type")
        if media not in ("image/jpeg", "image/png", "image/gif", "image/webp"):
            raise bad(
                f"{where}.source.media_type: Input should be 'image/jpeg', 'image/png', 'image/gif' or 'image/webp'"
            )
        data = str(source.get("data", ""))
        return ImagePart(url=f"data:{media};base64,{data}", media_type=media, data=data)
    if source.get("type") == "url" and isinstance(source.get("url"), str):
        return ImagePart(url=source["url"])
    raise bad(f"{where}.source: Input tag does not match any of the expected tags: 'base64', 'url'")


def _user(blocks: list[dict[str, Any]], where: str) -> list[Message]:
    out: list[Message] = []
    parts: list[ContentPart] = []
    for j, block in enumerate(blocks):
        kind = block["type"]
        if kind == "text":
            parts.append(TextPart(block["text"]))
        elif kind == "image":
            parts.append(_image(block, f"{where}.{j}"))
        elif kind == "tool_result":
            result = block.get("content", "")
            if isinstance(result, list):
                result = "".join(b.get("text", "") for b in result if isinstance(b, dict))
            out.append(Message("tool", str(result), tool_call_id=str(block.get("tool_use_id", ""))))
        else:
            raise bad(f"{where}.{j}.type: unexpected block type {kind!r} in a user turn")
    if parts:
        out.append(Message("user", tuple(parts)))
    return out


def _assistant(blocks: list[dict[str, Any]], where: str) -> Message:
    text = ""
    calls: list[ToolCall] = []
    for j, block in enumerate(blocks):
        if block["type"] == "text":
            text += block["text"]
        elif block["type"] == "tool_use":
            if not isinstance(block.get("input"), dict):
                raise bad(f"{where}.{j}.input: Input should be a valid dictionary")
            calls.append(
                ToolCall(str(block.get("id")), str(block.get("name")), json.dumps(block["input"]))
            )
        elif block["type"] not in ("thinking", "redacted_thinking"):
            raise bad(
                f"{where}.{j}.type: unexpected block type {block['type']!r} in an assistant turn"
            )
    return Message("assistant", text or None, tool_calls=tuple(calls))


def parse_request(body: Any, *, count_only: bool = False) -> ChatRequest:
    if not isinstance(body, dict):
        raise bad("Request body must be a JSON object")
    model = body.get("model")
    if not isinstance(model, str):
        raise bad("model: Field required")
    max_tokens = body.get("max_tokens")
    if not count_only:
        if max_tokens is None:
            raise bad("max_tokens: Field required")
        if not isinstance(max_tokens, int) or isinstance(max_tokens, bool) or max_tokens < 1:
            raise bad("max_tokens: Input should be a valid integer greater than or equal to 1")
    raw = body.get("messages")
    if not isinstance(raw, list) or not raw:
        raise bad(
            "messages: Field required"
            if raw is None
            else "messages: at least one message is required"
        )
    messages: list[Message] = []
    system = body.get("system")
    if isinstance(system, list):
        system = "".join(b.get("text", "") for b in system if isinstance(b, dict))
    if system:
        messages.append(Message("system", str(system)))
    for i, msg in enumerate(raw):
        role = msg.get("role") if isinstance(msg, dict) else None
        if role not in ("user", "assistant"):
            raise bad(f"messages.{i}.role: Input should be 'user' or 'assistant'")
        if i == 0 and role != "user":
            raise bad('messages: first message must use the "user" role')
        blocks = _blocks(msg.get("content"), f"messages.{i}.content")
        if role == "user":
            messages.extend(_user(blocks, f"messages.{i}.content"))
        else:
            messages.append(_assistant(blocks, f"messages.{i}.content"))
    temperature = body.get("temperature")
    if temperature is not None and not (
        isinstance(temperature, int | float) and 0 <= temperature <= 1
    ):
        raise bad("temperature: Input should be less than or equal to 1")
    tools = tuple(
        ToolSpec(str(t.get("name")), t.get("description"), t.get("input_schema") or {})
        for t in body.get("tools") or ()
        if isinstance(t, dict)
    )
    choice_raw = body.get("tool_choice") or {}
    choice: str | None = {"auto": "auto", "any": "required", "none": "none"}.get(
        choice_raw.get("type", "")
    )
    if choice_raw.get("type") == "tool":
        choice = str(choice_raw.get("name"))
    return ChatRequest(
        model=model,
        messages=tuple(messages),
        max_tokens=max_tokens,
        temperature=temperature,
        stop=tuple(body.get("stop_sequences") or ()),
        tools=tools,
        tool_choice=choice,
        parallel_tool_calls=False if choice_raw.get("disable_parallel_tool_use") else None,
        stream=bool(body.get("stream")),
    )


def usage(input_tokens: int, output_tokens: int) -> dict[str, Any]:
    return {
        "input_tokens": input_tokens,
        "cache_creation_input_tokens": 0,
        "cache_read_input_tokens": 0,
        "cache_creation": {"ephemeral_5m_input_tokens": 0, "ephemeral_1h_input_tokens": 0},
        "output_tokens": output_tokens,
        "service_tier": "standard",
    }


def message(resp: ChatResponse, msg_id: str) -> dict[str, Any]:
    content: list[dict[str, Any]] = []
    if resp.content:
        content.append({"type": "text", "text": resp.content})
    for call in resp.tool_calls:
        content.append(
            {
                "type": "tool_use",
                "id": tool_id(call.id),
                "name": call.name,
                "input": json.loads(call.arguments or "{}"),
            }
        )
    return {
        "id": msg_id,
        "type": "message",
        "role": "assistant",
        "model": resp.model,
        "content": content,
        "stop_reason": STOP_REASONS[resp.finish_reason],
        "stop_sequence": None,
        "usage": usage(resp.usage.input_tokens, resp.usage.output_tokens),
    }


def sse(event: str, data: dict[str, Any]) -> bytes:
    return f"event: {event}\ndata: {json.dumps(data, separators=(',', ':'))}\n\n".encode()


class EventWriter:
    """Engine chunks -> the Anthropic event sequence: message_start, blocks (text, tool_use with
    input_json_delta), pings, message_delta with the stop reason and usage, message_stop."""

    def __init__(self, msg_id: str, model: str, input_tokens: int) -> None:
        self.msg_id, self.model, self.input_tokens = msg_id, model, input_tokens
        self.block = -1
        self.kind: str | None = None
        self.events = 0

    def start(self) -> bytes:
        message: dict[str, Any] = {
            "id": self.msg_id,
            "type": "message",
            "role": "assistant",
            "model": self.model,
            "content": [],
            "stop_reason": None,
            "stop_sequence": None,
            "usage": usage(self.input_tokens, 1),
        }
        return sse("message_start", {"type": "message_start", "message": message})

    def _open(self, block: dict[str, Any]) -> bytes:
        out = self._close()
        self.block += 1
        self.kind = block["type"]
        out += sse(
            "content_block_start",
            {"type": "content_block_start", "index": self.block, "content_block": block},
        )
        if self.block == 0:
            out += sse("ping", {"type": "ping"})
        return out

    def _close(self) -> bytes:
        if self.kind is None:
            return b""
        self.kind = None
        return sse("content_block_stop", {"type": "content_block_stop", "index": self.block})

    def _delta(self, delta: dict[str, Any]) -> bytes:
        self.events += 1
        out = sse(
            "content_block_delta",
            {"type": "content_block_delta", "index": self.block, "delta": delta},
        )
        if self.events % 20 == 0:
            out += sse("ping", {"type": "ping"})
        return out

    def chunk(self, chunk: ChatChunk) -> bytes:
        out = b""
        if chunk.text:
            if self.kind != "text":
                out += self._open({"type": "text", "text": ""})
            out += self._delta({"type": "text_delta", "text": chunk.text})
        for delta in chunk.tool_calls:
            if delta.id is not None:
                block: dict[str, Any] = {
                    "type": "tool_use",
                    "id": tool_id(delta.id),
                    "name": delta.name,
                    "input": {},
                }
                out += self._open(block)
                out += self._delta({"type": "input_json_delta", "partial_json": ""})
            if delta.arguments:
                out += self._delta({"type": "input_json_delta", "partial_json": delta.arguments})
        return out

    def finish(self, reason: FinishReason, output_tokens: int) -> bytes:
        out = self._close()
        delta = {"stop_reason": STOP_REASONS[reason], "stop_sequence": None}
        out += sse(
            "message_delta",
            {"type": "message_delta", "delta": delta, "usage": {"output_tokens": output_tokens}},
        )
        return out + sse("message_stop", {"type": "message_stop"})
