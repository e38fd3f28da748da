"""OpenAI-shaped replies to callers: neutral answers -> `chat.completion` JSON, SSE frames,
embeddings, models and errors.

Bytes are built directly with orjson, with the per-stream prefix computed once: a streamed answer
costs one small `orjson.dumps` per chunk. Stream framing follows providers.md 2.7: a role chunk
first, content/tool-call deltas, a finish chunk, the usage chunk (`choices: []`) only when the
caller asked for `stream_options.include_usage`, then `data: [DONE]`. After a failure the stream
ends with an in-band error frame and no `[DONE]`.
"""

from __future__ import annotations

import base64
import sys
from array import array
from collections.abc import Sequence
from typing import Any

import orjson

from headway.errors import HeadwayError
from headway.types import (
    ChatChunk,
    ChatResponse,
    EmbedRequest,
    EmbedResponse,
    ModelInfo,
    ToolCall,
    ToolCallDelta,
    Usage,
)

# ---- responses -------------------------------------------------------------------------------


def usage_json(usage: Usage) -> dict[str, Any]:
    details: dict[str, int] = {"cached_tokens": usage.cached_input_tokens}
    if usage.cache_write_tokens:
        details["cache_write_tokens"] = usage.cache_write_tokens
    return {
        "prompt_tokens": usage.input_tokens,
        "completion_tokens": usage.output_tokens,
        "total_tokens": usage.input_tokens + usage.output_tokens,
        "prompt_tokens_details": details,
        "completion_tokens_details": {"reasoning_tokens": usage.reasoning_tokens},
    }


def _tool_call_json(call: ToolCall) -> dict[str, Any]:
    return {
        "id": call.id,
        "type": "function",
        "function": {"name": call.name, "arguments": call.arguments},
    }


def chat_response_json(resp: ChatResponse, request_model: str, *, created: int = 0) -> bytes:
    """A `chat.completion` object. `model` is the name the caller asked for (a route alias stays
    an alias; the deployment that served it is in `x-headway-deployment`)."""
    message: dict[str, Any] = {
        "role": "assistant",
        "content": resp.content,
        "refusal": resp.refusal,
    }
    if resp.tool_calls:
        message["tool_calls"] = [_tool_call_json(c) for c in resp.tool_calls]
    return orjson.dumps(
        {
            "id": resp.id or "chatcmpl-headway",
            "object": "chat.completion",
            "created": resp.created or created,
            "model": request_model,
            "choices": [
                {
                    "index": 0,
                    "message": message,
                    "logprobs": None,
                    "finish_reason": str(resp.finish_reason),
                }
            ],
            "usage": usage_json(resp.usage),
        }
    )


class RenderedAnswers:
    """`chat_response_json` remembered for answers that repeat (cache hits): a hot stored
    answer asked for under the same model name is rendered once, not per hit. The key holds
    every field the JSON shows, so equal keys give equal bytes; an answer without `created`
    (the body then carries the current time) is rendered afresh. Bounded by entries and bytes,
    oldest dropped first."""

    __slots__ = ("_bytes", "_known", "_max_bytes", "_size")

    def __init__(self, size: int = 512, max_bytes: int = 4 * 1024 * 1024) -> None:
        self._size = size
        self._max_bytes = max_bytes
        self._bytes = 0
        self._known: dict[tuple[Any, ...], bytes] = {}

    def __call__(self, resp: ChatResponse, request_model: str, *, created: int = 0) -> bytes:
        if not resp.created:
            return chat_response_json(resp, request_model, created=created)
        u = resp.usage
        key = (
            resp.id,
            resp.content,
            resp.refusal,
            resp.finish_reason._value_,  # the enum's own hash is a Python-level call
            resp.tool_calls,
            resp.created,
            u.input_tokens,
            u.output_tokens,
            u.cached_input_tokens,
            u.cache_write_tokens,
            u.reasoning_tokens,
            request_model,
        )
        known = self._known
        body = known.get(key)
        if body is None:
            body = chat_response_json(resp, request_model)
            self._keep(key, body)
        return body

    def _keep(self, key: tuple[Any, ...], body: bytes) -> None:
        if len(body) > self._max_bytes:
            return
        known = self._known
        while known and (len(known) >= self._size or self._bytes + len(body) > self._max_bytes):
            self._bytes -= len(known.pop(next(iter(known))))
        known[key] = body
        self._bytes += len(body)


def _tool_delta_json(delta: ToolCallDelta) -> dict[str, Any]:
    out: dict[str, Any] = {"index": delta.index}
    fn: dict[str, str] = {"arguments": delta.arguments}
    if delta.id is not None:
        out["id"] = delta.id
        out["type"] = "function"
    if delta.name is not None:
        fn["name"] = delta.name
    out["function"] = fn
    return out


_ROLE_CHOICE = (
    b'{"index":0,"delta":{"role":"assistant","content":""},"logprobs":null,"finish_reason":null}'
)
_TEXT_OPEN = b'{"index":0,"delta":{"content":'
_OPEN_CLOSE = b'},"logprobs":null,"finish_reason":null}'
DONE_FRAME = b"data: [DONE]\n\n"


class ChatStreamEncoder:
    """Frames one streamed answer. Feed it neutral chunks in order; `finish` ends the stream.

    `finish` is only for a stream that completed: after a failure, send `stream_error_frame`
    and no `[DONE]`, so the caller can tell a cut answer from a whole one."""

    __slots__ = (
        "_finished",
        "_head",
        "_include_usage",
        "_tail",
        "_text_close",
        "_text_open",
        "usage",
    )

    def __init__(self, id: str, created: int, model: str, include_usage: bool) -> None:
        head = orjson.dumps(
            {"id": id, "object": "chat.completion.chunk", "created": created, "model": model}
        )
        self._head = b"data: " + head[:-1] + b',"choices":['
        self._tail = b'],"usage":null}\n\n' if include_usage else b"]}\n\n"
        # what surrounds a text delta, joined once: a text frame is then two concatenations
        self._text_open = self._head + _TEXT_OPEN
        self._text_close = _OPEN_CLOSE + self._tail
        self._include_usage = include_usage
        self._finished = False
        #: the latest usage a chunk reported (the last one wins, as in cumulative streams)
        self.usage: Usage | None = None

    def start(self) -> bytes:
        """The first frame: `delta.role = assistant`."""
        return self._head + _ROLE_CHOICE + self._tail

    def chunk(self, chunk: ChatChunk) -> bytes:
        """Zero, one or two frames for a neutral chunk (content/tool deltas, then the finish)."""
        out = b""
        if chunk.tool_calls or chunk.refusal:
            delta: dict[str, Any] = {}
            if chunk.text:
                delta["content"] = chunk.text
            if chunk.refusal:
                delta["refusal"] = chunk.refusal
            if chunk.tool_calls:
                delta["tool_calls"] = [_tool_delta_json(d) for d in chunk.tool_calls]
            choice = {"index": 0, "delta": delta, "logprobs": None, "finish_reason": None}
            out = self._head + orjson.dumps(choice) + self._tail
        elif chunk.text:
            out = self._text_open + orjson.dumps(chunk.text) + self._text_close
        if chunk.usage is not None:
            self.usage = chunk.usage
        if chunk.finish_reason is not None and not self._finished:
            out += self._finish_frame(str(chunk.finish_reason))
        return out

    def _finish_frame(self, reason: str) -> bytes:
        self._finished = True
        choice = {"index": 0, "delta": {}, "logprobs": None, "finish_reason": reason}
        return self._head + orjson.dumps(choice) + self._tail

    def finish(self, usage: Usage | None = None) -> bytes:
        """The end of a completed stream: the finish chunk if no chunk carried one, the usage
        chunk when the caller asked for it, then `[DONE]`."""
        out = b"" if self._finished else self._finish_frame("stop")
        usage = self.usage or usage
        if self._include_usage and usage is not None:
            out += self._head + b'],"usage":' + orjson.dumps(usage_json(usage)) + b"}\n\n"
        return out + DONE_FRAME


def _vector_b64(vector: Sequence[float]) -> str:
    packed = array("f", vector)
    if sys.byteorder == "big":  # the wire format is little-endian float32
        packed.byteswap()
    return base64.b64encode(packed.tobytes()).decode("ascii")


def embeddings_json(resp: EmbedResponse, request: EmbedRequest) -> bytes:
    """An embeddings `list`; vectors as float arrays or base64 little-endian float32 (the
    OpenAI SDK asks for base64 unless told otherwise)."""
    b64 = request.encoding_format == "base64"
    data = [
        {"object": "embedding", "index": i, "embedding": _vector_b64(v) if b64 else v}
        for i, v in enumerate(resp.vectors)
    ]
    tokens = resp.usage.input_tokens
    return orjson.dumps(
        {
            "object": "list",
            "model": request.model,
            "data": data,
            "usage": {"prompt_tokens": tokens, "total_tokens": tokens},
        },
        option=orjson.OPT_SERIALIZE_NUMPY,
    )


def model_json(model: ModelInfo) -> dict[str, Any]:
    out: dict[str, Any] = {
        "id": model.id,
        "object": "model",
        "created": model.created,
        "owned_by": model.owned_by,
    }
    if model.sunset is not None:
        out["shutdown_date"] = model.sunset
    return out


def models_json(models: Sequence[ModelInfo]) -> bytes:
    return orjson.dumps({"object": "list", "data": [model_json(m) for m in models]})


# ---- errors ----------------------------------------------------------------------------------


def error_object(err: HeadwayError) -> dict[str, Any]:
    return {
        "message": err.message,
        "type": err.openai_type,
        "param": err.param,
        "code": err.code,
    }


def error_json(err: HeadwayError) -> bytes:
    """`{"error": {"message", "type", "param", "code"}}`, the shape the SDKs unwrap."""
    return orjson.dumps({"error": error_object(err)})


def stream_error_frame(err: HeadwayError) -> bytes:
    """An in-band error after the stream started; the OpenAI SDK raises `APIError` on it."""
    return b"data: " + orjson.dumps({"error": error_object(err)}) + b"\n\n"
