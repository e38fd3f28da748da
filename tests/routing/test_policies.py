"""Pure retry decisions, the retry budget, deadline arithmetic and the hedge trigger."""

from __future__ import annotations

import asyncio

import pytest

from headway.clock import FakeClock
from headway.config.load import load
from headway.errors import ConfigError
from headway.routing.deadline import (
    attempt_deadline,
    call_deadline,
    earliest,
    first_token_deadline,
    next_chunk_deadline,
    within,
)
from headway.routing.hedge import HedgePolicy, LatencyWindow, hedge_delay, should_hedge
from headway.routing.retry import (
    Action,
    Failure,
    RetryBudget,
    RetryPolicy,
    backoff,
    decide,
)

POLICY = RetryPolicy(
    max_attempts=4, retries_per_deployment=2, backoff_base_s=1.0, backoff_max_s=5.0
)
RETRYABLE = Failure(retryable=True, fallback_eligible=True)


def d(failure: Failure = RETRYABLE, **kw: object) -> Action:
    args: dict[str, object] = {
        "retries_here": 0,
        "attempts": 1,
        "has_next": True,
        "now": 0.0,
        "deadline": 100.0,
        "budget_ok": True,
        "u": 0.5,
    }
    args.update(kw)
    return decide(failure, POLICY, **args).action  # type: ignore[arg-type]


def test_backoff_is_exponential_with_full_jitter_and_capped() -> None:
    assert backoff(POLICY, 0, 0.999) == pytest.approx(0.999)
    assert backoff(POLICY, 2, 0.5) == pytest.approx(2.0)
    assert backoff(POLICY, 10, 1.0) == 5.0
    assert backoff(POLICY, 3, 0.0) == 0.0


def test_errors_that_cannot_succeed_are_never_retried_or_routed() -> None:
    assert d(Failure(retryable=False, fallback_eligible=False)) is Action.FAIL


def test_retryable_error_retries_the_same_deployment_with_its_delay() -> None:
    out = decide(
        RETRYABLE,
        POLICY,
        retries_here=1,
        attempts=2,
        has_next=True,
        now=0.0,
        deadline=None,
        budget_ok=True,
        u=0.5,
    )
    assert out.action is Action.RETRY and out.delay == pytest.approx(1.0)


def test_retry_after_is_honoured_exactly() -> None:
    failure = Failure(True, True, retry_after=3.0)
    out = decide(
        failure,
        POLICY,
        retries_here=0,
        attempts=1,
        has_next=False,
        now=0.0,
        deadline=None,
        budget_ok=True,
        u=0.9,
    )
    assert (out.action, out.delay) == (Action.RETRY, 3.0)


def test_wait_past_the_deadline_falls_over_instead() -> None:
    failure = Failure(True, True, retry_after=3.0)
    assert d(failure, now=0.0, deadline=2.0) is Action.FALLBACK
    assert d(failure, now=0.0, deadline=2.0, has_next=False) is Action.FAIL


def test_retry_after_longer_than_allowed_is_not_waited_for() -> None:
    assert d(Failure(True, True, retry_after=31.0)) is Action.FALLBACK


def test_both_bounds_stop_retries() -> None:
    assert d(retries_here=2) is Action.FALLBACK  # per-deployment re-sends used
    assert d(budget_ok=False) is Action.FALLBACK  # route-wide budget spent
    assert d(budget_ok=False, has_next=False) is Action.FAIL
    assert d(attempts=4) is Action.FAIL  # per-call attempt budget


def test_fallback_only_errors_move_on() -> None:
    auth = Failure(retryable=False, fallback_eligible=True)
    assert d(auth) is Action.FALLBACK
    assert d(auth, has_next=False) is Action.FAIL


def test_a_chain_prefers_fallback_to_resending() -> None:
    from headway.routing.config import RetryConfig

    cfg = RetryConfig(retries_per_deployment=2)
    assert RetryPolicy.from_config(cfg, members=1).retries_per_deployment == 2
    assert RetryPolicy.from_config(cfg, members=3).retries_per_deployment == 0
    cfg = RetryConfig(retries_per_deployment=2, prefer_fallback=False)
    assert RetryPolicy.from_config(cfg, members=3).retries_per_deployment == 2


def test_retry_budget_is_a_fraction_of_calls_plus_a_floor() -> None:
    budget = RetryBudget(ratio=0.1, window_s=10.0, min_retries=2)
    for _ in range(50):
        budget.record_call(1.0)
    allowed = 0
    while budget.can_retry(1.0):
        budget.record_retry(1.0)
        allowed += 1
    print(f"\nretry budget: 50 calls, ratio 0.1, floor 2 -> {allowed} retries allowed")
    assert allowed == 7
    # the window slides: after it passes, old calls and retries no longer count
    assert budget.counts(30.0) == (0, 0)
    assert budget.can_retry(30.0)


def test_deadline_arithmetic() -> None:
    assert earliest(None, 5.0, 3.0) == 3.0 and earliest(None) is None
    assert call_deadline(10.0, 60.0, None) == 70.0
    assert call_deadline(10.0, 60.0, 20.0) == 20.0  # a request may shorten it ...
    assert call_deadline(10.0, 60.0, 200.0) == 70.0  # ... never lengthen it
    assert attempt_deadline(10.0, 15.0, 30.0) == 15.0
    assert attempt_deadline(10.0, None, 30.0) == 40.0
    assert first_token_deadline(10.0, 2.0, 40.0) == 12.0
    assert first_token_deadline(10.0, None, 40.0) == 40.0
    assert next_chunk_deadline(20.0, 5.0, 22.0) == 22.0
    assert next_chunk_deadline(20.0, None, None) is None


async def test_within_times_out_on_the_fake_clock(fake_clock: FakeClock) -> None:
    async def slow() -> str:
        await fake_clock.sleep(10)
        return "late"

    task = asyncio.ensure_future(within(fake_clock, slow(), fake_clock.monotonic() + 2))
    await fake_clock.advance(0)  # let the task start and register its sleeps
    await fake_clock.advance(1.9)
    assert not task.done()
    await fake_clock.advance(0.2)
    with pytest.raises(TimeoutError):
        await task
    fast = asyncio.ensure_future(within(fake_clock, slow(), fake_clock.monotonic() + 20))
    await fake_clock.advance(0)
    await fake_clock.advance(10)
    assert await fast == "late"


def test_hedge_delay_uses_the_observed_quantile() -> None:
    policy = HedgePolicy(quantile=0.95, min_samples=20, initial_delay_s=2.0, min_delay_s=0.05)
    window = LatencyWindow()
    assert hedge_delay(policy, window) == 2.0  # too few samples
    for i in range(100):
        window.add(0.01 * (i + 1))  # 0.01 .. 1.00
    assert hedge_delay(policy, window) == pytest.approx(0.95)
    assert window.quantile(0.5) == pytest.approx(0.5)
    fast = LatencyWindow()
    for _ in range(30):
        fast.add(0.001)
    assert hedge_delay(policy, fast) == 0.05  # floor
    assert should_hedge(policy, waited=1.0, first_token=False, delay=0.95)
    assert not should_hedge(policy, waited=1.0, first_token=True, delay=0.95)
    assert not should_hedge(None, waited=9.0, first_token=False, delay=0.95)


def test_latency_window_keeps_the_newest_samples() -> None:
    window = LatencyWindow(size=4)
    for v in (9.0, 9.0, 9.0, 9.0, 1.0, 1.0, 1.0, 1.0):
        window.add(v)
    assert len(window) == 4 and window.quantile(0.99) == 1.0


def test_route_policy_config_errors_name_their_path() -> None:
    base = """
providers: {p: {kind: sim}}
models: {a: {provider: p, model: a}}
routes:
  default:
    chain: [a]
"""
    runtime = load(text=base + "    retry: {max_attempts: 2}\n", env={})
    assert runtime.routes["default"].policy.retry.max_attempts == 2
    with pytest.raises(ConfigError) as err:
        load(text=base + "    retry: {max_attempts: 0}\n", env={})
    assert err.value.path == "routes.default.retry.max_attempts"
    with pytest.raises(ConfigError) as typo:
        load(text=base + "    breaker: {treshold: 3}\n", env={})
    assert typo.value.path == "routes.default.breaker.treshold"
    with pytest.raises(ConfigError) as bad:
        load(text=base + "    timeout_s: 5\n    attempt_timeout_s: 10\n", env={})
    assert bad.value.path == "routes.default"
