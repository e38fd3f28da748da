"""The chain as a provider, non-streamed: fallback, breakers, retries, deadlines, hedging.

Every provider is a scripted fake on a FakeClock; the figures printed are fake-clock seconds."""

from __future__ import annotations

import pytest

from headway.clock import FakeClock
from headway.context import Served
from headway.errors import (
    AllAttemptsFailed,
    ContentFiltered,
    ContextLengthExceeded,
    UpstreamError,
    UpstreamRateLimited,
    UpstreamTimeout,
)
from tests.routing.fakes import ANSWER, OK, Act, FakeProvider, drive
from tests.routing.helpers import context, make_chain, p99, request

BREAKER = {"consecutive_failures": 3, "cooldown_s": 30.0, "min_volume": 100}


async def test_primary_answering_500s_no_errors_reach_clients(fake_clock: FakeClock) -> None:
    primary = FakeProvider("primary", fake_clock, [Act(latency=0.05, error=UpstreamError("500"))])
    secondary = FakeProvider("secondary", fake_clock, [Act(latency=0.2)])
    chain, rec = make_chain(fake_clock, [primary, secondary], breaker=BREAKER)
    errors = 0
    for _ in range(50):
        served = Served()
        try:
            await drive(fake_clock, chain.chat_with(request(), context(fake_clock, chain), served))
        except UpstreamError:
            errors += 1
    print(f"\n500s at primary: 50 calls, {errors} errors, primary tried {primary.calls}x")
    assert errors == 0
    assert secondary.calls == 50
    assert primary.calls == 3  # then its breaker opened and calls went straight to the secondary
    assert rec.count("breaker.opened") == 1
    assert served.deployment == "secondary" and served.fallback_depth == 1 and served.attempts == 1


async def test_primary_hanging_bounded_latency_then_breaker(fake_clock: FakeClock) -> None:
    primary = FakeProvider("primary", fake_clock, [Act(hang=True)])
    secondary = FakeProvider("secondary", fake_clock, [Act(latency=0.5)])
    chain, rec = make_chain(
        fake_clock, [primary, secondary], attempt_timeout_s=2.0, breaker=BREAKER
    )
    took: list[float] = []
    for _ in range(40):
        reply, t = await drive(fake_clock, chain.chat(request(), context(fake_clock, chain)))
        assert reply.content == ANSWER
        took.append(t)
    bound = (2.0 + 0.5) * 1.1
    print(
        f"\nprimary hanging: client P99 {p99(took):.3f}s (bound {bound:.3f}s), "
        f"primary attempts {primary.calls}, later calls {took[-1]:.3f}s"
    )
    assert p99(took) <= bound
    assert primary.calls == 3 and primary.cancelled == 3  # timed-out attempts were cancelled
    assert took[-1] == pytest.approx(0.5)  # breaker open: straight to the secondary
    assert rec.count("breaker.opened") == 1


async def test_primary_recovered_traffic_returns_within_cooldown_plus_one_probe(
    fake_clock: FakeClock,
) -> None:
    primary = FakeProvider(
        "primary", fake_clock, [Act(error=UpstreamError("down"))] * 3 + [Act(latency=0.1)]
    )
    secondary = FakeProvider("secondary", fake_clock, [Act(latency=0.1)])
    chain, rec = make_chain(fake_clock, [primary, secondary], breaker=BREAKER)
    for _ in range(3):
        await drive(fake_clock, chain.chat(request(), context(fake_clock, chain)))
    opened_at = fake_clock.monotonic()
    back_at = None
    while back_at is None:
        served = Served()
        await drive(fake_clock, chain.chat_with(request(), context(fake_clock, chain), served))
        if served.deployment == "primary":
            back_at = fake_clock.monotonic()
        else:
            await fake_clock.advance(1.0)  # one call per second of traffic
    print(
        f"\nrecovery: traffic back at the primary {back_at - opened_at:.2f}s after it opened "
        f"(cooldown 30s + one probe)"
    )
    assert back_at - opened_at <= 30.0 + 1.0 + 0.1
    assert rec.kinds("breaker.") == ["breaker.opened", "breaker.half_opened", "breaker.closed"]


async def test_429_storm_attempts_stay_within_the_retry_budget(fake_clock: FakeClock) -> None:
    storm = FakeProvider(
        "only", fake_clock, [Act(error=UpstreamRateLimited("429", retry_after=0.5))]
    )
    chain, rec = make_chain(
        fake_clock,
        [storm],
        breaker={"enabled": False},
        retry={
            "retries_per_deployment": 3,
            "budget_ratio": 0.1,
            "budget_min_retries": 2,
            "budget_window_s": 1000.0,
        },
    )
    calls = 100
    for _ in range(calls):
        with pytest.raises(UpstreamRateLimited):
            await drive(fake_clock, chain.chat(request(), context(fake_clock, chain)))
    allowed = calls + 2 + int(0.1 * calls)
    print(
        f"\n429 storm: {calls} calls -> {storm.calls} upstream attempts (budget allows {allowed}; "
        f"without it {calls * 4})"
    )
    assert storm.calls <= allowed
    assert rec.count("retry_budget.exhausted") > 0


async def test_retry_after_is_waited_for_then_the_retry_succeeds(fake_clock: FakeClock) -> None:
    p = FakeProvider(
        "only", fake_clock, [Act(error=UpstreamRateLimited("429", retry_after=2.0)), OK]
    )
    chain, rec = make_chain(fake_clock, [p], breaker={"enabled": False})
    reply, took = await drive(fake_clock, chain.chat(request(), context(fake_clock, chain)))
    assert reply.content == ANSWER and p.calls == 2
    assert took == pytest.approx(2.0)
    assert rec.count("retry") == 1


async def test_a_wait_past_the_deadline_fails_over_at_once(fake_clock: FakeClock) -> None:
    p = FakeProvider("a", fake_clock, [Act(error=UpstreamRateLimited("429", retry_after=20.0))])
    q = FakeProvider("b", fake_clock, [OK])
    chain, _ = make_chain(
        fake_clock,
        [p, q],
        timeout_s=10.0,
        attempt_timeout_s=5.0,
        retry={"prefer_fallback": False, "max_retry_after_s": 60.0},
    )
    reply, took = await drive(fake_clock, chain.chat(request(), context(fake_clock, chain)))
    assert reply.model == "b" and took == 0.0 and p.calls == 1


@pytest.mark.parametrize("error", [ContentFiltered("blocked"), ContextLengthExceeded("too long")])
async def test_a_400_is_sent_exactly_once(fake_clock: FakeClock, error: Exception) -> None:
    primary = FakeProvider("primary", fake_clock, [Act(error=error)])  # type: ignore[arg-type]
    secondary = FakeProvider("secondary", fake_clock)
    chain, _ = make_chain(fake_clock, [primary, secondary], contexts=[8000, 8000])
    with pytest.raises(type(error)):
        await drive(fake_clock, chain.chat(request(), context(fake_clock, chain)))
    print(
        f"\n{type(error).__name__}: primary attempts {primary.calls}, secondary {secondary.calls}"
    )
    assert (primary.calls, secondary.calls) == (1, 0)


async def test_content_filter_is_routed_around_only_when_the_route_says_so(
    fake_clock: FakeClock,
) -> None:
    primary = FakeProvider("primary", fake_clock, [Act(error=ContentFiltered("blocked"))])
    secondary = FakeProvider("secondary", fake_clock)
    chain, _ = make_chain(fake_clock, [primary, secondary], route_around_content_filter=True)
    reply, _ = await drive(fake_clock, chain.chat(request(), context(fake_clock, chain)))
    assert reply.model == "secondary" and primary.calls == 1


async def test_context_length_moves_to_a_larger_window_only(fake_clock: FakeClock) -> None:
    err = ContextLengthExceeded("too long")
    small = FakeProvider("small", fake_clock, [Act(error=err)])
    same = FakeProvider("same", fake_clock)
    large = FakeProvider("large", fake_clock)
    chain, _ = make_chain(fake_clock, [small, same, large], contexts=[8000, 8000, 128000])
    reply, _ = await drive(fake_clock, chain.chat(request(), context(fake_clock, chain)))
    assert reply.model == "large"
    assert (small.calls, same.calls, large.calls) == (1, 0, 1)  # no same-size resend


async def test_every_member_failing_lists_each_attempt(fake_clock: FakeClock) -> None:
    a = FakeProvider("a", fake_clock, [Act(error=UpstreamError("a broke"))])
    b = FakeProvider("b", fake_clock, [Act(hang=True)])
    chain, _ = make_chain(fake_clock, [a, b], attempt_timeout_s=1.0)
    with pytest.raises(AllAttemptsFailed) as err:
        await drive(fake_clock, chain.chat(request(), context(fake_clock, chain)))
    assert [x.deployment for x in err.value.attempts] == ["a", "b"]
    assert "a broke" in str(err.value) and "no answer within 1s" in str(err.value)


async def test_the_call_deadline_bounds_every_attempt(fake_clock: FakeClock) -> None:
    a = FakeProvider("a", fake_clock, [Act(hang=True)])
    b = FakeProvider("b", fake_clock, [Act(hang=True)])
    chain, _ = make_chain(fake_clock, [a, b], timeout_s=3.0, attempt_timeout_s=2.0)
    with pytest.raises(AllAttemptsFailed) as err:
        await drive(fake_clock, chain.chat(request(), context(fake_clock, chain)))
    assert fake_clock.monotonic() == pytest.approx(3.0)
    # b's attempt got only what was left of the call's deadline
    assert b.contexts[0].deadline == pytest.approx(3.0)
    assert a.contexts[0].deadline == pytest.approx(2.0)
    assert err.value.attempts[-1].deployment == "b"


async def test_a_single_deployment_error_is_returned_as_is(fake_clock: FakeClock) -> None:
    p = FakeProvider("only", fake_clock, [Act(error=UpstreamTimeout("slow"))])
    chain, _ = make_chain(fake_clock, [p], retry={"retries_per_deployment": 0})
    with pytest.raises(UpstreamTimeout):
        await drive(fake_clock, chain.chat(request(), context(fake_clock, chain)))


async def test_hedge_sent_after_the_observed_p95_first_answer_wins(fake_clock: FakeClock) -> None:
    primary = FakeProvider("primary", fake_clock, [Act(latency=0.1)] * 30 + [Act(latency=5.0)])
    secondary = FakeProvider("secondary", fake_clock, [Act(latency=0.3)])
    chain, rec = make_chain(
        fake_clock, [primary, secondary], hedge={"enabled": True, "min_samples": 20}
    )
    for _ in range(30):
        _, took = await drive(fake_clock, chain.chat(request(), context(fake_clock, chain)))
        assert took == pytest.approx(0.1)
    assert secondary.calls == 0  # fast answers: no hedge
    served = Served()
    reply, took = await drive(
        fake_clock, chain.chat_with(request(), context(fake_clock, chain), served)
    )
    print(f"\nhedge: slow primary (5s), hedge after P95 0.1s, answered in {took:.2f}s")
    assert reply.model == "secondary" and took == pytest.approx(0.4)
    assert primary.cancelled == 1  # the loser was cancelled
    assert rec.count("hedge.sent") == 1 and rec.events[-1].kind == "hedge.won"
    assert rec.events[-1].data == {"deployment": "secondary", "hedge": True}
    assert served.deployment == "secondary" and served.attempts == 2


async def test_attempt_context_carries_the_deadlines(fake_clock: FakeClock) -> None:
    p = FakeProvider("only", fake_clock)
    chain, _ = make_chain(
        fake_clock,
        [p],
        attempt_timeout_s=7.0,
        stream={"ttft_timeout_s": 3.0, "stall_timeout_s": 4.0},
    )
    await drive(fake_clock, chain.chat(request(), context(fake_clock, chain)))
    ctx = p.contexts[0]
    assert (ctx.deadline, ctx.ttft_timeout, ctx.stall_timeout) == (7.0, 3.0, 4.0)
