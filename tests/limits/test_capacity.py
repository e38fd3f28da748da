"""The per-deployment capacity view learned from provider rate-limit headers."""

from __future__ import annotations

import pytest

from headway.limits.capacity import CapacityView, wait_for
from headway.limits.estimate import Demand
from headway.providers.base import RateLimitSnapshot


def test_linear_refill_between_snapshot_and_reset() -> None:
    # 1000 tokens, 0 left at t=0, full at t=60: about 16.7 per second
    assert wait_for(100, 1000, 0, 0.0, 60.0, 0, 0.0) == pytest.approx(6.0)
    assert wait_for(100, 1000, 0, 0.0, 60.0, 0, 6.0) == 0.0
    assert wait_for(100, 1000, 500, 0.0, 60.0, 0, 0.0) == 0.0
    # 500 to refill in 60 s; 450 already sent since the snapshot: 50 short at 8.3 per second
    assert wait_for(100, 1000, 500, 0.0, 60.0, 450, 0.0) == pytest.approx(6.0)


def test_what_is_unknown_or_stale_admits() -> None:
    assert wait_for(100, 1000, None, 0.0, 60.0, 0, 0.0) == 0.0  # nothing said
    assert wait_for(100, 1000, 0, 0.0, None, 0, 0.0) == 0.0  # no reset time
    assert wait_for(100, 1000, 0, 0.0, 60.0, 0, 60.0) == 0.0  # past the reset: stale
    assert wait_for(5000, 1000, 0, 0.0, 60.0, 0, 0.0) == 0.0  # can never fit: provider decides


def test_an_unknown_limit_waits_for_the_reset() -> None:
    assert wait_for(100, None, 10, 0.0, 30.0, 0, 0.0) == pytest.approx(30.0)
    assert wait_for(5, None, 10, 0.0, 30.0, 0, 0.0) == 0.0


def test_the_view_combines_every_bucket_and_counts_what_was_sent() -> None:
    view = CapacityView()
    demand = Demand(300, 200)
    assert view.wait("a", demand, 0.0) == 0.0
    view.hook("a")(
        RateLimitSnapshot(
            observed_at=0.0,
            limit_input_tokens=6000,
            remaining_input_tokens=1000,
            reset_input_tokens_at=60.0,
            limit_output_tokens=1200,
            remaining_output_tokens=300,
            reset_output_tokens_at=60.0,
        )
    )
    assert view.wait("a", demand, 0.0) == 0.0
    view.debit("a", demand)  # 700 input and 100 output left
    assert view.wait("a", demand, 0.0) == pytest.approx(100 / 15)  # output: 100 short at 15/s
    view.observe("a", RateLimitSnapshot(observed_at=-1.0))  # older news is ignored
    assert view.wait("a", demand, 0.0) > 0
    view.observe("a", RateLimitSnapshot(observed_at=1.0))  # a fresh snapshot resets the debit
    assert view.wait("a", demand, 1.0) == 0.0


def test_the_quick_answer_past_every_reset_equals_the_full_one() -> None:
    """`wait` answers 0 at once from the last reset on: the same as asking every bucket."""
    import random

    rng = random.Random(3)

    def maybe(value: float) -> float | None:
        return None if rng.random() < 0.3 else value

    for _ in range(3000):
        snap = RateLimitSnapshot(
            observed_at=100.0,
            limit_requests=rng.choice((None, 10)),
            remaining_requests=rng.choice((None, 0, 5)),
            reset_requests_at=maybe(rng.uniform(90, 130)),
            limit_tokens=rng.choice((None, 1000)),
            remaining_tokens=rng.choice((None, 0, 400)),
            reset_tokens_at=maybe(rng.uniform(90, 130)),
            limit_input_tokens=rng.choice((None, 800)),
            remaining_input_tokens=rng.choice((None, 100)),
            reset_input_tokens_at=maybe(rng.uniform(90, 130)),
            limit_output_tokens=rng.choice((None, 300)),
            remaining_output_tokens=rng.choice((None, 50)),
            reset_output_tokens_at=maybe(rng.uniform(90, 130)),
        )
        view = CapacityView()
        view.observe("d", snap)
        demand = Demand(rng.randint(0, 600), rng.randint(0, 200))
        now = rng.uniform(95, 135)
        s = snap
        full = max(
            wait_for(1, s.limit_requests, s.remaining_requests, 100.0, s.reset_requests_at, 0, now),
            wait_for(
                demand.total, s.limit_tokens, s.remaining_tokens, 100.0, s.reset_tokens_at, 0, now
            ),
            wait_for(
                demand.input_tokens,
                s.limit_input_tokens,
                s.remaining_input_tokens,
                100.0,
                s.reset_input_tokens_at,
                0,
                now,
            ),
            wait_for(
                demand.output_tokens,
                s.limit_output_tokens,
                s.remaining_output_tokens,
                100.0,
                s.reset_output_tokens_at,
                0,
                now,
            ),
        )
        assert view.wait("d", demand, now) == full
