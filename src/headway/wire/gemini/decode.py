"""Gemini responses, stream events and embeddings -> neutral values (egress, the reading half).

Usage (providers.md 5.3, 6.2): `promptTokenCount` already includes cached tokens; tool-use prompt
tokens are input too; output is `candidatesTokenCount + thoughtsTokenCount` (thinking is billed
as output), with the thoughts reported as reasoning tokens.

Stream (providers.md 5.4): every `data:` event is a whole GenerateContentResponse holding only the
new text; there is no `[DONE]` — the end of the body ends the stream. `usageMetadata` repeats
cumulatively (the last one wins) and the finish reason comes on the last chunk, so both are
emitted in one final chunk by `finish()`; a body that ends without any finish reason was cut.
A prompt blocked by safety answers 200 with `promptFeedback.blockReason`: `ContentFiltered`.

A `thoughtSignature` on a `functionCall` part rides in the call's id (`signature.attach`), in
the stream as well: the first delta of a call carries its id, and a call comes whole in one part.
"""

from __future__ import annotations

import os
from typing import Any

import orjson

from headway.errors import ContentFiltered, StreamInterrupted, UpstreamError
from headway.providers.base import SSEEvent
from headway.types import (
    ChatChunk,
    ChatResponse,
    EmbedResponse,
    ToolCall,
    ToolCallDelta,
    Usage,
)
from headway.wire.finish import from_gemini
from headway.wire.gemini.classify import error_from_body
from headway.wire.gemini.signature import attach
from headway.wire.util import loads_object

#: ids headway made up for calls Gemini returned without one; never sent back to Gemini
SYNTHETIC_ID_PREFIX = "call_hw"


def synthetic_id() -> str:
    return SYNTHETIC_ID_PREFIX + os.urandom(9).hex()


def usage_from(meta: dict[str, Any] | None) -> Usage:
    meta = meta or {}
    thoughts = int(meta.get("thoughtsTokenCount") or 0)
    return Usage(
        input_tokens=int(meta.get("promptTokenCount") or 0)
        + int(meta.get("toolUsePromptTokenCount") or 0),
        output_tokens=int(meta.get("candidatesTokenCount") or 0) + thoughts,
        cached_input_tokens=int(meta.get("cachedContentTokenCount") or 0),
        reasoning_tokens=thoughts,
    )


def _blocked(data: dict[str, Any]) -> ContentFiltered | None:
    feedback = data.get("promptFeedback")
    reason = feedback.get("blockReason") if isinstance(feedback, dict) else None
    if not reason or data.get("candidates"):
        return None
    return ContentFiltered(f"gemini blocked the prompt ({reason})", upstream_status=200)


def _model(data: dict[str, Any], default: str = "") -> str:
    return str(data.get("modelVersion") or default).removeprefix("models/")


def _candidate_parts(data: dict[str, Any]) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    candidates = data.get("candidates") or []
    candidate = candidates[0] if candidates and isinstance(candidates[0], dict) else {}
    content = candidate.get("content") or {}
    parts = content.get("parts") if isinstance(content, dict) else None
    return candidate, [p for p in parts or () if isinstance(p, dict)]


def _call(part: dict[str, Any]) -> ToolCall | None:
    fn = part.get("functionCall")
    if not isinstance(fn, dict):
        return None
    args = fn.get("args")
    call_id = str(fn.get("id") or synthetic_id())
    signature = part.get("thoughtSignature")
    return ToolCall(
        id=attach(call_id, signature) if isinstance(signature, str) else call_id,
        name=str(fn.get("name", "")),
        arguments=orjson.dumps(args if isinstance(args, dict) else {}).decode(),
    )


def _text(part: dict[str, Any]) -> str:
    # thought summaries are reasoning, not answer text
    return "" if part.get("thought") else str(part.get("text") or "")


def parse_response(body: bytes) -> ChatResponse:
    data = loads_object(body)
    if data is None:
        raise UpstreamError("gemini returned a malformed response")
    if (blocked := _blocked(data)) is not None:
        raise blocked
    candidate, parts = _candidate_parts(data)
    if not candidate:
        raise UpstreamError("gemini returned no candidates")
    texts = [t for p in parts if (t := _text(p))]
    calls = [c for p in parts if (c := _call(p)) is not None]
    return ChatResponse(
        id=str(data.get("responseId") or ""),
        model=_model(data),
        content="".join(texts) if texts or not calls else None,
        finish_reason=from_gemini(candidate.get("finishReason"), has_tool_calls=bool(calls)),
        usage=usage_from(data.get("usageMetadata")),
        tool_calls=tuple(calls),
    )


class GeminiStreamDecoder:
    __slots__ = ("_finish", "_id", "_model", "_started", "_tools", "_usage", "done")

    def __init__(self, model: str) -> None:
        self._id = ""
        self._model = model
        self._usage: dict[str, Any] | None = None
        self._finish: str | None = None
        self._tools = 0
        self._started = False
        #: always False: no terminator, only the end of the body ends a Gemini stream (a plain
        #: attribute: the transport reads it once per event)
        self.done = False

    def feed(self, event: SSEEvent) -> list[ChatChunk]:
        try:
            data = event.json()
        except orjson.JSONDecodeError:
            raise StreamInterrupted("gemini sent a malformed stream event") from None
        if isinstance(data, list) and data:  # some Google endpoints wrap errors in an array
            data = data[0]
        if not isinstance(data, dict):
            return []
        if isinstance(data.get("error"), dict):
            raise error_from_body(data, status=int(data["error"].get("code") or 500))
        if (blocked := _blocked(data)) is not None:
            raise blocked
        self._id = str(data.get("responseId") or self._id)
        self._model = _model(data, self._model)
        if isinstance(data.get("usageMetadata"), dict):
            self._usage = data["usageMetadata"]
        candidate, parts = _candidate_parts(data)
        if candidate.get("finishReason"):
            self._finish = str(candidate["finishReason"])
        text = "".join(_text(p) for p in parts)
        deltas: list[ToolCallDelta] = []
        for part in parts:
            call = _call(part)
            if call is not None:  # Gemini sends a call whole, never in fragments
                deltas.append(ToolCallDelta(self._tools, call.id, call.name, call.arguments))
                self._tools += 1
        if not text and not deltas and self._started:
            return []
        role = None if self._started else "assistant"
        self._started = True
        return [
            ChatChunk(
                id=self._id, model=self._model, text=text, tool_calls=tuple(deltas), role=role
            )
        ]

    def finish(self) -> list[ChatChunk]:
        if self._finish is None:
            raise StreamInterrupted("gemini stream ended without a finish reason")
        reason = from_gemini(self._finish, has_tool_calls=self._tools > 0)
        usage = usage_from(self._usage)
        return [ChatChunk(id=self._id, model=self._model, finish_reason=reason, usage=usage)]


def parse_embeddings(body: bytes) -> EmbedResponse:
    data = loads_object(body)
    items: Any = None
    if data is not None:
        items = data.get("embeddings") if "embeddings" in data else [data.get("embedding")]
    if not isinstance(items, list) or not all(
        isinstance(i, dict) and isinstance(i.get("values"), list) for i in items
    ):
        raise UpstreamError("gemini returned malformed embeddings")
    vectors = [[float(v) for v in item["values"]] for item in items]
    return EmbedResponse(model="", vectors=vectors, usage=Usage())
