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
