"""The sim as a `Provider`: one deployment backed by its own engine, no network.

Everything the engine reports as a stream fault is raised the way an HTTP provider's stream
decoder would raise it (`StreamInterrupted` for a cut or malformed chunk, the classified error for
an in-band error event). The attempt's deadline, TTFT timeout and stall timeout are enforced on the
engine's clock, so resilience code can be tested with a FakeClock.
"""

from __future__ import annotations

from collections.abc import AsyncIterator

from headway.config.runtime import Deployment
from headway.config.schema import SimSettings
from headway.providers.base import AttemptContext, Capabilities, RateLimitSnapshot
from headway.providers.sim.behaviour import SimControl, SimStats, StreamFault
from headway.providers.sim.engine import SimEngine
from headway.services import Services
from headway.types import ChatChunk, ChatRequest, ChatResponse, EmbedRequest, EmbedResponse


class SimProvider:
    def __init__(self, name: str, model: str, engine: SimEngine) -> None:
        self.name = name
        self.model = model
        self.engine = engine
        self.capabilities = Capabilities(embeddings=True, prefill=engine.settings.prefill)

    @property
    def control(self) -> SimControl:
        return self.engine.control

    @property
    def stats(self) -> SimStats:
        return self.engine.stats

    def _report_limits(self, ctx: AttemptContext) -> None:
        if ctx.on_ratelimit is None:
            return
        state = self.engine.limit_state()
        if state.limit_requests is None and state.limit_tokens is None:
            return
        now = self.engine.clock.time()
        ctx.on_ratelimit(
            RateLimitSnapshot(
                observed_at=now,
                limit_requests=state.limit_requests,
                remaining_requests=state.remaining_requests,
                reset_requests_at=now + state.reset_requests_s,
                limit_tokens=state.limit_tokens,
                remaining_tokens=state.remaining_tokens,
                reset_tokens_at=now + state.reset_tokens_s,
            )
        )

    async def chat(self, request: ChatRequest, ctx: AttemptContext) -> ChatResponse:
        try:
            return await self.engine.chat(request, model=self.model, deadline=ctx.deadline)
        finally:
            self._report_limits(ctx)

    async def stream(self, request: ChatRequest, ctx: AttemptContext) -> AsyncIterator[ChatChunk]:
        items = self.engine.stream(
            request,
            model=self.model,
            deadline=ctx.deadline,
            ttft_timeout=ctx.ttft_timeout,
            stall_timeout=ctx.stall_timeout,
        )
        try:
            first = True
            async for item in items:
                if first:
                    first = False
                    self._report_limits(ctx)
                if isinstance(item, StreamFault):
                    raise item.error
                yield item
        finally:
            if first:
                self._report_limits(ctx)
            await items.aclose()

    async def embed(self, request: EmbedRequest, ctx: AttemptContext) -> EmbedResponse:
        try:
            return await self.engine.embed(request, model=self.model, deadline=ctx.deadline)
        finally:
            self._report_limits(ctx)

    async def aclose(self) -> None:
        return None


def build(deployment: Deployment, services: Services) -> SimProvider:
    """One engine per deployment: like a real provider, limits are per model."""
    settings = deployment.provider.sim or SimSettings()
    engine = SimEngine(settings, clock=services.clock)
    return SimProvider(deployment.name, deployment.model.model, engine)
