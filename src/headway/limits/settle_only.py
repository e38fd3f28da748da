"""Settlement without limits: what each call used and cost, when no limit or budget is enforced.

With `limits` and `budgets` both off there is nothing to reserve, yet spend must still be recorded
(the ledger listens to `call.settled`) and counted (metrics read `served.cost_usd`). This stage is
the after-call half of the limits stage and nothing else: no planning, no store round trip. Once
a call is over (a stream: when it ends, breaks, or the client goes away) it prices the usage with
the pricing table, sets `served.cost_usd` and emits `call.settled` as the full stage does.

Both modes agree on what a call is worth:
- answered upstream: the provider's reported usage at the serving deployment's price; a stream
  cut before its usage arrived is charged the input estimate plus the output already streamed;
- failed before any output: zero usage, zero cost (still one row: the call was made);
- a cache hit (exact, semantic, stale): zero usage and zero cost in `call.settled`, so the
  ledger's tokens and dollars are what providers billed. What the hit avoided (the cached
  answer's usage at the price of the deployment that would have served it) goes to
  `served.cost_usd`, unless the cache stage set it; the observe stage counts it as
  `headway_cache_savings_usd`, never as spend.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable

from headway import tokens
from headway.budgets.pricing import PriceBook
from headway.config.runtime import RuntimeConfig
from headway.context import Call
from headway.limits.estimate import Demand, Estimator
from headway.limits.settle import EVENT, HITS, account, emit_settled, settled_stream
from headway.observe.events import EventBus
from headway.pipeline import ChatHandler, StreamHandler
from headway.types import ChatChunk, ChatResponse, Usage

__all__ = ["EVENT", "SettleStage", "build_settle_only"]


async def _begin(call: Call) -> None:
    return None  # nothing to admit


def _no_demand() -> Demand:
    raise AssertionError("not called: the call's usage is known")  # pragma: no cover


def _nothing_streamed() -> int:
    raise AssertionError("not called: the call's usage is known")  # pragma: no cover


class SettleStage:
    name = "settle"

    def __init__(
        self, runtime: RuntimeConfig, prices: PriceBook, estimator: Estimator, events: EventBus
    ) -> None:
        self._prices = prices
        self._estimator = estimator
        self._events = events
        self._deps = runtime.deployments
        #: requested name -> the deployment a fresh call would try first
        self._first: dict[str, str] = {name: r.chain[0] for name, r in runtime.routes.items()}
        for name, dep in runtime.deployments.items():
            if not dep.model.embeddings:
                self._first[name] = name
        self._task_routes = dict(runtime.file.routing)

    def _first_of(self, call: Call) -> str | None:
        first = self._first.get(call.request.model)
        if first is None and call.task is not None and call.task in self._task_routes:
            first = self._first.get(self._task_routes[call.task])
        return first

    def _estimate(self, call: Call, dep: str | None) -> Demand:
        """The input estimate for a stream cut before its usage (rare: counted only then)."""
        deployment = self._deps.get(dep) if dep is not None else None
        if deployment is None:
            return Demand(self._estimator.count_input(call.request, tokens.DEFAULT_ENCODING), 0)
        return self._estimator.demand(call.request, deployment, 0)

    def settle(
        self, call: Call, reported: Usage | None, *, started: bool, parts: list[str] | None = None
    ) -> None:
        served = call.served
        hit = served.cache in HITS
        # a hit is priced at the deployment a fresh call would have tried first
        dep = self._first_of(call) if hit else served.deployment or self._first_of(call)
        if reported is None and started and not hit and served.usage is None:
            estimate, streamed = self._counters(call, dep, parts)
        else:  # `account` counts nothing: no closures to make (once per call)
            estimate, streamed = _no_demand, _nothing_streamed
        usage, cost = account(
            call,
            reported,
            started=started,
            price=self._prices.get(dep) if dep is not None else None,
            estimate=estimate,
            streamed=streamed,
        )
        if self._events.wants(EVENT):  # `emit_settled`'s own test, without its call when no one
            emit_settled(self._events, call, usage, cost, served.deployment if hit else dep)

    def _counters(
        self, call: Call, dep: str | None, parts: list[str] | None
    ) -> tuple[Callable[[], Demand], Callable[[], int]]:
        """What `account` counts for a stream cut before its usage arrived: the input estimate
        and the output already streamed."""
        return (
            lambda: self._estimate(call, dep),
            lambda: self._estimator.streamed_output("".join(parts)) if parts else 0,
        )

    async def _end(
        self, call: Call, _: None, usage: Usage | None, started: bool, parts: list[str]
    ) -> None:
        self.settle(call, usage, started=started, parts=parts)

    async def chat(self, call: Call, nxt: ChatHandler) -> ChatResponse:
        try:
            response = await nxt(call)
        except BaseException:
            self.settle(call, None, started=False)
            raise
        self.settle(call, response.usage, started=True)
        return response

    def stream(self, call: Call, nxt: StreamHandler) -> AsyncIterator[ChatChunk]:
        return settled_stream(call, nxt, _begin, self._end)


def build_settle_only(runtime: RuntimeConfig, events: EventBus) -> SettleStage | None:
    """The stage when limits and budgets are off, if anyone needs a call's cost: the ledger
    (`call.settled`) or the cost and savings metrics (`served.cost_usd`)."""
    file = runtime.file
    if not (file.ledger.enabled or file.observe.metrics):
        return None
    return SettleStage(runtime, PriceBook(runtime), Estimator(file.limits.estimate), events)
