"""Neutral results -> Anthropic wire (headway's Anthropic ingress, the answering half).

- `message_json`: a `ChatResponse` as an Anthropic Message object.
- `StreamEncoder`: neutral chunks -> Anthropic SSE frames, each with an `event:` line (the SDK
  dispatches on the event name, not on `data.type`). Usage is sent in the final `message_delta`
  because OpenAI-style upstreams only report it at the end; the SDK's accumulator takes
  `input_tokens` and cache counts from `message_delta` when present.
- `error_body` / `error_status`: a `HeadwayError` in Anthropic's error shape.
"""

from __future__ import annotations

from typing import Any

import orjson

from headway.errors import AllAttemptsFailed, HeadwayError, http_status
from headway.types import ChatChunk, ChatResponse, FinishReason, ToolCall, Usage
from headway.wire.finish import to_anthropic

#: Anthropic error types by status, for errors whose class does not pin one (a failed chain
#: answers with the status of its most telling attempt)
STATUS_TYPES = {
    400: "invalid_request_error",
    401: "authentication_error",
    402: "billing_error",
    403: "permission_error",
    404: "not_found_error",
    413: "request_too_large",
    429: "rate_limit_error",
    504: "timeout_error",
    529: "overloaded_error",
}


def message_id(raw_id: str) -> str:
    return raw_id if raw_id.startswith("msg_") else f"msg_{raw_id}"


def usage_json(usage: Usage) -> dict[str, int]:
    """Anthropic counts cache reads and writes apart from `input_tokens` (providers.md 6.2)."""
    cached, written = usage.cached_input_tokens, usage.cache_write_tokens
    return {
        "input_tokens": max(0, usage.input_tokens - cached - written),
        "output_tokens": usage.output_tokens,
        "cache_creation_input_tokens": written,
        "cache_read_input_tokens": cached,
    }


def tool_input(call: ToolCall) -> dict[str, Any]:
    """Anthropic carries tool input as an object; an upstream that produced invalid JSON
    arguments still gets them through, wrapped, rather than failing the whole answer."""
    if not call.arguments.strip():
        return {}
    try:
        value = orjson.loads(call.arguments)
    except orjson.JSONDecodeError:
        return {"_raw_arguments": call.arguments}
    return value if isinstance(value, dict) else {"_value": value}


def message_json(response: ChatResponse) -> dict[str, Any]:
    content: list[dict[str, Any]] = []
    if response.content:
        content.append({"type": "text", "text": response.content})
    elif response.refusal:
        content.append({"type": "text", "text": response.refusal})
    for call in response.tool_calls:
        content.append(
            {"type": "tool_use", "id": call.id, "name": call.name, "input": tool_input(call)}
        )
    return {
        "id": message_id(response.id),
        "type": "message",
        "role": "assistant",
        "model": response.model,
        "content": content,
        "stop_reason": to_anthropic(response.finish_reason),
        "stop_sequence": None,
        "usage": usage_json(response.usage),
    }


def error_type(err: HeadwayError) -> str:
    if isinstance(err, AllAttemptsFailed):
        return STATUS_TYPES.get(err.http_status, "api_error")
    return err.anthropic_type


def error_status(err: HeadwayError) -> int:
    return http_status(err)


def error_body(err: HeadwayError, request_id: str | None = None) -> dict[str, Any]:
    body: dict[str, Any] = {
        "type": "error",
        "error": {"type": error_type(err), "message": err.message},
    }
    if request_id:
        body["request_id"] = request_id
    return body


def frame(event: str, data: dict[str, Any]) -> bytes:
    return b"event: " + event.encode() + b"\ndata: " + orjson.dumps(data) + b"\n\n"


def error_frame(err: HeadwayError) -> bytes:
    """An in-band error after the 200 went out; the SDK raises it as an APIStatusError."""
    body = {"type": "error", "error": {"type": error_type(err), "message": err.message}}
    return frame("error", body)


class StreamEncoder:
    """Neutral chunks of one stream -> Anthropic SSE bytes. `feed` each chunk, then `finish`."""

    __slots__ = (
        "_blocks",
        "_id",
        "_model",
        "_open",
        "_started",
        "_stop",
        "_text_open",
        "_tool_blocks",
        "_usage",
    )

    def __init__(self, *, message_id: str, model: str) -> None:
        self._id = message_id
        self._model = model
        self._started = False
        self._blocks = 0  # content blocks started so far; the next one gets this index
        self._open: int | None = None  # index of the block currently open
        self._text_open = False
        self._tool_blocks: dict[int, int] = {}  # neutral tool-call index -> block index
        self._stop: FinishReason | None = None
        self._usage: Usage | None = None

    def _start(self, out: list[bytes]) -> None:
        self._started = True
        message: dict[str, Any] = {
            "id": self._id,
            "type": "message",
            "role": "assistant",
            "model": self._model,
            "content": [],
            "stop_reason": None,
            "stop_sequence": None,
            "usage": {"input_tokens": 0, "output_tokens": 0},
        }
        out.append(frame("message_start", {"type": "message_start", "message": message}))
        out.append(frame("ping", {"type": "ping"}))

    def _close_open(self, out: list[bytes]) -> None:
        if self._open is not None:
            out.append(
                frame("content_block_stop", {"type": "content_block_stop", "index": self._open})
            )
            self._open = None
            self._text_open = False

    def _open_block(self, out: list[bytes], block: dict[str, Any]) -> int:
        self._close_open(out)
        index = self._blocks
        self._blocks += 1
        self._open = index
        out.append(
            frame(
                "content_block_start",
                {"type": "content_block_start", "index": index, "content_block": block},
            )
        )
        return index

    def _delta(self, out: list[bytes], index: int, delta: dict[str, Any]) -> None:
        out.append(
            frame(
                "content_block_delta",
                {"type": "content_block_delta", "index": index, "delta": delta},
            )
        )

    def feed(self, chunk: ChatChunk) -> bytes:
        out: list[bytes] = []
        if not self._started:
            self._start(out)
        # Anthropic has no refusal field: its text is the answer, as `message_json` sends it
        text = chunk.text + chunk.refusal if chunk.refusal else chunk.text
        if text:
            if not self._text_open:
                self._open_block(out, {"type": "text", "text": ""})
                self._text_open = True
            assert self._open is not None
            self._delta(out, self._open, {"type": "text_delta", "text": text})
        for delta in chunk.tool_calls:
            index = self._tool_blocks.get(delta.index)
            if index is None:
                block = {
                    "type": "tool_use",
                    "id": delta.id or f"toolu_{delta.index}",
                    "name": delta.name or "",
                    "input": {},
                }
                index = self._open_block(out, block)
                self._tool_blocks[delta.index] = index
            if delta.arguments:
                self._delta(
                    out, index, {"type": "input_json_delta", "partial_json": delta.arguments}
                )
        if chunk.finish_reason is not None:
            self._stop = chunk.finish_reason
        if chunk.usage is not None:
            self._usage = chunk.usage
        return b"".join(out)

    def finish(self) -> bytes:
        """Close the message after the neutral stream ended cleanly."""
        out: list[bytes] = []
        if not self._started:
            self._start(out)
        self._close_open(out)
        usage = usage_json(self._usage or Usage())
        stop = to_anthropic(self._stop or FinishReason.STOP)
        out.append(
            frame(
                "message_delta",
                {
                    "type": "message_delta",
                    "delta": {"stop_reason": stop, "stop_sequence": None},
                    "usage": usage,
                },
            )
        )
        out.append(frame("message_stop", {"type": "message_stop"}))
        return b"".join(out)

    @property
    def started(self) -> bool:
        return self._started
