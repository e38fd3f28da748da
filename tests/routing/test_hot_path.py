"""The per-call shortcuts of the routing hot path give what the general code gives."""

from __future__ import annotations

import dataclasses

from headway.clock import FakeClock
from headway.providers.base import AttemptContext
from headway.routing.breaker import (
    BUCKETS,
    CLOSED_STATE,
    BreakerPolicy,
    BreakerState,
    Outcome,
    record,
    window_counts,
)
from headway.routing.retry import RetryBudget
from tests.routing.fakes import FakeProvider
from tests.routing.helpers import make_chain


def _hook(snapshot: object) -> None:
    return None


def test_attempt_context_carries_every_field(fake_clock: FakeClock) -> None:
    chain, _ = make_chain(fake_clock, [FakeProvider("a", fake_clock)])
    ctx = AttemptContext(
        "req-9",
        deadline=50.0,
        ttft_timeout=1.0,
        stall_timeout=2.0,
        on_ratelimit=_hook,
        extra_headers={"x-a": "1"},
    )
    for f in dataclasses.fields(AttemptContext):  # a new field must be set above too
        assert getattr(ctx, f.name) not in (None, {}), f.name
    m = chain.members[0]
    policy = chain.policy
    for stream in (False, True):
        got = chain.attempt_context(ctx, m, 10.0, stream=stream)
        # what `dataclasses.replace` gave before: only these three or four fields change
        if stream:
            ttft = min(policy.attempt_timeout_s, policy.ttft_timeout_s or float("inf"))
            want = dataclasses.replace(
                ctx, ttft_timeout=ttft, stall_timeout=policy.stall_timeout_s, on_ratelimit=_hook
            )
        else:
            want = dataclasses.replace(
                ctx,
                deadline=min(50.0, 10.0 + policy.attempt_timeout_s),
                ttft_timeout=policy.ttft_timeout_s,
                stall_timeout=policy.stall_timeout_s,
                on_ratelimit=_hook,
            )
        assert got == want


Buckets = tuple[tuple[int, int, int], ...]


def _slow_count(state: BreakerState, policy: BreakerPolicy, now: float, failed: bool) -> Buckets:
    idx = int(now // (policy.window_s / BUCKETS))
    kept = [b for b in state.buckets if b[0] >= idx - BUCKETS + 1]
    if kept and kept[-1][0] == idx:
        kept[-1] = (idx, kept[-1][1] + 1, kept[-1][2] + int(failed))
    else:
        kept.append((idx, 1, int(failed)))
    return tuple(kept)


def test_breaker_window_counts_match_the_plain_computation() -> None:
    policy = BreakerPolicy(window_s=10.0, consecutive_failures=1000, min_volume=10**6)
    state = CLOSED_STATE
    now = 1_000.0
    # calls in the same bucket, in new buckets, and after gaps that expire old ones
    for step in [0.1] * 30 + [1.0] * 12 + [0.3] * 20 + [25.0] + [0.05] * 10:
        now += step
        failed = int(now * 10) % 3 == 0
        want = _slow_count(state, policy, now, failed)
        state = record(
            state, policy, now, Outcome.FAILURE if failed else Outcome.SUCCESS, probe=False
        )
        assert state.buckets == want
        assert all(isinstance(v, int) and not isinstance(v, bool) for b in state.buckets for v in b)
    assert window_counts(state, policy, now)[0] == 11


def test_breaker_policy_derived_values_follow_replace() -> None:
    policy = BreakerPolicy(window_s=60.0, cooldown_s=30.0, probe_lease_s=120.0)
    assert (policy.bucket_s, policy.state_ttl_s) == (6.0, 300.0)
    wider = dataclasses.replace(policy, window_s=400.0)
    assert (wider.bucket_s, wider.state_ttl_s) == (40.0, 800.0)
    assert wider != policy and BreakerPolicy() == BreakerPolicy()
    assert "bucket_s" not in repr(policy)


def test_retry_budget_window_slides_past_the_shortcut() -> None:
    budget = RetryBudget(ratio=0.5, window_s=10.0, min_retries=0)
    for i in range(10):
        budget.record_call(100.0 + i * 0.1)  # one bucket
    assert budget.counts(100.95) == (10, 0)
    budget.record_retry(105.0)
    assert budget.counts(105.0) == (10, 1)
    assert budget.counts(109.99) == (10, 1)
    assert budget.counts(110.5) == (0, 1)  # the first bucket left the window
    budget.record_call(110.55)
    assert budget.counts(110.6) == (1, 1)
    assert budget.counts(200.0) == (0, 0)
