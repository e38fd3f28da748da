"""The neutral simulation engine: admission (outages, limits, injected failures), timing, content.

It speaks headway's neutral types only, so the in-process provider and every fake HTTP server
(OpenAI now; Anthropic and Gemini flavours later) share it. All waiting goes through the clock,
and nothing waits when every latency is zero.

    engine = SimEngine(SimSettings(latency_p50_ms=0, ttft_p50_ms=0, ms_per_token=0), clock=clock)
    reply = await engine.chat(request)                        # ChatResponse, exact usage
    async for item in engine.stream(request):                 # ChatChunk ... then either a final
        ...                                                   # chunk (finish + usage) or a StreamFault
    vectors = await engine.embed(EmbedRequest(...))

Errors raised before a stream starts (429 with retry_after, injected statuses, outages, a refused
prefill) are headway errors whose `upstream_status` is the HTTP status a real provider would send.
"""

from __future__ import annotations

import asyncio
import itertools
import math
import os
from collections.abc import AsyncGenerator, Callable, Iterator

from headway import tokens
from headway.clock import SYSTEM_CLOCK, Clock
from headway.config.schema import SimSettings
from headway.errors import (
    HeadwayError,
    InvalidRequest,
    StreamInterrupted,
    UpstreamRateLimited,
    UpstreamTimeout,
)
from headway.providers.sim import embed, generate
from headway.providers.sim.behaviour import (
    OUTAGE_STATUS,
    SimControl,
    SimStats,
    StreamFault,
    error_for_status,
)
from headway.providers.sim.ratelimit import LimitState, Rejection, go_duration
from headway.types import (
    ChatChunk,
    ChatRequest,
    ChatResponse,
    EmbedRequest,
    EmbedResponse,
    ToolCall,
    ToolCallDelta,
    Usage,
)

Expired = Callable[[], HeadwayError]


def _deadline_error() -> HeadwayError:
    return UpstreamTimeout("the attempt's deadline passed before the sim answered", provider="sim")


def _ttft_error() -> HeadwayError:
    return UpstreamTimeout("no first token within the TTFT timeout", provider="sim")


def _stall_error() -> HeadwayError:
    return StreamInterrupted("the stream stalled past the stall timeout", provider="sim")


class SimEngine:
    def __init__(self, settings: SimSettings | None = None, *, clock: Clock = SYSTEM_CLOCK) -> None:
        self.clock = clock
        self.control = SimControl(settings or SimSettings(), clock)
        self.stats = SimStats()
        self._ids = itertools.count(1)
        self._prefix = os.urandom(4).hex()

    @property
    def settings(self) -> SimSettings:
        return self.control.settings

    def reset(self) -> None:
        """Initial settings, full limits, no outages, zeroed stats."""
        self.control.reset()
        self.stats.reset()

    def limit_state(self) -> LimitState:
        return self.control.limiter.state(self.clock.monotonic())

    def plan(self, request: ChatRequest, model: str | None = None) -> generate.Plan:
        """The answer `request` would get (pure; no limits, failures or timing)."""
        s = self.control.settings
        return generate.plan(
            request,
            model=model or request.model,
            seed=s.seed,
            encoding=s.encoding,
            answer_tokens=(s.answer_tokens_min, s.answer_tokens_max),
        )

    def new_id(self, prefix: str = "chatcmpl-") -> str:
        return f"{prefix}{self._prefix}{next(self._ids):08x}"

    # ---- admission -------------------------------------------------------------------------

    def _rate_limited(self, rej: Rejection, model: str) -> HeadwayError:
        per = "tokens per min (TPM)" if rej.kind == "tokens" else "requests per min (RPM)"
        if rej.retry_after is None:
            msg = (
                f"Request too large for {model} in organization org-sim on {per}: "
                f"Limit {rej.limit}, Requested {rej.requested}."
            )
        else:
            msg = (
                f"Rate limit reached for {model} in organization org-sim on {per}: "
                f"Limit {rej.limit}, Used {rej.used}, Requested {rej.requested}. "
                f"Please try again in {go_duration(rej.retry_after)}."
            )
        return UpstreamRateLimited(
            msg, retry_after=rej.retry_after, provider="sim", upstream_status=429
        )

    def _admit(self, charge: int, model: str) -> bool:
        """Outage, limits, injected errors. Returns whether the failures apply to this request."""
        ctl, stats = self.control, self.stats
        now = self.clock.monotonic()
        if ctl.outages and ctl.in_outage(now):
            stats.outage_errors += 1
            raise error_for_status(
                OUTAGE_STATUS, "The service is temporarily unavailable (outage)."
            )
        rejection = ctl.limiter.acquire(charge, now)
        if rejection is not None:
            stats.rate_limited += 1
            raise self._rate_limited(rejection, model)
        faulty = ctl.take_fault()
        s = ctl.settings
        if faulty and s.error_rate > 0 and ctl.rng.random() < s.error_rate:
            stats.errors_injected += 1
            raise error_for_status(
                s.error_status, "The server had an error while processing your request."
            )
        return faulty

    def _admit_chat(self, request: ChatRequest, model: str) -> tuple[generate.Plan, bool]:
        if not request.messages:
            raise InvalidRequest(
                "messages must not be empty", param="messages", upstream_status=400
            )
        plan = self.plan(request, model)
        s = self.control.settings
        if plan.prefill is not None and not s.prefill:
            self.stats.prefill_rejected += 1
            raise InvalidRequest(
                "This model does not support assistant message prefill; "
                "the conversation must end with a user message.",
                param="messages",
                provider="sim",
                upstream_status=400,
            )
        cap = request.max_tokens if request.max_tokens is not None else s.default_max_tokens
        return plan, self._admit(plan.input_tokens + cap, model)

    # ---- waiting ---------------------------------------------------------------------------

    async def _wait(self, seconds: float, limit_at: float | None, expired: Expired) -> None:
        """Wait `seconds`, unless `limit_at` (monotonic) comes first: then wait until it and raise."""
        if limit_at is not None:
            left = limit_at - self.clock.monotonic()
            if seconds > left:
                if left > 0:
                    await self.clock.sleep(left)
                raise expired()
        if seconds > 0:
            await self.clock.sleep(seconds)

    async def _hang(self, limit_at: float | None, expired: Expired) -> None:
        self.stats.hangs += 1
        if limit_at is None:
            await asyncio.get_running_loop().create_future()  # until cancelled
        await self._wait(math.inf, limit_at, expired)

    def _limit(
        self, deadline: float | None, timeout: float | None, err: Expired
    ) -> tuple[float | None, Expired]:
        if timeout is None:
            return deadline, _deadline_error
        at = self.clock.monotonic() + timeout
        if deadline is not None and deadline <= at:
            return deadline, _deadline_error
        return at, err

    # ---- chat ------------------------------------------------------------------------------

    async def chat(
        self, request: ChatRequest, *, model: str | None = None, deadline: float | None = None
    ) -> ChatResponse:
        model = model or request.model
        stats = self.stats
        stats.requests += 1
        stats.chat_requests += 1
        stats.enter()
        try:
            plan, faulty = self._admit_chat(request, model)
            s = self.control.settings
            if faulty and s.hang:
                await self._hang(deadline, _deadline_error)
            delay = self.control.latency.sample(self.control.rng)
            if faulty and s.slow_ms:
                delay += s.slow_ms / 1000.0
            if delay > 0 or deadline is not None:
                await self._wait(delay, deadline, _deadline_error)
            stats.input_tokens += plan.input_tokens
            stats.output_tokens += plan.output_tokens
            calls = tuple(ToolCall(c.id, c.name, c.arguments) for c in plan.calls)
            return ChatResponse(
                id=self.new_id(),
                model=model,
                content=None if calls else plan.text,
                finish_reason=plan.finish_reason,
                usage=Usage(plan.input_tokens, plan.output_tokens),
                tool_calls=calls,
                created=int(self.clock.time()),
            )
        finally:
            stats.leave()

    @staticmethod
    def _units(plan: generate.Plan) -> Iterator[tuple[str, tuple[ToolCallDelta, ...], int]]:
        """The answer as streamed: (text, tool-call deltas, tokens) per chunk."""
        for piece in plan.pieces:
            yield piece, (), 1
        for i, call in enumerate(plan.calls):
            yield "", (ToolCallDelta(i, call.id, call.name, ""),), call.name_tokens
            for frag in call.fragments:
                yield "", (ToolCallDelta(i, arguments=frag),), 1

    async def stream(
        self,
        request: ChatRequest,
        *,
        model: str | None = None,
        deadline: float | None = None,
        ttft_timeout: float | None = None,
        stall_timeout: float | None = None,
    ) -> AsyncGenerator[ChatChunk | StreamFault, None]:
        """Chunks one token each; the last item is a chunk with finish reason and usage, or a
        StreamFault. The first chunk carries `role="assistant"`."""
        model = model or request.model
        stats = self.stats
        stats.requests += 1
        stats.stream_requests += 1
        stats.enter()
        try:
            plan, faulty = self._admit_chat(request, model)
            ctl = self.control
            s = ctl.settings
            first_at, first_err = self._limit(deadline, ttft_timeout, _ttft_error)
            if faulty and s.hang:
                await self._hang(first_at, first_err)
            delay = ctl.ttft.sample(ctl.rng)
            if faulty and s.slow_ms:
                delay += s.slow_ms / 1000.0
            if delay > 0 or first_at is not None:
                await self._wait(delay, first_at, first_err)
            stats.input_tokens += plan.input_tokens

            rid, created = self.new_id(), int(self.clock.time())
            cut = s.cut_after_tokens if faulty else None
            stall = s.stall_after_tokens if faulty and s.stall_s > 0 else None
            malformed = s.malformed_after_tokens if faulty else None
            in_band = s.error_after_tokens if faulty else None
            pace = s.ms_per_token / 1000.0
            emitted = 0
            role: str | None = "assistant"
            faults = cut is not None or malformed is not None or in_band is not None
            for text, deltas, n in self._units(plan):
                fault = self._fault(emitted, cut, malformed, in_band) if faults else None
                if fault is not None:
                    yield fault
                    return
                if stall is not None and emitted >= stall:
                    stall = None
                    stats.stalls += 1
                    at, err = self._limit(deadline, stall_timeout, _stall_error)
                    await self._wait(s.stall_s, at, err)
                if pace > 0 and role is None:
                    at, err = self._limit(deadline, stall_timeout, _stall_error)
                    await self._wait(pace * n, at, err)
                emitted += n
                stats.output_tokens += n
                yield ChatChunk(rid, model, text, deltas, created=created, role=role)
                role = None
            fault = self._fault(emitted, cut, malformed, in_band) if faults else None
            if fault is not None:
                yield fault
                return
            usage = Usage(plan.input_tokens, emitted)
            yield ChatChunk(
                rid,
                model,
                finish_reason=plan.finish_reason,
                usage=usage,
                created=created,
                role=role,
            )
        finally:
            stats.leave()

    def _fault(
        self, emitted: int, cut: int | None, malformed: int | None, in_band: int | None
    ) -> StreamFault | None:
        stats = self.stats
        if cut is not None and emitted >= cut:
            stats.cuts += 1
            return StreamFault(
                "cut", StreamInterrupted("connection closed mid-stream", provider="sim")
            )
        if malformed is not None and emitted >= malformed:
            stats.malformed += 1
            return StreamFault(
                "malformed", StreamInterrupted("malformed stream chunk", provider="sim")
            )
        if in_band is not None and emitted >= in_band:
            stats.in_band_errors += 1
            err = error_for_status(500, "The server had an error while processing your request.")
            return StreamFault("error", err)
        return None

    # ---- embeddings ------------------------------------------------------------------------

    async def embed(
        self, request: EmbedRequest, *, model: str | None = None, deadline: float | None = None
    ) -> EmbedResponse:
        model = model or request.model
        stats = self.stats
        stats.requests += 1
        stats.embed_requests += 1
        stats.enter()
        try:
            s = self.control.settings
            texts: list[str] = []
            used = 0
            for item in request.inputs:
                if isinstance(item, str):
                    texts.append(item)
                    used += tokens.count(item, s.encoding)
                else:
                    texts.append(" ".join(map(str, item)))
                    used += len(item)
            faulty = self._admit(used, model)
            if faulty and s.hang:
                await self._hang(deadline, _deadline_error)
            delay = self.control.ttft.sample(self.control.rng)
            if delay > 0 or deadline is not None:
                await self._wait(delay, deadline, _deadline_error)
            dim = request.dimensions or s.embedding_dim
            stats.input_tokens += used
            return EmbedResponse(model, [embed.vector(t, dim) for t in texts], Usage(used, 0))
        finally:
            stats.leave()
