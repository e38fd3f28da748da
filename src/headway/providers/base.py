"""The small protocols every provider implements.

Two layers, kept apart on purpose:

- `Provider`: what the rest of headway calls (chat, stream, embed). A deployment of any provider,
  the in-process `sim`, and a fallback chain all implement it, so chains nest and are tested like
  providers.
- `WireFormat`: pure translation between neutral values and one vendor's wire format (build the
  HTTP request, parse the response, decode stream events, classify errors, read rate-limit
  headers). No I/O. `HttpProvider` (providers/http.py) combines a wire format with an endpoint,
  an auth strategy and the shared transport; that is why Azure, vLLM and Ollama are configuration,
  not new classes.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

import orjson

from headway.errors import HeadwayError
from headway.types import ChatChunk, ChatRequest, ChatResponse, EmbedRequest, EmbedResponse


@dataclass(slots=True, frozen=True)
class Capabilities:
    chat: bool = True
    stream: bool = True
    embeddings: bool = False
    tools: bool = True
    images: bool = True
    json_mode: bool = True
    #: accepts a trailing assistant message as a prefix to continue (mid-stream recovery)
    prefill: bool = False
    #: reports usage at the end of a stream (when asked to)
    stream_usage: bool = True


@dataclass(slots=True)
class RateLimitSnapshot:
    """What a provider's rate-limit headers said about remaining capacity, at `observed_at`.

    Reset times are absolute (wall clock seconds), converted from durations (`6m0s`) or RFC 3339
    timestamps at parse time. None means the provider did not say."""

    observed_at: float
    limit_requests: int | None = None
    remaining_requests: int | None = None
    reset_requests_at: float | None = None
    limit_tokens: int | None = None
    remaining_tokens: int | None = None
    reset_tokens_at: float | None = None
    # Anthropic limits input and output tokens separately.
    limit_input_tokens: int | None = None
    remaining_input_tokens: int | None = None
    reset_input_tokens_at: float | None = None
    limit_output_tokens: int | None = None
    remaining_output_tokens: int | None = None
    reset_output_tokens_at: float | None = None


@dataclass(slots=True)
class AttemptContext:
    """What one attempt at one deployment needs besides the request."""

    request_id: str
    #: absolute monotonic deadline for the whole attempt (None: no deadline)
    deadline: float | None = None
    #: seconds allowed until the first streamed token arrives
    ttft_timeout: float | None = None
    #: seconds without any stream event before the stream counts as stalled
    stall_timeout: float | None = None
    #: called with each rate-limit snapshot the provider's headers yield
    on_ratelimit: Callable[[RateLimitSnapshot], None] | None = None
    extra_headers: Mapping[str, str] = field(default_factory=dict)


class Provider(Protocol):
    """A deployment (or anything that behaves like one, such as a chain)."""

    name: str
    capabilities: Capabilities

    async def chat(self, request: ChatRequest, ctx: AttemptContext) -> ChatResponse: ...

    def stream(self, request: ChatRequest, ctx: AttemptContext) -> AsyncIterator[ChatChunk]: ...

    async def embed(self, request: EmbedRequest, ctx: AttemptContext) -> EmbedResponse: ...

    async def aclose(self) -> None: ...


# ---- wire formats (pure) -------------------------------------------------------------------


@dataclass(slots=True, init=False)
class HttpCall:
    """A request ready to send: path relative to the endpoint's base URL, JSON-able body."""

    method: str
    path: str
    body: dict[str, Any] | None = None
    headers: dict[str, str] = field(default_factory=dict)
    query: dict[str, str] = field(default_factory=dict)

    # Written out rather than generated: the generated one calls `dict` through each default
    # factory, two calls per request; `{}` is one instruction. Same fields, same defaults.
    def __init__(
        self,
        method: str,
        path: str,
        body: dict[str, Any] | None = None,
        headers: dict[str, str] | None = None,
        query: dict[str, str] | None = None,
    ) -> None:
        self.method = method
        self.path = path
        self.body = body
        self.headers = {} if headers is None else headers
        self.query = {} if query is None else query


class SSEEvent:
    """One server-sent event as framed on the wire (WHATWG algorithm).

    `raw` is the data field as the bytes that were sent (several `data` lines joined by `\\n`):
    decoders hand it to orjson as is, so the hot path never decodes UTF-8 in Python. `data` is
    the same as text, decoded on demand the way a text/event-stream decoder would (invalid UTF-8
    replaced). Events are values: equal when their fields are."""

    __slots__ = ("event", "id", "raw")

    def __init__(self, data: bytes | str = b"", event: str | None = None, id: str | None = None):
        self.raw: bytes = data.encode() if isinstance(data, str) else data
        self.event = event
        self.id = id

    @property
    def data(self) -> str:
        return self.raw.decode("utf-8", "replace")

    def json(self) -> Any:
        """The data parsed as JSON. Raises `orjson.JSONDecodeError` for anything else; invalid
        UTF-8 inside is replaced, not rejected, as it was when events were decoded to text."""
        try:
            return orjson.loads(self.raw)
        except orjson.JSONDecodeError:
            text = self.raw.decode("utf-8", "replace")
            if text.encode() == self.raw:
                raise  # valid UTF-8: the JSON itself is bad
            return orjson.loads(text)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, SSEEvent):
            return NotImplemented
        return (self.raw, self.event, self.id) == (other.raw, other.event, other.id)

    def __hash__(self) -> int:
        return hash((self.raw, self.event, self.id))

    def __repr__(self) -> str:
        return f"SSEEvent(data={self.raw!r}, event={self.event!r}, id={self.id!r})"


class StreamDecoder(Protocol):
    """Turns a provider's stream events into neutral chunks. Stateful, one per stream."""

    def feed(self, event: SSEEvent) -> list[ChatChunk]:
        """Chunks for this event (often zero or one). Raises a classified error for an in-band
        error event or a malformed one."""
        ...

    def finish(self) -> list[ChatChunk]:
        """Called when the byte stream ends. Raises `StreamInterrupted` when the stream ended
        without its terminator (`[DONE]`, `message_stop`, a final finish reason)."""
        ...

    @property
    def done(self) -> bool:
        """True once the terminator was seen; the transport may stop reading."""
        ...


class WireFormat(Protocol):
    name: str

    def chat_call(self, request: ChatRequest, model: str) -> HttpCall: ...

    def chat_response(self, body: bytes) -> ChatResponse: ...

    def stream_decoder(self, request: ChatRequest, model: str) -> StreamDecoder: ...

    def embed_call(self, request: EmbedRequest, model: str) -> HttpCall: ...

    def embed_response(self, body: bytes) -> EmbedResponse: ...

    def classify_error(
        self, status: int, body: bytes, headers: Mapping[str, str]
    ) -> HeadwayError: ...

    def ratelimit(self, headers: Mapping[str, str], now: float) -> RateLimitSnapshot | None: ...
