"""The shortcuts of the Redis hot path keep what they skip: a client follows its caller to a new
event loop without asking asyncio for the running loop on every command, and a breaker update
that skips the lock never runs while another update of the same breaker waits on Redis."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable

import pytest

from headway.clock import FakeClock
from headway.observe.events import EventBus
from headway.routing.breaker import BreakerPolicy, BreakerState, Outcome
from headway.routing.breaker_redis import RedisBreakerStore
from headway.routing.breakers import Breakers
from headway.stores.redis import RedisClient

POLICY = BreakerPolicy(consecutive_failures=5, cooldown_s=10.0, window_s=60.0, probe_lease_s=5.0)


def test_a_client_follows_its_caller_to_a_new_event_loop(redis_url: str) -> None:
    client = RedisClient(redis_url)

    async def ping(close: bool) -> bool:
        try:
            return await client.ping()
        finally:
            if close:
                await client.aclose()

    assert asyncio.run(ping(close=False))
    # the first loop is closed: its connection cannot serve this one, a new one is opened
    assert asyncio.run(ping(close=True))


@pytest.fixture
async def lean(redis_url: str) -> AsyncIterator[RedisClient]:
    client = RedisClient(redis_url)
    await client.flushdb()
    yield client
    await client.aclose()


def totals(state: BreakerState) -> tuple[int, int]:
    return sum(n for _, n, _ in state.buckets), sum(f for _, _, f in state.buckets)


async def test_a_success_during_a_write_of_the_same_breaker_is_not_lost(
    lean: RedisClient, fake_clock: FakeClock
) -> None:
    mine = RedisBreakerStore(lean, fake_clock, max_staleness_s=10.0)
    breakers = Breakers(mine, fake_clock, EventBus())
    await breakers.record("dep", POLICY, Outcome.SUCCESS, probe=False)  # kept locally
    # The failure is written at once (with the success before it) and awaits Redis. A success
    # recorded meanwhile must wait for that write: counted locally on the state the write is
    # replacing, it would be dropped with the successes the write carries.
    failure = asyncio.create_task(breakers.record("dep", POLICY, Outcome.FAILURE, probe=False))
    await asyncio.sleep(0)  # the failure's write is on its way
    await breakers.record("dep", POLICY, Outcome.SUCCESS, probe=False)
    await failure
    assert totals(await breakers.state("dep")) == (3, 1)  # calls, failures


async def test_updates_of_a_fresh_state_need_no_round_trip(
    lean: RedisClient, fake_clock: FakeClock
) -> None:
    breakers = Breakers(
        RedisBreakerStore(lean, fake_clock, max_staleness_s=1.0), fake_clock, EventBus()
    )
    await breakers.record("dep", POLICY, Outcome.SUCCESS, probe=False)  # the one read
    sent: list[object] = []
    inner = lean.send  # every command of the client, scripts' too, goes through it

    def counting(command: bytes) -> Awaitable[object]:
        sent.append(command)
        return inner(command)

    lean.send = counting  # type: ignore[method-assign]
    for _ in range(20):
        await breakers.admit("dep", POLICY)
        await breakers.record("dep", POLICY, Outcome.SUCCESS, probe=False)
    assert sent == []
    assert totals(await breakers.state("dep")) == (21, 0)
