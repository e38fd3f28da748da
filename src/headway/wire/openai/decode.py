"""OpenAI-shaped answers -> neutral values: chat responses, stream chunks, embeddings.

Lenient where compatible servers differ (providers.md 7.4): missing ids, unknown or missing
finish reasons (-> `stop`), tool-call deltas without `index` or with object arguments, missing
usage (counted locally and flagged `Usage.estimated`). Strict where a silent error would lie:
a stream that ends without `[DONE]` or sends a chunk that is not JSON is `StreamInterrupted`.
"""

from __future__ import annotations

import base64
import itertools
import os
import struct
from typing import Any

import orjson

from headway import tokens
from headway.errors import HeadwayError, StreamInterrupted, UpstreamError
from headway.providers.base import SSEEvent
from headway.types import (
    ChatChunk,
    ChatRequest,
    ChatResponse,
    EmbedResponse,
    FinishReason,
    ToolCall,
    ToolCallDelta,
    Usage,
)
from headway.wire.finish import OPENAI_TO_NEUTRAL, from_openai
from headway.wire.openai.classify import error_from_payload
from headway.wire.util import loads_object

#: `OPENAI_TO_NEUTRAL` as a plain dict: a mapping proxy's `get` is a method call on the dict
_FINISH: dict[str, FinishReason] = dict(OPENAI_TO_NEUTRAL)

_ids = itertools.count(1)
_prefix = os.urandom(3).hex()


def new_id(kind: str) -> str:
    """An id for a server that sent none (tool calls must be unique: callers echo them back)."""
    return f"{kind}_hw{_prefix}{next(_ids):08d}"


def _int(value: Any) -> int:
    return value if isinstance(value, int) else 0


def parse_usage(raw: Any) -> Usage | None:
    # Runs on every answer and every stream's usage chunk: the common all-integer shape is read
    # with inline checks rather than a helper call per field.
    if not isinstance(raw, dict):
        return None
    prompt = raw.get("prompt_tokens")
    if not isinstance(prompt, int):
        prompt = 0
    completion = raw.get("completion_tokens")
    if not isinstance(completion, int):  # vLLM may send null; derive it from the total
        completion = max(0, _int(raw.get("total_tokens")) - prompt)
    cached = written = reasoning = 0
    pd = raw.get("prompt_tokens_details")
    if isinstance(pd, dict):
        cached = _int(pd.get("cached_tokens"))
        written = _int(pd.get("cache_write_tokens"))
    cd = raw.get("completion_tokens_details")
    if isinstance(cd, dict):
        reasoning = _int(cd.get("reasoning_tokens"))
    return Usage(prompt, completion, cached, written, reasoning)


def count_tokens(text: str, model: str) -> int:
    return tokens.count(text, tokens.encoding_for_model(model)) if text else 0


def estimate_input(request: ChatRequest, model: str) -> int:
    """Prompt tokens as OpenAI counts chat messages: each message costs ~3 tokens of framing."""
    total = 3
    for m in request.messages:
        total += 3 + count_tokens(m.text(), model)
        for call in m.tool_calls:
            total += count_tokens(call.name, model) + count_tokens(call.arguments, model)
    return total


def _arguments(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, str):
        return value
    return orjson.dumps(value).decode()  # some local servers send the arguments as an object


def _text(content: Any) -> str | None:
    if content is None or isinstance(content, str):
        return content
    if isinstance(content, list):  # a few servers answer with content parts
        return "".join(str(p.get("text", "")) for p in content if isinstance(p, dict))
    return str(content)


def _tool_calls(raw: Any) -> tuple[ToolCall, ...]:
    if not isinstance(raw, list):
        return ()
    out: list[ToolCall] = []
    for item in raw:
        if not isinstance(item, dict):
            continue
        fn = item.get("function")
        fn = fn if isinstance(fn, dict) else {}
        out.append(
            ToolCall(
                id=str(item.get("id") or new_id("call")),
                name=str(fn.get("name") or ""),
                arguments=_arguments(fn.get("arguments")) or "{}",
            )
        )
    return tuple(out)


def _finish(raw: Any, has_tools: bool) -> FinishReason:
    known = isinstance(raw, str) and raw in OPENAI_TO_NEUTRAL
    if has_tools and not known:  # null, or a local server's own word for it
        return FinishReason.TOOL_CALLS
    return from_openai(raw if isinstance(raw, str) else None)


def _in_body_error(obj: dict[str, Any], provider: str) -> HeadwayError | None:
    """Some servers answer 200 with only an error object; its code stands in for a status."""
    err = obj.get("error")
    if not err:
        return None
    payload = err if isinstance(err, dict) else {"message": str(err)}
    code = payload.get("code")
    status = (
        int(code) if isinstance(code, int) or (isinstance(code, str) and code.isdigit()) else 502
    )
    return error_from_payload(status, payload, {}, provider=provider)


def parse_chat_response(body: bytes, *, provider: str = "openai", model: str = "") -> ChatResponse:
    # `loads_object`, inline (once per answer)
    try:
        obj = orjson.loads(body)
    except orjson.JSONDecodeError:
        obj = None
    if not isinstance(obj, dict):
        raise UpstreamError(f"upstream {provider} sent a chat response that is not JSON")
    choices = obj.get("choices")
    if not isinstance(choices, list) or not choices:
        err = _in_body_error(obj, provider)
        raise err or UpstreamError(f"upstream {provider} sent a chat response without choices")
    choice = choices[0] if isinstance(choices[0], dict) else {}
    message = choice.get("message")
    message = message if isinstance(message, dict) else {}
    # the common shapes (text content, no tool calls, a known finish reason) skip the helpers
    content = message.get("content")
    if content is not None and type(content) is not str:
        content = _text(content)
    raw_calls = message.get("tool_calls")
    calls = _tool_calls(raw_calls) if raw_calls else ()
    usage = parse_usage(obj.get("usage"))
    if usage is None:
        spent = (content or "") + "".join(c.name + c.arguments for c in calls)
        usage = Usage(output_tokens=count_tokens(spent, model), estimated=True)
    reason = choice.get("finish_reason")
    finish = _FINISH.get(reason) if type(reason) is str and not calls else None
    refusal = message.get("refusal")
    created = obj.get("created")
    return ChatResponse(
        str(obj.get("id") or new_id("chatcmpl")),
        str(obj.get("model") or model),
        content,
        finish if finish is not None else _finish(reason, bool(calls)),
        usage,
        calls,
        created if isinstance(created, int) else 0,
        refusal if isinstance(refusal, str) else None,
    )


def parse_embeddings(body: bytes, *, provider: str = "openai", model: str = "") -> EmbedResponse:
    obj = loads_object(body)
    data = obj.get("data") if obj is not None else None
    if obj is None or not isinstance(data, list):
        raise UpstreamError(f"upstream {provider} sent an embeddings response without data")
    items = sorted((d for d in data if isinstance(d, dict)), key=lambda d: _int(d.get("index")))
    vectors: list[list[float]] = []
    for item in items:
        vec = item.get("embedding")
        if isinstance(vec, str):  # base64 of little-endian float32, as the SDK asks for
            packed = base64.b64decode(vec)
            n = len(packed) // 4
            # struct, not numpy: importing numpy would cost every worker ~16 MB of RSS
            vectors.append(list(struct.unpack(f"<{n}f", packed[: n * 4])))
        elif isinstance(vec, list):
            vectors.append(vec)
        else:
            raise UpstreamError(f"upstream {provider} sent an embedding that is not a vector")
    raw = obj.get("usage")
    usage = Usage(input_tokens=_int(raw.get("prompt_tokens"))) if isinstance(raw, dict) else Usage()
    return EmbedResponse(model=str(obj.get("model") or model), vectors=vectors, usage=usage)


def _lenient(event: SSEEvent, provider: str) -> Any:
    """The event's JSON when orjson rejected its bytes: invalid UTF-8 is replaced, not fatal."""
    try:
        return event.json()
    except orjson.JSONDecodeError:
        raise StreamInterrupted(
            f"upstream {provider} sent a malformed stream chunk", provider=provider
        ) from None


class OpenAIStreamDecoder:
    """`chat.completion.chunk` events -> neutral chunks, one decoder per stream.

    The finish reason is held back and sent with the usage in one last chunk when `[DONE]`
    arrives (OpenAI sends the usage after the finish chunk), so consumers see exactly one final
    chunk that carries both. Only choice 0 is decoded (headway answers one choice)."""

    __slots__ = (
        "_created",
        "_finish",
        "_id",
        "_last_slot",
        "_model",
        "_output",
        "_provider",
        "_request",
        "_role_sent",
        "_slot_ids",
        "_slots",
        "_usage",
        "done",
    )

    def __init__(self, request: ChatRequest, model: str, *, provider: str = "openai") -> None:
        self._request = request
        self._model = model
        self._provider = provider
        self._id = ""
        self._created = 0
        #: the terminator was seen (a plain attribute: the transport reads it once per event)
        self.done = False
        self._finish: object = None  # the raw finish_reason, judged once the stream is complete
        self._usage: Usage | None = None
        self._role_sent = False
        self._slots: dict[object, int] = {}  # upstream index (or id) -> neutral tool index
        self._slot_ids: list[str] = []
        self._last_slot: int | None = None
        self._output: list[str] = []  # generated text, kept only to count it if no usage comes

    @property
    def usage_reported(self) -> bool:
        """True when the upstream sent usage; False when the final usage is a local count."""
        return self._usage is not None

    def feed(self, event: SSEEvent) -> list[ChatChunk]:
        chunk = self.feed_data(event.raw)
        return [] if chunk is None else [chunk]

    def feed_data(self, data: bytes) -> ChatChunk | None:
        """`feed` for an event given as its data alone (the only field this decoder reads),
        which the HTTP provider takes straight from the common frame (`SSEParser.data_only`).
        An event gives one chunk at most."""
        if self.done or not data:
            return None
        if data[0] == 0x5B and data.startswith(b"[DONE]"):  # 0x5B: "["
            self.done = True
            return self._final()
        try:
            obj = orjson.loads(data)
        except orjson.JSONDecodeError:
            obj = _lenient(SSEEvent(data), self._provider)
        if not isinstance(obj, dict):
            raise StreamInterrupted(
                f"upstream {self._provider} sent a stream chunk that is not an object",
                provider=self._provider,
            )
        # almost no event has an "error": tested for with `in`, cheaper than `get` (per event)
        if "error" in obj and (err := obj["error"]):
            payload = err if isinstance(err, dict) else {"message": str(err)}
            raise error_from_payload(0, payload, {}, provider=self._provider, in_band=True)
        if not self._id:
            self._id = str(obj.get("id") or "")
            self._created = _int(obj.get("created"))
            self._model = str(obj.get("model") or self._model)
        usage = obj.get("usage")
        if usage:
            self._usage = parse_usage(usage)
        choices = obj.get("choices")
        if not choices or not isinstance(choices, list):
            return None  # the usage chunk, or Azure's prompt_filter_results chunk
        choice = choices[0]
        if not isinstance(choice, dict):
            return None
        index = choice.get("index")
        if index and isinstance(index, int):  # another choice (0, the usual, stops at `index`)
            return None
        reason = choice.get("finish_reason")
        if reason:
            self._finish = reason
        delta = choice.get("delta")
        if not isinstance(delta, dict):
            return None
        # once per stream event: the common shapes (a string, no tool calls) skip the helpers
        content = delta.get("content")
        text = content if type(content) is str else (_text(content) or "")
        raw_calls = delta.get("tool_calls")
        calls = self._tool_deltas(raw_calls) if raw_calls else ()
        role = None
        if not self._role_sent and delta.get("role"):
            role = str(delta["role"])
            self._role_sent = True
        refusal = delta.get("refusal")  # null in nearly every event
        if refusal and type(refusal) is str:
            self._output.append(refusal)  # generated, so counted as output
        else:
            refusal = ""
        if not (text or calls or role or refusal):
            return None
        if text:
            self._output.append(text)
        if not self._id:
            self._id = new_id("chatcmpl")
        return ChatChunk(
            self._id, self._model, text, calls, None, None, self._created, role, refusal
        )

    def _tool_deltas(self, raw: Any) -> tuple[ToolCallDelta, ...]:
        if not raw or not isinstance(raw, list):
            return ()
        out: list[ToolCallDelta] = []
        for item in raw:
            if not isinstance(item, dict):
                continue
            fn = item.get("function")
            fn = fn if isinstance(fn, dict) else {}
            args = _arguments(fn.get("arguments"))
            call_id = item.get("id")
            index = item.get("index")
            key: object = index if isinstance(index, int) else call_id
            slot = self._slots.get(key) if key is not None else self._last_slot
            if slot is not None and call_id and self._slot_ids[slot] != call_id:
                slot = None  # whole calls all sent as index 0: a new id is a new call
            if slot is None:
                slot = len(self._slot_ids)
                new = str(call_id or new_id("call"))
                self._slot_ids.append(new)
                self._slots[key if key is not None else new] = slot
                if isinstance(key, int) and call_id:
                    self._slots[call_id] = slot
                out.append(
                    ToolCallDelta(
                        index=slot, id=new, name=str(fn.get("name") or ""), arguments=args
                    )
                )
            elif args:
                out.append(ToolCallDelta(index=slot, arguments=args))
            self._last_slot = slot
            if args:
                self._output.append(args)
        return tuple(out)

    def _final(self) -> ChatChunk:
        reason = _finish(self._finish, bool(self._slot_ids))
        usage = self._usage
        if usage is None:
            usage = Usage(
                input_tokens=estimate_input(self._request, self._model),
                output_tokens=count_tokens("".join(self._output), self._model),
                estimated=True,
            )
        # positional: keywords to a class cost ~1k instructions each on 3.11 (once per stream)
        rid = self._id or new_id("chatcmpl")
        return ChatChunk(rid, self._model, "", (), reason, usage, self._created, None)

    def finish(self) -> list[ChatChunk]:
        if not self.done:
            raise StreamInterrupted(
                f"upstream {self._provider} stream ended without [DONE]", provider=self._provider
            )
        return []
