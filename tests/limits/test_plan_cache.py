"""The planner remembers each caller's items: what it reuses must never be stale."""

from __future__ import annotations

from decimal import Decimal

import pytest

from headway.budgets.values import BudgetSpec
from headway.clock import FakeClock
from headway.config.load import load
from headway.context import Principal
from headway.errors import BudgetExceeded, RateLimited
from headway.limits.stage import LimitsStage, build
from headway.limits.values import LimitSpec
from tests.limits.rig import BASE, call, rig

YAML = """
limits: {enabled: true, key: {rpm: 100, tpm: 100000}, user: {rpm: 100}, wait: {enabled: false}}
budgets: {enabled: true, key: [{period: day, usd: 100}]}
"""


def items_of(r: object, c: object) -> dict[str, tuple[int, int]]:
    plan = r.stage._planner.plan(c)  # type: ignore[attr-defined]
    return {i.key: (i.limit, i.amount) for i in plan.items}


async def test_amounts_follow_each_call_while_identities_are_reused(
    fake_clock: FakeClock,
) -> None:
    r = rig(YAML, fake_clock)
    short = items_of(r, call(text="hi", max_tokens=10))
    long = items_of(r, call(text="hello " * 50, max_tokens=10))
    assert short["key:k1:rpm"] == long["key:k1:rpm"] == (100, 1)
    assert short["key:k1:tpm"][1] < long["key:k1:tpm"][1]
    assert short["b:key:k1:usd:day"][1] < long["b:key:k1:usd:day"][1]
    assert items_of(r, call(text="hi", max_tokens=10)) == short
    # another user of the same key gets its own user counter, the key's counters stay shared
    bob = items_of(r, call(text="hi", max_tokens=10, principal=Principal(key_id="k1", user="bob")))
    assert "user:default:bob:rpm" in bob and "user:default:alice:rpm" not in bob
    assert bob["key:k1:tpm"] == short["key:k1:tpm"]


async def test_a_changed_key_takes_effect_on_its_next_call(fake_clock: FakeClock) -> None:
    r = rig(YAML, fake_clock)
    await r.chat(call())
    # the same key id, now with its own tighter limit (an edit picked up by the key resolver)
    tight = Principal(key_id="k1", user="alice", limits=LimitSpec(rpm=1))
    with pytest.raises(RateLimited) as info:
        await r.chat(call(principal=tight))
    assert (info.value.tier, info.value.limit) == ("key", "rpm=1")
    # and its own budget, too small for the call
    poor = Principal(key_id="k1", user="alice", budgets=(BudgetSpec("day", Decimal("0.000001")),))
    with pytest.raises(BudgetExceeded):
        await r.chat(call(principal=poor))
    # the unchanged principal still plans with the config's limits
    await r.chat(call())


async def test_a_config_reload_plans_with_the_new_limits(fake_clock: FakeClock) -> None:
    r = rig(YAML, fake_clock)
    await r.chat(call())
    # a reload builds the stage again over the same services (store, queue, alerts)
    runtime = load(text=BASE + YAML.replace("user: {rpm: 100}", "user: {rpm: 7}"), env={})
    reloaded = build(runtime, r.services)
    assert isinstance(reloaded, LimitsStage)
    plan = reloaded._planner.plan(call())
    assert {i.key: i.limit for i in plan.items}["user:default:alice:rpm"] == 7
