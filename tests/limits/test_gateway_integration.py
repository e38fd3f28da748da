"""The stage inside a real Gateway (sim provider, the real routing terminal)."""

from __future__ import annotations

from decimal import Decimal

import pytest

from headway.config.load import load
from headway.context import Call, Principal
from headway.errors import BudgetExceeded, RateLimited
from headway.gateway import Gateway
from headway.observe.events import Event
from headway.types import ChatRequest, Message

CONFIG = """
providers:
  sim:
    kind: sim
    sim: {latency_p50_ms: 0, latency_p99_ms: 0, ttft_p50_ms: 0, ms_per_token: 0}
models:
  big: {provider: sim, model: sim-large, input_price: 2.5, output_price: 10}
routes:
  default: {chain: [big]}
ledger: {enabled: false}
observe: {metrics: false}
limits: {enabled: true, user: {rpm: 2, tpm: 100000}, wait: {enabled: false}}
budgets: {enabled: true, user: [{period: day, usd: 1}]}
"""


def call() -> Call:
    request = ChatRequest(
        model="default", messages=(Message("user", "hello world"),), max_tokens=20
    )
    return Call(request, principal=Principal(user="alice"))


async def test_limits_and_budgets_in_a_gateway() -> None:
    events: list[Event] = []
    async with Gateway(load(text=CONFIG, env={})) as gw:
        gw.services.events.subscribe("call.settled", events.append)
        first = call()
        await gw.chat(call=first)
        assert first.served.ratelimit_headers["x-ratelimit-remaining-requests"] == "1"
        assert first.served.cost_usd is not None and first.served.cost_usd > 0
        chunks = [c async for c in gw.stream(call=call())]
        assert chunks[-1].finish_reason is not None
        with pytest.raises(RateLimited) as info:
            await gw.chat(call=call())
        assert info.value.tier == "user" and not isinstance(info.value, BudgetExceeded)
    assert len(events) == 2
    assert all(isinstance(e.data["cost_usd"], Decimal) for e in events)
    assert [e.data["deployment"] for e in events] == ["big", "big"]
