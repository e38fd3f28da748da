"""The outermost stage: times each call and records what `call.served` says happened."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Protocol

from headway.clock import Clock
from headway.config.runtime import RuntimeConfig
from headway.context import Call
from headway.errors import HeadwayError, JobQueued
from headway.observe.metrics import INPUT_BUCKETS, Metrics, input_bucket
from headway.pipeline import ChatHandler, StreamHandler, aclose
from headway.services import Services
from headway.types import ChatChunk, ChatResponse

_FIRST_BOUND, _FIRST_NAME = INPUT_BUCKETS[0]


class _Counts(Protocol):
    def inc(self, amount: float = 1) -> None: ...


class _Observes(Protocol):
    def observe(self, amount: float) -> None: ...


class _Series:
    """The metric children one kind of call counts into, found with one lookup rather than one
    per metric (five label lookups per call cost more than the counting)."""

    __slots__ = ("cost", "latency", "requests", "tokens")

    def __init__(self, requests: _Counts, latency: _Observes) -> None:
        self.requests = requests
        self.latency = latency
        self.tokens: tuple[_Counts, _Counts] | None = None  # input, output
        self.cost: _Counts | None = None


class ObserveStage:
    name = "observe"

    def __init__(self, metrics: Metrics, clock: Clock) -> None:
        self.metrics = metrics
        self._clock = clock
        #: (route, deployment, outcome, cache, input bucket, stream) -> the children it counts into
        self._series: dict[tuple[str | None, str, str, str, str, bool], _Series] = {}

    def _new_series(self, key: tuple[str | None, str, str, str, str, bool]) -> _Series:
        """The children of one kind of call, met for the first time."""
        route, deployment, outcome, cache, bucket, stream = key
        m = self.metrics
        requests = m.requests_of(route or "-", deployment, outcome, cache)
        latency = m.latency_of(deployment, bucket, "1" if stream else "0")
        series = self._series[key] = _Series(requests, latency)
        return series

    def _record(self, call: Call, started: float, outcome: str, stream: bool) -> None:
        m = self.metrics
        served = call.served
        deployment = served.deployment or "-"
        cache = served.cache
        usage = served.usage
        tokens_in = usage.input_tokens if usage else 0
        # most prompts fall in the first bucket: named here without `input_bucket`'s call
        bucket = _FIRST_NAME if tokens_in < _FIRST_BOUND else input_bucket(tokens_in)
        key = (served.route, deployment, outcome, cache, bucket, stream)
        # looked up here, a call only for a kind of call not met before (once per call)
        series = self._series.get(key) or self._new_series(key)
        series.requests.inc()
        series.latency.observe(self._clock.monotonic() - started)
        if served.ttft_s is not None:
            m.ttft_of(deployment).observe(served.ttft_s)
        if usage is not None and (cache == "miss" or cache == "off"):
            tokens = series.tokens
            if tokens is None:  # created when first counted, as `labels` would create them
                tokens = series.tokens = (
                    m.tokens_of(deployment, "input"),
                    m.tokens_of(deployment, "output"),
                )
            tokens[0].inc(usage.input_tokens)
            tokens[1].inc(usage.output_tokens)
            if usage.cached_input_tokens:
                m.tokens_of(deployment, "cached_input").inc(usage.cached_input_tokens)
        if served.cost_usd:
            if cache == "exact" or cache == "semantic" or cache == "stale":
                m.cache_savings_of(cache).inc(served.cost_usd)
            else:
                cost = series.cost
                if cost is None:
                    cost = series.cost = m.cost_of(deployment)
                cost.inc(served.cost_usd)
        for step in served.degraded:
            m.degraded_of(step).inc()

    async def chat(self, call: Call, nxt: ChatHandler) -> ChatResponse:
        started = self._clock.monotonic()
        try:
            response = await nxt(call)
        except HeadwayError as exc:
            self._record(call, started, _outcome(exc), False)
            raise
        self._record(call, started, "ok", False)
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
                # (a stream that ended has settled: its generator is over)
                if outcome != "ok":
                    await aclose(chunks)
            finally:
                self._record(call, started, outcome, True)


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
