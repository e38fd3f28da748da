"""The limits stage over a scripted terminal: headers, rejections, waiting, deployments."""

from __future__ import annotations

import asyncio

import pytest

from headway.clock import FakeClock
from headway.config.load import load
from headway.context import Principal
from headway.errors import ConfigError, RateLimited, UpstreamError
from headway.limits.settle_only import SettleStage
from headway.limits.stage import build
from headway.limits.store import MemoryLimitStore
from headway.limits.values import LimitSpec, Reservation
from headway.providers.base import RateLimitSnapshot
from headway.services import Services
from headway.types import Usage
from tests.limits.items import bucket
from tests.limits.rig import BASE, call, rig

# "hello world" as one user message is 8 input tokens; max_tokens 100: each call reserves 108


async def test_headers_report_the_callers_tightest_limits(fake_clock: FakeClock) -> None:
    r = rig(
        "limits: {enabled: true, key: {rpm: 10, tpm: 1000}, user: {rpm: 5, tpm: 100000}}",
        fake_clock,
    )
    c = call()
    await r.chat(c)
    assert c.served.ratelimit_headers == {
        "x-ratelimit-limit-requests": "5",
        "x-ratelimit-remaining-requests": "4",
        "x-ratelimit-reset-requests": "12s",
        "x-ratelimit-limit-tokens": "1000",
        "x-ratelimit-remaining-tokens": "892",
        "x-ratelimit-reset-tokens": "6.48s",
    }


async def test_a_rejection_names_the_tier_the_limit_and_the_reset(fake_clock: FakeClock) -> None:
    r = rig("limits: {enabled: true, user: {tpm: 200}, wait: {enabled: false}}", fake_clock)
    await r.chat(call())  # settles to the real 150 tokens
    with pytest.raises(RateLimited) as info:
        await r.chat(call())
    err = info.value
    assert (err.tier, err.limit, err.status) == ("user", "tpm=200", 429)
    assert err.retry_after == pytest.approx(17.4)  # 58 tokens over, at 200 per minute
    assert "user tier" in err.message and "tpm limit 200" in err.message
    assert err.headers["x-ratelimit-reset-tokens"] == "17.4s"
    assert len(r.terminal.seen) == 1


async def test_a_call_waits_for_capacity_and_is_then_served(fake_clock: FakeClock) -> None:
    r = rig("limits: {enabled: true, user: {rpm: 1}, wait: {max_wait_s: 120}}", fake_clock)
    await r.chat(call())
    second = asyncio.ensure_future(r.chat(call()))
    for _ in range(10):
        await asyncio.sleep(0)
    assert not second.done() and len(r.terminal.seen) == 1
    await fake_clock.advance(60)
    await second
    assert len(r.terminal.seen) == 2


async def test_the_wait_is_bounded_by_the_calls_deadline(fake_clock: FakeClock) -> None:
    r = rig("limits: {enabled: true, user: {rpm: 1}, wait: {max_wait_s: 120}}", fake_clock)
    await r.chat(call())
    with pytest.raises(RateLimited) as info:
        await r.chat(call(deadline=fake_clock.monotonic() + 5))
    assert info.value.retry_after == pytest.approx(60.0)
    assert fake_clock.sleepers == 0


async def test_a_request_larger_than_a_limit_fails_at_once(fake_clock: FakeClock) -> None:
    r = rig("limits: {enabled: true, user: {tpm: 50}}", fake_clock)
    with pytest.raises(RateLimited) as info:
        await r.chat(call())
    assert info.value.code == "request_exceeds_limit" and info.value.retry_after is None


async def test_the_reserved_output_is_sent_as_max_tokens(fake_clock: FakeClock) -> None:
    r = rig("limits: {enabled: true, user: {tpm: 100000}}", fake_clock)
    await r.chat(call(max_tokens=None))
    assert r.terminal.seen[-1][1].max_tokens == 4096
    r = rig("limits: {enabled: true, estimate: {cap_output: false}}", fake_clock)
    await r.chat(call(max_tokens=None))
    assert r.terminal.seen[-1][1].max_tokens is None


async def test_a_deployment_without_capacity_is_skipped(fake_clock: FakeClock) -> None:
    r = rig("limits: {enabled: true, deployments: {a: {rpm: 1}}}", fake_clock)
    first, second = call(), call()
    await r.chat(first)
    await r.chat(second)
    assert (first.served.deployment, second.served.deployment) == ("a", "b")
    assert second.skip_deployments == frozenset({"a"})


async def test_the_providers_own_headers_steer_calls_away(fake_clock: FakeClock) -> None:
    r = rig("limits: {enabled: true}", fake_clock)
    now = fake_clock.time()
    r.terminal.scripts["a"].snapshot = RateLimitSnapshot(
        observed_at=now, limit_tokens=1000, remaining_tokens=50, reset_tokens_at=now + 60
    )
    first, second = call(), call()
    await r.chat(first)  # a answers, and says it has 50 tokens left
    await r.chat(second)
    assert (first.served.deployment, second.served.deployment) == ("a", "b")


async def test_when_every_provider_is_exhausted_the_call_waits(fake_clock: FakeClock) -> None:
    r = rig("limits: {enabled: true}", fake_clock)
    now = fake_clock.time()
    for name in ("a", "b"):
        r.capacity.observe(
            name,
            RateLimitSnapshot(
                now, limit_requests=10, remaining_requests=0, reset_requests_at=now + 30
            ),
        )
    with pytest.raises(RateLimited) as info:
        await r.chat(call(deadline=fake_clock.monotonic() + 1))
    assert (info.value.tier, info.value.limit) == ("deployment", "provider")
    assert info.value.retry_after == pytest.approx(3.0)  # one request refills in 30 s / 10
    waiting = asyncio.ensure_future(r.chat(call()))
    await fake_clock.advance(3)
    await waiting
    assert r.terminal.seen[-1][0] == "a"


async def test_a_fallback_moves_the_deployment_charge(fake_clock: FakeClock) -> None:
    store = MemoryLimitStore(fake_clock)
    r = rig(
        "limits: {enabled: true, deployments: {a: {tpm: 1000}, b: {tpm: 1000}}}",
        fake_clock,
        store=store,
    )
    r.terminal.scripts["a"].fail = UpstreamError("down")
    c = call()
    await r.chat(c)
    assert c.served.deployment == "b"
    assert isinstance(await store.reserve([bucket("deployment:a:tpm", 1000, 1000)]), Reservation)
    assert not isinstance(await store.reserve([bucket("deployment:b:tpm", 1000, 851)]), Reservation)


async def test_a_keys_own_limits_override_the_default(fake_clock: FakeClock) -> None:
    r = rig("limits: {enabled: true, key: {rpm: 100}, wait: {enabled: false}}", fake_clock)
    mine = Principal(key_id="k9", limits=LimitSpec(rpm=1))
    await r.chat(call(principal=mine))
    with pytest.raises(RateLimited) as info:
        await r.chat(call(principal=mine))
    assert (info.value.tier, info.value.limit) == ("key", "rpm=1")
    await r.chat(call(principal=Principal(key_id="k8")))  # other keys keep the default


async def test_tenants_never_share_a_user_counter(fake_clock: FakeClock) -> None:
    r = rig("limits: {enabled: true, user: {rpm: 1}, wait: {enabled: false}}", fake_clock)
    await r.chat(call(principal=Principal(tenant="t1", user="alice")))
    await r.chat(call(principal=Principal(tenant="t2", user="alice")))
    with pytest.raises(RateLimited):
        await r.chat(call(principal=Principal(tenant="t1", user="alice")))


def test_build_only_settles_unless_limits_or_budgets_are_enabled() -> None:
    assert isinstance(build(load(text=BASE, env={}), Services()), SettleStage)
    nobody = BASE + "ledger: {enabled: false}\nobserve: {metrics: false}\n"
    assert build(load(text=nobody, env={}), Services()) is None  # nobody needs a call's cost


def test_config_errors_name_the_path() -> None:
    with pytest.raises(ConfigError) as info:
        build(
            load(text=BASE + "limits: {enabled: true, deployments: {zz: {rpm: 1}}}", env={}),
            Services(),
        )
    assert info.value.path == "limits.deployments.zz"
    unpriced = (
        BASE.replace("routes:", "  c: {provider: oa, model: my-finetune}\nroutes:")
        + "budgets: {enabled: true, global: [{period: day, usd: 10}]}"
    )
    with pytest.raises(ConfigError) as info:
        build(load(text=unpriced, env={}), Services())
    assert info.value.path == "models.c.input_price"


@pytest.mark.parametrize(("charge", "left"), [("reserved", 892), ("actual", 990)])
async def test_a_providers_up_front_charge_is_kept_unless_it_corrects_it(
    fake_clock: FakeClock, charge: str, left: int
) -> None:
    store = MemoryLimitStore(fake_clock)
    r = rig(
        f"limits: {{enabled: true, deployments: {{a: {{tpm: 1000, headroom: 1.0, charge: {charge}}}}}}}",
        fake_clock,
        store=store,
    )
    r.terminal.scripts["a"].usage = Usage(5, 5)  # 10 tokens used of the 108 reserved
    await r.chat(call(model="a"))
    assert not isinstance(
        await store.reserve([bucket("deployment:a:tpm", 1000, left + 1)]), Reservation
    )
    assert isinstance(await store.reserve([bucket("deployment:a:tpm", 1000, left)]), Reservation)


def test_deployment_limits_keep_headroom_below_the_providers_figures() -> None:
    runtime = load(
        text=BASE + "limits: {enabled: true, deployments: {a: {rpm: 100, tpm: 10000}}}", env={}
    )
    assert runtime.file.limits.deployments["a"].spec() == LimitSpec(rpm=97, tpm=9700)
    assert LimitSpec(rpm=1, concurrency=3).scaled(0.5) == LimitSpec(rpm=1, concurrency=3)
