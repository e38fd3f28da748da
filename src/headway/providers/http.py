"""`HttpProvider`: a deployment reached over HTTP = a pure `WireFormat` + an endpoint (base URL
and path strategy) + static auth headers + the shared `Transport`.

The provider enforces the attempt's time limits itself, so the resilience layer can rely on them:
- `ctx.deadline` (monotonic, on the Gateway clock's scale) bounds the whole attempt, capped by the
  provider's `timeout_s`;
- `ctx.ttft_timeout` bounds the wait for the first meaningful chunk (text, a tool call or the
  finish); a bare role announcement does not count and is held back to ride on the first real
  chunk, so a chain may still fall back until real output has been handed out;
- `ctx.stall_timeout` bounds the silence between stream events (SSE keep-alive comments do not
  count): a stall before the first chunk is `UpstreamTimeout`, after it `StreamInterrupted`.
The waits themselves run on the event loop's timers (they guard real sockets): one
`StreamWatchdog` per stream, not a timeout per read; none at all for a stream a chain on the
system clock already watches with the same limits (`stream_watched`).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Coroutine, Mapping
from dataclasses import dataclass, replace
from typing import Any, Protocol

from headway.clock import SYSTEM_CLOCK, Clock, SystemClock
from headway.errors import HeadwayError, StreamInterrupted, UpstreamTimeout
from headway.providers.base import (
    AttemptContext,
    Capabilities,
    HttpCall,
    StreamDecoder,
    WireFormat,
)
from headway.transport.http import DeadlineTimeout, HttpResult, Transport
from headway.transport.sse import SSEParser
from headway.transport.watchdog import Limit, StreamWatchdog
from headway.types import (
    ChatChunk,
    ChatRequest,
    ChatResponse,
    EmbedRequest,
    EmbedResponse,
    ToolCallDelta,
)

# The stream's limits run on real time (SYSTEM_CLOCK): they guard real sockets.
_monotonic = time.monotonic


class PathStrategy(Protocol):
    def route(self, call: HttpCall) -> HttpCall:
        """The call as this endpoint wants it (path and query rewritten)."""
        ...


class DirectPaths:
    """Paths used as the wire format gives them, under the base URL (OpenAI, vLLM, Ollama...)."""

    __slots__ = ()

    def route(self, call: HttpCall) -> HttpCall:
        return call


@dataclass(slots=True, frozen=True)
class AzureDeploymentPaths:
    """Azure OpenAI's classic data plane: `/openai/deployments/{deployment}{path}?api-version=`.
    `prefix` is `/openai` unless the configured base URL already ends with it."""

    deployment: str
    api_version: str
    prefix: str = "/openai"

    def route(self, call: HttpCall) -> HttpCall:
        call.path = f"{self.prefix}/deployments/{self.deployment}{call.path}"
        call.query = {**call.query, "api-version": self.api_version}
        return call


def bearer_auth(key: str | None) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"} if key else {}


def header_auth(key: str | None, header: str = "api-key") -> dict[str, str]:
    return {header: key} if key else {}


class _Relay:
    """Body bytes -> the chunks to hand out. A bare role announcement is held back to ride on the
    first real chunk, so a chain may still fall back until real output has been handed out."""

    __slots__ = ("decoder", "error", "feed_data", "held", "parser")

    def __init__(self, decoder: StreamDecoder) -> None:
        self.decoder = decoder
        #: the decoder's `feed_data` (an event as its data alone), if it has one: the common
        #: frame, a single `data:` line (`SSEParser.data_only`), is then decoded without the
        #: SSEEvent and the lists of `feed` (`HttpProvider._stream` does it, once per event)
        self.feed_data: Callable[[bytes], ChatChunk | None] | None = getattr(
            decoder, "feed_data", None
        )
        self.parser = SSEParser()
        self.held: str | None = None  # a role announced before any output
        #: an error met after the chunks `feed` returned: raise it once they are handed out
        self.error: HeadwayError | None = None

    def feed(self, data: bytes) -> list[ChatChunk] | None:
        """The chunks completed by `data` (b"": the end of the body); None when no event was
        (only comments or part of an event)."""
        events = self.parser.feed(data) if data else self.parser.flush()
        if not events:
            return None
        out: list[ChatChunk] = []
        for event in events:
            try:
                decoded = self.decoder.feed(event)
            except HeadwayError as exc:
                if not out:
                    raise
                self.error = exc  # an in-band error after output: hand out what came before it
                break
            for chunk in decoded:
                if not (
                    chunk.text
                    or chunk.tool_calls
                    or chunk.finish_reason
                    or chunk.usage
                    or chunk.refusal
                ):
                    self.held = chunk.role or self.held
                    continue
                if self.held is not None and chunk.role is None:
                    chunk.role = self.held
                self.held = None
                out.append(chunk)
        return out


class HttpProvider:
    """One deployment over HTTP. Implements `headway.providers.base.Provider`."""

    def __init__(
        self,
        name: str,
        *,
        wire: WireFormat,
        model: str,
        base_url: str,
        transport: Transport,
        headers: Mapping[str, str] | None = None,
        paths: PathStrategy | None = None,
        capabilities: Capabilities | None = None,
        clock: Clock = SYSTEM_CLOCK,
        timeout_s: float = 600.0,
        max_connections: int | None = None,
        label: str | None = None,
        drain_timeout_s: float = 0.05,
    ) -> None:
        self.name = name
        self.model = model
        self.capabilities = capabilities or Capabilities()
        self.base_url = base_url.rstrip("/")
        self._wire = wire
        self._transport = transport
        self._headers = {"Content-Type": "application/json", **(headers or {})}
        self._paths: PathStrategy = paths or DirectPaths()
        #: the endpoint's rewrite, None when paths are used as given (no call per request then)
        self._route: Callable[[HttpCall], HttpCall] | None = (
            None if type(self._paths) is DirectPaths else self._paths.route
        )
        self._clock = clock
        self._timeout_s = timeout_s
        self._max_connections = max_connections
        self._label = label or name
        self._drain_timeout_s = drain_timeout_s

    # ---- helpers ------------------------------------------------------------------------------

    def _headers_for(self, call: HttpCall, ctx: AttemptContext) -> Mapping[str, str]:
        if not call.headers and not ctx.extra_headers:
            return self._headers  # the common case: no per-call dict at all
        return {**self._headers, **call.headers, **ctx.extra_headers}

    def _remaining(self, ctx: AttemptContext) -> float:
        if ctx.deadline is None:
            return self._timeout_s
        return min(self._timeout_s, ctx.deadline - self._clock.monotonic())

    def _observe(self, headers: Mapping[str, str], ctx: AttemptContext) -> None:
        if ctx.on_ratelimit is not None:
            snapshot = self._wire.ratelimit(headers, self._clock.time())
            if snapshot is not None:
                ctx.on_ratelimit(snapshot)

    def _tag(self, exc: HeadwayError) -> None:
        if exc.provider is None:
            exc.provider = self._label

    # Sending is split in two plain functions around the caller's one `await`, rather than a
    # coroutine of its own: a layer fewer to create and resume on every call.
    # (`_chat`, once per request, does all three inline.)
    def _send(self, call: HttpCall, ctx: AttemptContext, timeout: float) -> Awaitable[HttpResult]:
        return self._transport.request(
            call,
            self.base_url,
            self._headers_for(call, ctx),
            timeout=timeout,
            max_connections=self._max_connections,
        )

    def _body(self, result: HttpResult, ctx: AttemptContext) -> bytes:
        """The answer's body, or its status classified as an error."""
        self._observe(result.headers, ctx)
        if not 200 <= result.status < 300:
            raise self._wire.classify_error(result.status, result.body, result.headers)
        return result.body

    # ---- Provider -----------------------------------------------------------------------------

    def chat(self, request: ChatRequest, ctx: AttemptContext) -> Coroutine[Any, Any, ChatResponse]:
        return self._chat(request, ctx, False)

    @property
    def bounds_deadlines(self) -> bool:
        """`chat_bounded` keeps `ctx.deadline` on real time (the transport's timers) exactly when
        this provider's clock is the system clock."""
        return isinstance(self._clock, SystemClock)

    def chat_bounded(
        self, request: ChatRequest, ctx: AttemptContext
    ) -> Coroutine[Any, Any, ChatResponse]:
        """`chat` for a caller that leaves `ctx.deadline` to this provider instead of timing the
        attempt itself (a chain on the system clock): when that deadline passes before the answer
        it raises the built-in TimeoutError, as `headway.routing.deadline.within` would, not an
        UpstreamTimeout of its own. A timer per attempt fewer: the transport's is enough."""
        return self._chat(request, ctx, True)

    async def _chat(self, request: ChatRequest, ctx: AttemptContext, bounded: bool) -> ChatResponse:
        if request.stream:
            request = replace(request, stream=False)
        call = self._wire.chat_call(request, self.model)
        if self._route is not None:
            call = self._route(call)
        # `_remaining`, `_send` (with `_headers_for`'s common case) and `_body` inline: four
        # Python calls fewer per request
        deadline = ctx.deadline
        timeout = (
            self._timeout_s
            if deadline is None
            else min(self._timeout_s, deadline - self._clock.monotonic())
        )
        headers = (
            self._headers
            if not call.headers and not ctx.extra_headers
            else self._headers_for(call, ctx)
        )
        try:
            result = await self._transport.request(
                call,
                self.base_url,
                headers,
                timeout=timeout,
                max_connections=self._max_connections,
            )
            if ctx.on_ratelimit is not None:
                self._observe(result.headers, ctx)
            if not 200 <= result.status < 300:
                raise self._wire.classify_error(result.status, result.body, result.headers)
            response = self._wire.chat_response(result.body)
        except DeadlineTimeout as exc:
            # below `timeout_s`, the transport's limit was ctx.deadline, which the caller names
            if bounded and timeout < self._timeout_s:
                raise TimeoutError from None
            self._tag(exc)
            raise
        except HeadwayError as exc:
            self._tag(exc)
            raise
        if not response.model:
            response.model = self.model
        return response

    async def embed(self, request: EmbedRequest, ctx: AttemptContext) -> EmbedResponse:
        call = self._paths.route(self._wire.embed_call(request, self.model))
        try:
            result = await self._send(call, ctx, self._remaining(ctx))
            response = self._wire.embed_response(self._body(result, ctx))
        except HeadwayError as exc:
            self._tag(exc)
            raise
        if not response.model:
            response.model = self.model
        return response

    def stream(self, request: ChatRequest, ctx: AttemptContext) -> AsyncIterator[ChatChunk]:
        return self._stream(request, ctx, watched=False)

    def stream_watched(self, request: ChatRequest, ctx: AttemptContext) -> AsyncIterator[ChatChunk]:
        """`stream` for a caller that enforces `ctx`'s limits itself around every read of this
        stream (a chain on the system clock: its watchdog times the first token from before
        this call, the stall since the last chunk it took and `ctx.deadline`). This stream then
        runs no watchdog of its own unless one of its own limits can pass first
        (`_needs_watchdog`): one timer and one `begin` per event fewer. Needs `bounds_deadlines`
        (the caller's limits and these on the same clock)."""
        return self._stream(request, ctx, watched=True)

    def _needs_watchdog(self, ctx: AttemptContext, remaining: float) -> bool:
        """Whether a watched stream still needs its own watchdog: when `timeout_s` ends it
        before `ctx.deadline`, or when its stall limit, which here also counts between events
        before the first token, is shorter than the first-token limit. Otherwise the caller's
        limits always pass first (its first-token limit counts from earlier, its stall limit
        from a later moment than this stream's would), so the caller's error is the one seen."""
        if ctx.deadline is None or remaining >= self._timeout_s:
            return True
        stall = ctx.stall_timeout
        return stall is not None and (ctx.ttft_timeout is None or stall < ctx.ttft_timeout)

    async def _stream(
        self, request: ChatRequest, ctx: AttemptContext, *, watched: bool
    ) -> AsyncIterator[ChatChunk]:
        if not request.stream:
            request = replace(request, stream=True)
        call = self._wire.chat_call(request, self.model)
        if self._route is not None:
            call = self._route(call)
        start = _monotonic()
        remaining = self._remaining(ctx)
        end = start + remaining
        ttft_end = start + ctx.ttft_timeout if ctx.ttft_timeout is not None else None
        try:
            async with self._transport.stream(
                call,
                self.base_url,
                self._headers_for(call, ctx),
                timeout=min(end, ttft_end if ttft_end is not None else end) - start,
                max_connections=self._max_connections,
            ) as up:
                self._observe(up.headers, ctx)
                if not 200 <= up.status < 300:
                    body = await up.read(max(0.0, end - _monotonic()))
                    raise self._wire.classify_error(up.status, body, up.headers)
                if up.headers.get("Content-Type", "").startswith("application/json"):
                    # a server that ignored `stream: true` answered with one JSON body
                    body = await up.read(max(0.0, end - _monotonic()))
                    for chunk in _as_chunks(self._wire.chat_response(body), self.model):
                        yield chunk
                    return
                # Read and decode here rather than in a generator of its own: each generator
                # layer costs every chunk a resumption.
                relay = _Relay(self._wire.stream_decoder(request, self.model))
                decoder = relay.decoder
                data_only = relay.parser.data_only
                feed_data = relay.feed_data
                dog: StreamWatchdog | None = None
                if not watched or self._needs_watchdog(ctx, remaining):
                    dog = StreamWatchdog(
                        SYSTEM_CLOCK,
                        _monotonic(),
                        end=end,
                        first=ttft_end,
                        stall=ctx.stall_timeout,
                        stall_first=True,
                    )
                eof = False
                try:
                    while not decoder.done and not eof:
                        if dog is None:  # watched: the caller times this wait
                            data = await up.next_chunk(None)
                        else:
                            dog.begin()
                            try:
                                data = await up.next_chunk(None)
                            except asyncio.CancelledError:
                                if dog.expired():
                                    raise self._timeout(dog.fired, dog.started, ctx) from None
                                raise
                            finally:
                                dog.waiting = False
                        eof = not data
                        if feed_data is not None and (raw := data_only(data)) is not None:
                            # Nearly every frame: one `data:` line, one chunk at most, decoded
                            # without `_Relay.feed`'s lists; its hold-back inlined (per event).
                            one = feed_data(raw)  # one event: its error has no output to follow
                            if dog is not None:
                                dog.last = _monotonic()
                            if one is None:
                                continue
                            if not (
                                one.text
                                or one.tool_calls
                                or one.finish_reason
                                or one.usage
                                or one.refusal
                            ):
                                relay.held = one.role or relay.held
                                continue
                            held = relay.held
                            if held is not None:
                                if one.role is None:
                                    one.role = held
                                relay.held = None
                            if dog is not None:
                                dog.started = True  # only lifts the first-token limit: no re-arm
                            yield one
                            continue
                        chunks = relay.feed(data)
                        if chunks is None:
                            continue  # keep-alive comments do not count as life
                        if dog is not None:
                            dog.last = _monotonic()
                            if chunks:
                                dog.started = True  # only lifts the first-token limit: no re-arm
                        for chunk in chunks:
                            yield chunk
                        if relay.error is not None:
                            raise relay.error
                    for chunk in relay.decoder.finish():
                        yield chunk
                finally:
                    if dog is not None:
                        dog.close()
                await up.drain(self._drain_timeout_s)
        except HeadwayError as exc:
            self._tag(exc)
            raise

    def _timeout(self, limit: Limit | None, started: bool, ctx: AttemptContext) -> HeadwayError:
        if limit == "first":
            return UpstreamTimeout(f"no first token within {ctx.ttft_timeout:g}s")
        if limit == "stall":
            message = f"upstream stream stalled: no event for {ctx.stall_timeout:g}s"
            return StreamInterrupted(message) if started else UpstreamTimeout(message)
        return UpstreamTimeout("the attempt's deadline passed while streaming")

    async def aclose(self) -> None:
        return None  # the transport is shared and closed with the Gateway's services


def _as_chunks(response: ChatResponse, model: str) -> list[ChatChunk]:
    calls = tuple(
        ToolCallDelta(index=i, id=c.id, name=c.name, arguments=c.arguments)
        for i, c in enumerate(response.tool_calls)
    )
    rid, rmodel, created = response.id, response.model or model, response.created
    out: list[ChatChunk] = []
    # positional: keywords to a class cost ~1k instructions each on 3.11
    if response.content or calls:
        out.append(
            ChatChunk(rid, rmodel, response.content or "", calls, None, None, created, "assistant")
        )
    out.append(ChatChunk(rid, rmodel, "", (), response.finish_reason, response.usage, created))
    return out
