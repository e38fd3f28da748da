"""Budgets through the stage: worst case reserved, real cost settled, alerts, cache hits."""

from __future__ import annotations

from decimal import Decimal

import pytest

from headway.budgets.values import BudgetSpec
from headway.clock import FakeClock
from headway.context import Call, Principal
from headway.errors import BudgetExceeded
from headway.pipeline import ChatHandler, StreamHandler
from headway.types import ChatResponse, FinishReason, Usage
from tests.limits.rig import call, rig

# one call on gpt-4o ($2.50 in, $10 out per 1M): 8 input + 100 max output tokens reserve
# 8 * 2.5 + 100 * 10 = 1020 micro-dollars; it really uses 100 in + 50 out = 750 micro-dollars


async def test_real_cost_is_settled_reported_and_announced(fake_clock: FakeClock) -> None:
    r = rig("budgets: {enabled: true, user: [{period: day, usd: 1}]}", fake_clock)
    c = call()
    await r.chat(c)
    assert c.served.cost_usd == pytest.approx(0.00075)
    settled = [e for e in r.events if e.kind == "call.settled"]
    assert len(settled) == 1
    data = settled[0].data
    assert data["call"] is c and data["deployment"] == "a"
    assert data["cost_usd"] == Decimal("0.00075")
    assert (data["usage"].input_tokens, data["usage"].output_tokens) == (100, 50)


async def test_a_budget_admits_while_the_worst_case_fits(fake_clock: FakeClock) -> None:
    r = rig("budgets: {enabled: true, user: [{period: day, usd: 0.01}]}", fake_clock)
    # admitted while 750 * n + 1020 <= 10000: n = 0 .. 11
    for _ in range(12):
        await r.chat(call())
    with pytest.raises(BudgetExceeded) as info:
        await r.chat(call())
    err = info.value
    assert (err.tier, err.limit, err.status) == ("user", "usd/day=$0.01", 429)
    assert err.retry_after == pytest.approx(86400.0)  # the clock starts at midnight UTC
    assert "Resets in" in err.message
    spent = sum(e.data["cost_usd"] for e in r.events if e.kind == "call.settled")
    assert spent == Decimal("0.009") and spent <= Decimal("0.01")


async def test_a_budget_in_tokens(fake_clock: FakeClock) -> None:
    r = rig("budgets: {enabled: true, key: [{period: hour, tokens: 300}]}", fake_clock)
    await r.chat(call())  # settles at 150 tokens
    await r.chat(call())  # 150 + 108 reserved fits; settles at 300
    with pytest.raises(BudgetExceeded) as info:
        await r.chat(call())
    assert info.value.limit == "tokens/hour=300"
    assert info.value.retry_after == pytest.approx(3600.0)


async def test_the_per_request_budget_is_checked_against_the_worst_case(
    fake_clock: FakeClock,
) -> None:
    r = rig("budgets: {enabled: true, per_request: {usd: 0.001}}", fake_clock)
    with pytest.raises(BudgetExceeded) as info:
        await r.chat(call())
    assert info.value.tier == "request" and info.value.retry_after is None
    await r.chat(call(max_tokens=50))  # 8 * 2.5 + 50 * 10 = 520 micro-dollars
    assert r.terminal.seen


async def test_a_keys_own_budget_replaces_the_default(fake_clock: FakeClock) -> None:
    r = rig("budgets: {enabled: true, key: [{period: day, usd: 100}]}", fake_clock)
    tight = Principal(key_id="k1", budgets=(BudgetSpec("day", usd=Decimal("0.001")),))
    with pytest.raises(BudgetExceeded) as info:
        await r.chat(call(principal=tight))
    assert info.value.tier == "key" and info.value.limit == "usd/day=$0.001"


async def test_alerts_fire_once_per_threshold_and_when_exhausted(fake_clock: FakeClock) -> None:
    r = rig(
        "budgets: {enabled: true, thresholds: [0.5, 1.0], global: [{period: day, usd: 0.002}]}",
        fake_clock,
    )
    await r.chat(call())  # reserves 1020 of 2000: past 50%
    await r.chat(call())  # 750 + 1020: past 50% again, same window: no second alert
    with pytest.raises(BudgetExceeded):
        await r.chat(call())
    alerts = [e.data for e in r.events if e.kind == "budget.threshold"]
    assert [(a["threshold"], a["exhausted"]) for a in alerts] == [(0.5, False), (1.0, True)]
    assert alerts[0]["tier"] == "global" and alerts[0]["unit"] == "usd"
    assert alerts[0]["used"] == "0.00102" and alerts[0]["limit"] == "0.002"


class CacheHit:
    """An inner stage answering from cache without going upstream."""

    name = "cache"

    async def chat(self, call: Call, nxt: ChatHandler) -> ChatResponse:
        call.served.cache = "exact"
        call.served.cost_usd = 0.5  # what the hit saved: the cache's business, not ours
        return ChatResponse("id", "a", "cached", FinishReason.STOP, Usage(100, 50))

    def stream(self, call: Call, nxt: StreamHandler) -> object:
        raise NotImplementedError


async def test_cache_hits_cost_nothing_against_budgets(fake_clock: FakeClock) -> None:
    r = rig(
        "budgets: {enabled: true, global: [{period: day, usd: 0.0011}]}",
        fake_clock,
        inner=[CacheHit()],  # type: ignore[list-item]
    )
    for _ in range(5):  # each reserves 1020 of 1100 and gives it all back
        c = call()
        await r.chat(c)
        assert c.served.cost_usd == 0.5
    settled = [e.data["cost_usd"] for e in r.events if e.kind == "call.settled"]
    assert settled == [Decimal(0)] * 5
    assert not r.terminal.seen
