"""The settle-only mode (limits and budgets off) against the full stage: the same `call.settled`
for answered calls, streams and cache hits, and savings (not spend) for hits in the metrics."""

from __future__ import annotations

from collections.abc import AsyncIterator
from decimal import Decimal

import pytest

from headway.clock import FakeClock
from headway.config.load import load
from headway.context import Call
from headway.errors import JobQueued
from headway.limits.settle_only import SettleStage
from headway.limits.stage import LimitsStage, build
from headway.observe.events import Event
from headway.observe.metrics import Metrics
from headway.observe.stage import ObserveStage
from headway.pipeline import ChatHandler, Stage, StreamHandler, compose
from headway.services import Services
from headway.types import ChatChunk, ChatResponse, FinishReason, Usage
from tests.limits.fakes import FakeTerminal
from tests.limits.rig import BASE, call

FULL = "budgets: {enabled: true, global: [{period: day, usd: 10}]}\n"
#: route r's first deployment is gpt-4o: $2.50 in, $10 out per 1M tokens
CACHED = Usage(1000, 500)
SAVED = 1000 * 2.5e-6 + 500 * 10e-6


class Hit:
    """Answers from "cache" without going upstream, as the cache stage does."""

    name = "cache"

    def __init__(self, saved: float | None = None) -> None:
        self.saved = saved

    def _mark(self, call: Call) -> None:
        call.served.cache = "exact"
        call.served.usage = CACHED
        if self.saved is not None:
            call.served.cost_usd = self.saved

    async def chat(self, call: Call, nxt: ChatHandler) -> ChatResponse:
        self._mark(call)
        return ChatResponse("id", "a", "cached", FinishReason.STOP, CACHED)

    async def stream(self, call: Call, nxt: StreamHandler) -> AsyncIterator[ChatChunk]:
        self._mark(call)
        yield ChatChunk("id", "a", text="cached")
        yield ChatChunk("id", "a", finish_reason=FinishReason.STOP, usage=CACHED)


class Queues:
    name = "degrade"

    async def chat(self, call: Call, nxt: ChatHandler) -> ChatResponse:
        raise JobQueued("job_1")

    async def stream(self, call: Call, nxt: StreamHandler) -> AsyncIterator[ChatChunk]:
        raise JobQueued("job_1")
        yield ChatChunk("", "")  # pragma: no cover - makes this an async generator


def pipeline(
    extra: str, clock: FakeClock, inner: list[Stage] | None = None
) -> tuple[ChatHandler, StreamHandler, list[Event], Metrics, Stage]:
    runtime = load(text=BASE + extra, env={})
    services = Services(clock=clock)
    stage = build(runtime, services)
    assert stage is not None
    metrics = Metrics((1.0,))
    events: list[Event] = []
    services.events.subscribe("call.settled", events.append)
    terminal = FakeTerminal(runtime)
    chat, stream = compose([ObserveStage(metrics, clock), stage, *(inner or [])], terminal)
    return chat, stream, events, metrics, stage


def sample(metrics: Metrics, name: str, **labels: str) -> float:
    return metrics.registry.get_sample_value(name, labels) or 0.0


@pytest.mark.parametrize("extra", ["", FULL], ids=["settle-only", "full"])
async def test_answered_calls_settle_the_same_in_both_modes(
    extra: str, fake_clock: FakeClock
) -> None:
    chat, stream, events, metrics, stage = pipeline(extra, fake_clock)
    assert isinstance(stage, SettleStage if not extra else LimitsStage)
    c1, c2 = call(), call()
    await chat(c1)
    [chunk async for chunk in stream(c2)]
    expected = Decimal("0.00075")  # 100 in + 50 out on gpt-4o
    assert [(e.data["usage"], e.data["cost_usd"], e.data["deployment"]) for e in events] == [
        (Usage(100, 50), expected, "a")
    ] * 2
    assert c1.served.cost_usd == c2.served.cost_usd == pytest.approx(0.00075)
    assert sample(metrics, "headway_cost_usd_total", deployment="a") == pytest.approx(0.0015)


@pytest.mark.parametrize("extra", ["", FULL], ids=["settle-only", "full"])
async def test_cache_hits_are_savings_never_spend(extra: str, fake_clock: FakeClock) -> None:
    chat, stream, events, metrics, _ = pipeline(extra, fake_clock, [Hit()])
    c1, c2 = call(), call()
    await chat(c1)
    [chunk async for chunk in stream(c2)]
    for e in events:  # the ledger's row: nothing used, nothing paid, served by nobody
        assert (e.data["usage"], e.data["cost_usd"], e.data["deployment"]) == (Usage(), 0, None)
    assert len(events) == 2
    assert c1.served.cost_usd == c2.served.cost_usd == pytest.approx(SAVED)
    assert sample(metrics, "headway_cache_savings_usd_total", kind="exact") == pytest.approx(
        2 * SAVED
    )
    assert sample(metrics, "headway_cost_usd_total", deployment="-") == 0.0
    assert sample(metrics, "headway_tokens_total", deployment="-", kind="input") == 0.0


async def test_savings_the_cache_reported_are_kept(fake_clock: FakeClock) -> None:
    chat, _, events, _, _ = pipeline("", fake_clock, [Hit(saved=0.5)])
    c = call()
    await chat(c)
    assert c.served.cost_usd == 0.5 and events[0].data["cost_usd"] == 0


async def test_an_unpriced_deployment_costs_nothing_known(fake_clock: FakeClock) -> None:
    unpriced = "  c: {provider: oa, model: my-finetune}\nroutes:"
    runtime = load(text=BASE.replace("routes:", unpriced), env={})
    services = Services(clock=fake_clock)
    stage = build(runtime, services)
    assert isinstance(stage, SettleStage)
    events: list[Event] = []
    services.events.subscribe("call.settled", events.append)
    chat, _ = compose([stage], FakeTerminal(runtime))
    c = call(model="c")
    await chat(c)
    assert c.served.cost_usd is None
    assert (events[0].data["usage"], events[0].data["cost_usd"]) == (Usage(100, 50), None)


async def test_a_queued_call_is_counted_as_queued_not_as_an_error(fake_clock: FakeClock) -> None:
    chat, stream, _, metrics, _ = pipeline("", fake_clock, [Queues()])
    for run in (chat, lambda c: anext(stream(c))):
        with pytest.raises(JobQueued):
            await run(call())
    labels = {"route": "-", "deployment": "-", "cache": "off"}
    assert sample(metrics, "headway_requests_total", outcome="queued", **labels) == 2
    assert sample(metrics, "headway_requests_total", outcome="error_202", **labels) == 0
