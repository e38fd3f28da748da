from __future__ import annotations

import asyncio

from headway.clock import FakeClock
from headway.errors import (
    AllAttemptsFailed,
    Attempt,
    ContextLengthExceeded,
    HeadwayError,
    RateLimited,
    UpstreamOverloaded,
    UpstreamRateLimited,
    http_status,
)


async def test_fake_clock_wakes_sleepers_in_order() -> None:
    clock = FakeClock()
    woke: list[str] = []

    async def sleeper(name: str, seconds: float) -> None:
        await clock.sleep(seconds)
        woke.append(name)

    tasks = [asyncio.create_task(sleeper("late", 5)), asyncio.create_task(sleeper("early", 1))]
    await asyncio.sleep(0)
    assert clock.sleepers == 2
    await clock.advance(1)
    assert woke == ["early"]
    await clock.advance(4)
    assert woke == ["early", "late"]
    await asyncio.gather(*tasks)
    assert clock.monotonic() == 5


def test_error_tree_carries_wire_and_resilience_facts() -> None:
    ctx = ContextLengthExceeded("too long")
    assert (ctx.status, ctx.code, ctx.retryable, ctx.fallback_eligible) == (
        400,
        "context_length_exceeded",
        False,
        False,
    )
    limited = UpstreamRateLimited("slow down", retry_after=1.5)
    assert limited.retryable and limited.fallback_eligible and limited.retry_after == 1.5
    assert UpstreamOverloaded("x").anthropic_type == "overloaded_error"
    own = RateLimited("key tpm", tier="key", limit="tpm")
    assert (own.status, own.tier, own.limit, own.retryable) == (429, "key", "tpm", False)
    assert isinstance(own, HeadwayError)


def test_all_attempts_failed_reports_chosen_status() -> None:
    err = AllAttemptsFailed([Attempt("a", "boom", 500), Attempt("b", "slow", 429)], status=429)
    assert http_status(err) == 429
    assert "a: boom" in err.message and "b: slow" in err.message
