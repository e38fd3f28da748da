"""The outermost stage: times each call and records what `call.served` says happened."""

from __future__ import annotations

from collections.abc import AsyncIterator

from headway.clock import Clock
from headway.config.runtime import RuntimeConfig
from headway.context import Call
from headway.errors import HeadwayError, JobQueued
from headway.observe.metrics import Metrics, input_bucket
from headway.pipeline import ChatHandler, StreamHandler, aclose
from headway.services import Services
from headway.types import ChatChunk, ChatResponse


class ObserveStage:
    name = "observe"

    def __init__(self, metrics: Metrics, clock: Clock) -> None:
        self.metrics = metrics
        self._clock = clock

    def _record(self, call: Call, started: float, outcome: str, stream: bool) -> None:
        m = self.metrics
        served = call.served
        deployment = served.deployment or "-"
        cache = served.cache
        m.requests_of(served.route or "-", deployment, outcome, cache).inc()
        usage = served.usage
        tokens_in = usage.input_tokens if usage else 0
        m.latency_of(deployment, input_bucket(tokens_in), "1" if stream else "0").observe(
            self._clock.monotonic() - started
        )
        if served.ttft_s is not None:
            m.ttft_of(deployment).observe(served.ttft_s)
        if usage is not None and (cache == "miss" or cache == "off"):
            tokens = m.tokens_of
            tokens(deployment, "input").inc(usage.input_tokens)
            tokens(deployment, "output").inc(usage.output_tokens)
            if usage.cached_input_tokens:
                tokens(deployment, "cached_input").inc(usage.cached_input_tokens)
        if served.cost_usd:
            if cache == "exact" or cache == "semantic" or cache == "stale":
                m.cache_savings_of(cache).inc(served.cost_usd)
            else:
                m.cost_of(deployment).inc(served.cost_usd)
        for step in served.degraded:
            m.degraded_of(step).inc()

    async def chat(self, call: Call, nxt: ChatHandler) -> ChatResponse:
        started = self._clock.monotonic()
        try:
            response = await nxt(call)
        except HeadwayError as exc:
            self._record(call, started, _outcome(exc), stream=False)
            raise
        self._record(call, started, "ok", stream=False)
        return response

    async def stream(self, call: Call, nxt: StreamHandler) -> AsyncIterator[ChatChunk]:
        started = self._clock.monotonic()
        outcome = "cancelled"
        first = True
        chunks = nxt(call)
        try:
            async for chunk in chunks:
                if first:
                    first = False
                    if call.served.ttft_s is None:
                        call.served.ttft_s = self._clock.monotonic() - started
                yield chunk
            outcome = "ok"
        except HeadwayError as exc:
            outcome = _outcome(exc)
            raise
        finally:
            try:
                # a caller that went away: the inner stages settle (cost) before we record
                await aclose(chunks)
            finally:
                self._record(call, started, outcome, stream=True)


def _outcome(exc: HeadwayError) -> str:
    # a call the degradation ladder queued (202) is not an error
    return "queued" if isinstance(exc, JobQueued) else f"error_{exc.status}"


def build(runtime: RuntimeConfig, services: Services) -> ObserveStage | None:
    if not runtime.file.observe.metrics:
        return None
    metrics = services.extras.get("metrics")
    if not isinstance(metrics, Metrics):
        metrics = Metrics(runtime.file.observe.latency_buckets)
        metrics.listen(services.events)
        services.extras["metrics"] = metrics
    return ObserveStage(metrics, services.clock)
