"""What `served.upstream_s` and `served.wait_s` count (the server reports the rest of a call's
time as `x-headway-overhead-ms`): provider time per attempt, hedges once, for streams only the
wait for chunks; retry backoff and queueing for capacity as waits. All on a FakeClock."""

from __future__ import annotations

import asyncio

import pytest

from headway.clock import FakeClock
from headway.context import Served
from headway.errors import UpstreamRateLimited
from tests.limits.rig import call, rig
from tests.routing.fakes import ANSWER, OK, Act, FakeProvider, drive
from tests.routing.helpers import context, make_chain, request

OFF = {"enabled": False}


async def test_each_attempt_is_upstream_time_and_the_backoff_a_wait(fake_clock: FakeClock) -> None:
    p = FakeProvider(
        "only",
        fake_clock,
        [Act(latency=1.0, error=UpstreamRateLimited("429", retry_after=2.0)), Act(latency=0.5)],
    )
    chain, _ = make_chain(fake_clock, [p], breaker=OFF)
    served = Served()
    reply, took = await drive(
        fake_clock, chain.chat_with(request(), context(fake_clock, chain), served)
    )
    assert reply.content == ANSWER and took == pytest.approx(3.5)
    assert served.upstream_s == pytest.approx(1.5)
    assert served.wait_s == pytest.approx(2.0)


async def test_hedged_attempts_racing_count_once(fake_clock: FakeClock) -> None:
    primary = FakeProvider("primary", fake_clock, [Act(latency=5.0)])
    secondary = FakeProvider("secondary", fake_clock, [Act(latency=0.3)])
    hedge = {"enabled": True, "min_samples": 1000, "initial_delay_s": 0.1}
    chain, _ = make_chain(fake_clock, [primary, secondary], hedge=hedge)
    served = Served()
    reply, took = await drive(
        fake_clock, chain.chat_with(request(), context(fake_clock, chain), served)
    )
    assert reply.model == "secondary" and took == pytest.approx(0.4)
    assert served.upstream_s == pytest.approx(0.4)  # not 0.4 + 0.3
    assert served.wait_s == 0.0


async def test_a_stream_counts_the_wait_for_chunks_not_the_callers_reading(
    fake_clock: FakeClock,
) -> None:
    p = FakeProvider("only", fake_clock, [Act(ttft=1.0, per_token=0.1)])
    chain, _ = make_chain(fake_clock, [p], breaker=OFF)
    served = Served()
    stream = chain.stream_with(request(stream=True), context(fake_clock, chain), served)
    chunks = 0
    while True:
        try:
            await drive(fake_clock, anext(stream))
        except StopAsyncIteration:
            break
        chunks += 1
        await fake_clock.advance(1.0)  # a slow reader: headway is not waiting on anyone here
    assert chunks > 60
    # the first token after 1 s, then 59 more tokens 0.1 s apart
    assert served.upstream_s == pytest.approx(1.0 + 59 * 0.1)
    assert served.wait_s == 0.0


async def test_a_stream_retry_backoff_is_a_wait(fake_clock: FakeClock) -> None:
    p = FakeProvider(
        "only", fake_clock, [Act(error=UpstreamRateLimited("429", retry_after=2.0)), OK]
    )
    chain, _ = make_chain(fake_clock, [p], breaker=OFF)
    served = Served()

    async def consume() -> str:
        stream = chain.stream_with(request(stream=True), context(fake_clock, chain), served)
        return "".join([c.text async for c in stream])

    text, took = await drive(fake_clock, consume())
    assert text == ANSWER and took == pytest.approx(2.0)
    assert served.wait_s == pytest.approx(2.0) and served.upstream_s == pytest.approx(0.0)


async def test_queueing_for_rate_limit_capacity_is_a_wait(fake_clock: FakeClock) -> None:
    r = rig("limits: {enabled: true, user: {rpm: 1}, wait: {max_wait_s: 120}}", fake_clock)
    first = call()
    await r.chat(first)
    assert first.served.wait_s == 0.0
    second = call()
    task = asyncio.ensure_future(r.chat(second))
    for _ in range(10):
        await asyncio.sleep(0)
    await fake_clock.advance(60)
    await task
    assert second.served.wait_s == pytest.approx(60.0)
