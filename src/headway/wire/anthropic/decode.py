"""Anthropic responses and stream events -> neutral values (egress, the reading half).

Usage (providers.md 6.2): Anthropic's `input_tokens` excludes cache reads and writes; the neutral
`Usage.input_tokens` includes both, so it is the sum of the three.

Stream (providers.md 4.5): events are dispatched by their `event:` name (the data's `type` when a
server leaves the name out). `ping` and unknown events are ignored; `event: error` raises the
classified error; `message_stop` is the terminator, and a body that ends without it raises
`StreamInterrupted`. The finish reason and the usage come in one last chunk at `message_stop`,
since `message_delta` usage is cumulative and may be repeated.
"""

from __future__ import annotations

from typing import Any

import orjson

from headway.errors import StreamInterrupted, UpstreamError
from headway.providers.base import SSEEvent
from headway.types import ChatChunk, ChatResponse, FinishReason, ToolCall, ToolCallDelta, Usage
from headway.wire.anthropic.classify import error_from_body
from headway.wire.finish import from_anthropic
from headway.wire.util import loads_object

_USAGE_KEYS = (
    "input_tokens",
    "output_tokens",
    "cache_creation_input_tokens",
    "cache_read_input_tokens",
)


def usage_from(raw: dict[str, Any] | None) -> Usage:
    raw = raw or {}
    uncached = int(raw.get("input_tokens") or 0)
    written = int(raw.get("cache_creation_input_tokens") or 0)
    read = int(raw.get("cache_read_input_tokens") or 0)
    # positional (input, output, cached input, cache writes): keywords to a class cost ~1k
    # instructions each on Python 3.11, and this runs once per answer
    return Usage(uncached + written + read, int(raw.get("output_tokens") or 0), read, written)


def parse_message(body: bytes) -> ChatResponse:
    data = loads_object(body)
    if data is None or not isinstance(data.get("content"), list):
        raise UpstreamError("anthropic returned a malformed message")
    texts: list[str] = []
    calls: list[ToolCall] = []
    for block in data["content"]:
        if not isinstance(block, dict):
            continue
        kind = block.get("type")
        if kind == "text":
            texts.append(str(block.get("text", "")))
        elif kind == "tool_use":
            args = block.get("input")
            calls.append(
                ToolCall(
                    id=str(block.get("id", "")),
                    name=str(block.get("name", "")),
                    arguments=orjson.dumps(args if args is not None else {}).decode(),
                )
            )
    stop = data.get("stop_reason")
    text = "".join(texts)
    return ChatResponse(  # positional, as `usage_from`'s Usage (created: 0, as before)
        str(data.get("id", "")),
        str(data.get("model", "")),
        text if texts or not calls else None,
        from_anthropic(stop),
        usage_from(data.get("usage")),
        tuple(calls),
        0,
        text if stop == "refusal" and text else None,
    )


class AnthropicStreamDecoder:
    __slots__ = ("_id", "_model", "_stop", "_tool_index", "_tools_seen", "_usage", "done")

    def __init__(self, model: str) -> None:
        self._id = ""
        self._model = model
        self._usage: dict[str, Any] = {}
        self._stop: str | None = None
        self._tool_index: dict[int, int] = {}  # content block index -> neutral tool-call index
        self._tools_seen = 0
        #: `message_stop` was seen (a plain attribute: the transport reads it once per event)
        self.done = False

    def _chunk(self, **kw: Any) -> ChatChunk:
        return ChatChunk(id=self._id, model=self._model, **kw)

    def _merge_usage(self, raw: Any) -> None:
        if isinstance(raw, dict):
            for key in _USAGE_KEYS:
                if raw.get(key) is not None:
                    self._usage[key] = raw[key]

    def feed(self, event: SSEEvent) -> list[ChatChunk]:
        if self.done:
            return []
        try:
            data = event.json() if event.raw else {}
        except orjson.JSONDecodeError:
            raise StreamInterrupted("anthropic sent a malformed stream event") from None
        if not isinstance(data, dict):
            return []
        name = event.event or data.get("type")
        if name == "content_block_delta":
            return self._block_delta(data)
        if name == "content_block_start":
            return self._block_start(data)
        if name == "message_start":
            message = data.get("message") or {}
            self._id = str(message.get("id", ""))
            self._model = str(message.get("model") or self._model)
            self._merge_usage(message.get("usage"))
            return [self._chunk(role="assistant")]
        if name == "message_delta":
            delta = data.get("delta") or {}
            if delta.get("stop_reason"):
                self._stop = delta["stop_reason"]
            self._merge_usage(data.get("usage"))
            return []
        if name == "message_stop":
            self.done = True
            return [self._final()]
        if name == "error":
            raise error_from_body(data, status=200)
        return []  # ping, content_block_stop, and event types added after this was written

    def _block_start(self, data: dict[str, Any]) -> list[ChatChunk]:
        block = data.get("content_block") or {}
        kind = block.get("type")
        if kind == "text" and block.get("text"):
            return [self._chunk(text=str(block["text"]))]
        if kind != "tool_use":
            return []
        index = self._tools_seen
        self._tools_seen += 1
        self._tool_index[int(data.get("index", 0))] = index
        initial = block.get("input")
        args = orjson.dumps(initial).decode() if isinstance(initial, dict) and initial else ""
        delta = ToolCallDelta(
            index=index,
            id=str(block.get("id", "")),
            name=str(block.get("name", "")),
            arguments=args,
        )
        return [self._chunk(tool_calls=(delta,))]

    def _block_delta(self, data: dict[str, Any]) -> list[ChatChunk]:
        delta = data.get("delta") or {}
        kind = delta.get("type")
        if kind == "text_delta":
            text = delta.get("text") or ""
            # once per token: positional, not through `_chunk`'s keywords
            return [ChatChunk(self._id, self._model, text)] if text else []
        if kind == "input_json_delta":
            fragment = delta.get("partial_json") or ""
            index = self._tool_index.get(int(data.get("index", 0)))
            if not fragment or index is None:
                return []
            return [self._chunk(tool_calls=(ToolCallDelta(index=index, arguments=fragment),))]
        return []  # thinking, signature and citations deltas have no neutral form

    def _final(self) -> ChatChunk:
        reason = from_anthropic(self._stop)
        if self._tools_seen and reason is FinishReason.STOP and self._stop is None:
            reason = FinishReason.TOOL_CALLS
        return self._chunk(finish_reason=reason, usage=usage_from(self._usage))

    def finish(self) -> list[ChatChunk]:
        if not self.done:
            raise StreamInterrupted("anthropic stream ended before message_stop")
        return []
