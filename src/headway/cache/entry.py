"""What a cache entry holds, and its byte encoding (orjson; the same for every backend).

An entry is the complete answer: text, tool calls, finish reason and usage. A streamed answer is
assembled into the same value once its final chunk arrived; replay turns it back into chunks, so
a stored stream can answer a plain call and the other way round.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import orjson

from headway.response_json import response_fields, response_from
from headway.types import ChatChunk, ChatResponse, FinishReason, ToolCall, ToolCallDelta, Usage

ENTRY_VERSION = 1


@dataclass(slots=True)
class Entry:
    """One stored answer. Treat it as frozen: it is not declared so because one is built per
    stored answer, and a frozen dataclass sets each field through `object.__setattr__`."""

    response: ChatResponse
    stored_at: float  # wall clock, seconds
    expires_at: float
    tenant: str
    model: str
    query: str | None = None  # the single-turn text, for semantic entries

    def age(self, now: float) -> float:
        return max(0.0, now - self.stored_at)

    def fresh(self, now: float) -> bool:
        return now < self.expires_at

    def answer(self) -> ChatResponse:
        """The response, as a caller's own copy: `ChatResponse` and `Usage` are mutable, and an
        entry decoded once may answer many calls (`Decoder`). The rest is immutable, shared."""
        r, u = self.response, self.response.usage
        usage = Usage(
            u.input_tokens,
            u.output_tokens,
            u.cached_input_tokens,
            u.cache_write_tokens,
            u.reasoning_tokens,
            u.estimated,
        )
        return ChatResponse(
            r.id, r.model, r.content, r.finish_reason, usage, r.tool_calls, r.created, r.refusal
        )


def encode(entry: Entry) -> bytes:
    """The response in the layout the job queue stores too (`headway.response_json`), then the
    entry's own fields."""
    d = response_fields(entry.response, ENTRY_VERSION)
    d["stored"] = entry.stored_at
    d["expires"] = entry.expires_at
    d["tenant"] = entry.tenant
    d["m"] = entry.model
    d["q"] = entry.query
    return orjson.dumps(d)


def decode(raw: bytes) -> Entry | None:
    """None for entries written by another version (they are treated as misses)."""
    d = orjson.loads(raw)
    if d.get("v") != ENTRY_VERSION:
        return None
    return Entry(response_from(d), d["stored"], d["expires"], d["tenant"], d["m"], d["q"])


class Decoder:
    """`decode` with the last `size` keys' entries remembered: a hot key answered again from
    the same stored bytes skips parsing them and building the entry (most of a hit's own cost).
    The bytes are compared whole, so a rewritten entry is decoded afresh; the remembered entry
    is never handed out, only its `answer()` copies."""

    __slots__ = ("_known", "_size")

    def __init__(self, size: int = 512) -> None:
        self._size = size
        self._known: dict[str, tuple[bytes, Entry]] = {}

    def __call__(self, key: str, raw: bytes) -> Entry | None:
        known = self._known.get(key)
        if known is not None and known[0] == raw:
            return known[1]
        entry = decode(raw)
        if entry is not None:
            if len(self._known) >= self._size and key not in self._known:
                del self._known[next(iter(self._known))]  # the oldest: a bound, not an LRU
            self._known[key] = (raw, entry)
        return entry


class StreamAssembler:
    """Collects a stream's chunks into one response; `complete` only after a finish reason."""

    __slots__ = (
        "_args",
        "_created",
        "_finish",
        "_id",
        "_model",
        "_refusal",
        "_text",
        "_tools",
        "_usage",
    )

    def __init__(self) -> None:
        self._text: list[str] = []
        self._refusal: list[str] = []
        self._tools: dict[int, list[str]] = {}
        self._args: dict[int, list[str]] = {}
        self._finish: FinishReason | None = None
        self._usage: Usage | None = None
        self._id = ""
        self._model = ""
        self._created = 0

    def add(self, chunk: ChatChunk) -> None:
        if not self._id:
            self._id, self._model, self._created = chunk.id, chunk.model, chunk.created
        if chunk.text:
            self._text.append(chunk.text)
        if chunk.refusal:
            self._refusal.append(chunk.refusal)
        for d in chunk.tool_calls:
            slot = self._tools.setdefault(d.index, ["", ""])
            if d.id:
                slot[0] = d.id
            if d.name:
                slot[1] = d.name
            self._args.setdefault(d.index, []).append(d.arguments)
        if chunk.finish_reason is not None:
            self._finish = chunk.finish_reason
        if chunk.usage is not None:
            self._usage = chunk.usage

    @property
    def complete(self) -> bool:
        return self._finish is not None

    def response(self) -> ChatResponse:
        assert self._finish is not None
        tools = tuple(
            ToolCall(self._tools[i][0], self._tools[i][1], "".join(self._args.get(i, [])))
            for i in sorted(self._tools)
        )
        refusal = self._refusal
        return ChatResponse(
            id=self._id,
            model=self._model,
            # null beside calls or a refusal, as OpenAI answers them
            content="".join(self._text) if self._text or not (tools or refusal) else None,
            finish_reason=self._finish,
            usage=self._usage or Usage(),
            tool_calls=tools,
            created=self._created,
            refusal="".join(refusal) if refusal else None,
        )


def replay(
    response: ChatResponse, *, include_usage: bool = True, piece: int = 64
) -> Iterator[ChatChunk]:
    """A stored answer as a valid stream: a role chunk, text in pieces, a refusal, tool calls,
    then the finish (with usage, which ingress adapters emit in the caller's wire format)."""
    rid, model, created = response.id, response.model, response.created
    yield ChatChunk(id=rid, model=model, role="assistant", created=created)
    text = response.content or ""
    for start in range(0, len(text), piece):
        yield ChatChunk(id=rid, model=model, text=text[start : start + piece], created=created)
    if response.refusal:
        yield ChatChunk(id=rid, model=model, created=created, refusal=response.refusal)
    for i, call in enumerate(response.tool_calls):
        yield ChatChunk(
            id=rid,
            model=model,
            tool_calls=(ToolCallDelta(i, call.id, call.name, call.arguments),),
            created=created,
        )
    yield ChatChunk(
        id=rid,
        model=model,
        finish_reason=response.finish_reason,
        usage=response.usage if include_usage else None,
        created=created,
    )
