"""One contract suite for breaker stores, run over memory and a real Redis; plus the Breakers
facade: events on transitions, sharing across replicas, and surviving a store outage."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import pytest

from headway.clock import FakeClock
from headway.observe.events import Event, EventBus
from headway.routing.breaker import (
    CLOSED_STATE,
    OPEN,
    Admission,
    BreakerPolicy,
    BreakerState,
    Outcome,
)
from headway.routing.breaker_redis import RedisBreakerStore, merged, successes_only
from headway.routing.breakers import Breakers, BreakerStore, MemoryBreakerStore
from headway.stores.redis import RedisClient
from tests.conftest import free_port
from tests.limits.test_redis_store import Counting

POLICY = BreakerPolicy(consecutive_failures=2, cooldown_s=10.0, window_s=60.0, probe_lease_s=5.0)


@pytest.fixture(params=["memory", "redis", "redis-py"])
async def store(
    request: pytest.FixtureRequest, fake_clock: FakeClock
) -> AsyncIterator[BreakerStore]:
    if request.param == "memory":
        yield MemoryBreakerStore()
        return
    import redis.asyncio as aioredis

    url = request.getfixturevalue("redis_url")
    client: Any = aioredis.from_url(url) if request.param == "redis-py" else RedisClient(url)
    await client.flushdb()
    try:
        yield RedisBreakerStore(client, fake_clock, max_staleness_s=0.0)
    finally:
        await client.aclose()


def bump(state: BreakerState) -> tuple[BreakerState, int]:
    new = BreakerState(consecutive=state.consecutive + 1)
    return new, new.consecutive


async def test_update_applies_and_returns(store: BreakerStore) -> None:
    assert await store.load("a") == CLOSED_STATE
    assert await store.update("a", bump, 60.0) == 1
    assert await store.update("a", bump, 60.0) == 2
    assert (await store.load("a")).consecutive == 2
    assert (await store.load("b")).consecutive == 0  # names are independent


async def test_unchanged_states_are_not_rewritten(store: BreakerStore) -> None:
    def same(state: BreakerState) -> tuple[BreakerState, str]:
        return state, "same"

    assert await store.update("a", same, 60.0) == "same"
    assert await store.load("a") == CLOSED_STATE


async def test_concurrent_updates_are_not_lost(store: BreakerStore) -> None:
    await asyncio.gather(*(store.update("a", bump, 60.0) for _ in range(20)))
    assert (await store.load("a")).consecutive == 20


async def test_replicas_sharing_redis_see_each_others_writes(
    redis_client: Any, fake_clock: FakeClock
) -> None:
    one = RedisBreakerStore(redis_client, fake_clock, max_staleness_s=1.0)
    two = RedisBreakerStore(redis_client, fake_clock, max_staleness_s=1.0)
    assert await one.update("a", bump, 60.0) == 1
    assert await two.update("a", bump, 60.0) == 2  # two had no cached state: it reads
    # one's cached state is stale (version 1): its write conflicts, is recomputed, lands on top
    assert await one.update("a", bump, 60.0) == 3
    assert (await two.load("a")).consecutive == 3
    ttl = await redis_client.pttl("headway:breaker:{a}")
    assert 0 < ttl <= 60_000


def _bus() -> tuple[EventBus, list[Event]]:
    bus = EventBus()
    seen: list[Event] = []
    bus.subscribe(None, seen.append)
    return bus, seen


async def test_breakers_emit_transitions_and_share_state_across_replicas(
    redis_client: Any, fake_clock: FakeClock
) -> None:
    bus, seen = _bus()
    a = Breakers(RedisBreakerStore(redis_client, fake_clock, max_staleness_s=0.0), fake_clock, bus)
    b = Breakers(RedisBreakerStore(redis_client, fake_clock, max_staleness_s=0.0), fake_clock, bus)
    # replica a sees one failure, replica b another: together they open the shared breaker
    assert await a.admit("dep", POLICY) is Admission.ALLOW
    await a.record("dep", POLICY, Outcome.FAILURE, probe=False)
    await b.record("dep", POLICY, Outcome.FAILURE, probe=False)
    assert (await a.state("dep")).status == OPEN
    assert await a.admit("dep", POLICY) is Admission.REJECT
    await fake_clock.advance(10.0)
    # after the cooldown exactly one replica gets the probe
    admissions = [await b.admit("dep", POLICY), await a.admit("dep", POLICY)]
    assert admissions == [Admission.PROBE, Admission.REJECT]
    await b.record("dep", POLICY, Outcome.SUCCESS, probe=True)
    assert await a.admit("dep", POLICY) is Admission.ALLOW
    kinds = [e.kind for e in seen]
    assert kinds == ["breaker.opened", "breaker.half_opened", "breaker.closed"]
    assert all(e.data["deployment"] == "dep" for e in seen)


class BrokenStore(MemoryBreakerStore):
    broken = True

    async def update(self, name: str, fn: Any, ttl_s: float) -> Any:
        from headway.errors import Unavailable

        if self.broken:
            raise Unavailable("redis is down")
        return await super().update(name, fn, ttl_s)


async def test_a_store_outage_falls_back_to_local_breakers(fake_clock: FakeClock) -> None:
    bus, seen = _bus()
    store = BrokenStore()
    breakers = Breakers(store, fake_clock, bus)
    for _ in range(2):
        await breakers.record("dep", POLICY, Outcome.FAILURE, probe=False)
    assert await breakers.admit("dep", POLICY) is Admission.REJECT  # still protected, locally
    store.broken = False
    assert await breakers.admit("dep", POLICY) is Admission.ALLOW  # the shared state again
    kinds = [e.kind for e in seen]
    assert kinds[0] == "breaker.store_unavailable" and "breaker.store_recovered" in kinds


async def test_redis_errors_become_unavailable(fake_clock: FakeClock) -> None:
    import redis.asyncio as aioredis

    from headway.errors import Unavailable

    client = aioredis.from_url("redis://127.0.0.1:1/0")  # nothing listens on port 1
    try:
        store = RedisBreakerStore(client, fake_clock)
        with pytest.raises(Unavailable):
            await store.update("a", bump, 60.0)
    finally:
        await client.aclose()


async def test_redis_client_errors_become_unavailable(fake_clock: FakeClock) -> None:
    from headway.errors import Unavailable

    client = RedisClient(f"redis://127.0.0.1:{free_port()}/0")
    store = RedisBreakerStore(client, fake_clock)
    with pytest.raises(Unavailable):
        await store.update("a", bump, 60.0)
    await client.aclose()


def counts(state: BreakerState) -> list[tuple[int, int]]:
    return [(n, f) for _, n, f in state.buckets]


@pytest.fixture
def lean(lean_redis: RedisClient) -> RedisClient:
    return lean_redis


async def test_successes_of_a_healthy_breaker_are_written_in_batches(
    lean: RedisClient, fake_clock: FakeClock
) -> None:
    bus, seen = _bus()
    breakers = Breakers(RedisBreakerStore(lean, fake_clock, max_staleness_s=1.0), fake_clock, bus)
    other = RedisBreakerStore(lean, fake_clock, max_staleness_s=0.0)  # another replica's view
    counter = Counting(lean)
    for _ in range(50):
        assert await breakers.admit("dep", POLICY) is Admission.ALLOW
        await breakers.record("dep", POLICY, Outcome.SUCCESS, probe=False)
    assert counter.sent == ["HMGET"]  # one read of the shared state, no write per success
    assert counts(await breakers.state("dep")) == [(50, 0)]  # this replica sees them
    await fake_clock.advance(1.0)
    await breakers.record("dep", POLICY, Outcome.SUCCESS, probe=False)
    assert counts(await other.load("dep")) == [(51, 0)]  # written once old enough
    assert [e.kind for e in seen] == []


async def test_a_failure_is_written_at_once_with_the_successes_before_it(
    lean: RedisClient, fake_clock: FakeClock
) -> None:
    mine = RedisBreakerStore(lean, fake_clock, max_staleness_s=10.0)
    breakers = Breakers(mine, fake_clock, EventBus())
    other = RedisBreakerStore(lean, fake_clock, max_staleness_s=0.0)
    for _ in range(3):
        await breakers.record("dep", POLICY, Outcome.SUCCESS, probe=False)
    assert (await other.load("dep")).buckets == ()
    await breakers.record("dep", POLICY, Outcome.FAILURE, probe=False)
    state = await other.load("dep")
    assert state.consecutive == 1 and counts(state) == [(4, 1)]


async def test_unwritten_successes_never_hide_failures_of_other_replicas(
    lean: RedisClient, fake_clock: FakeClock
) -> None:
    bus, seen = _bus()
    a = Breakers(RedisBreakerStore(lean, fake_clock, max_staleness_s=10.0), fake_clock, bus)
    b = Breakers(RedisBreakerStore(lean, fake_clock, max_staleness_s=0.0), fake_clock, bus)
    await a.record("dep", POLICY, Outcome.SUCCESS, probe=False)  # kept locally by a
    await b.record("dep", POLICY, Outcome.FAILURE, probe=False)
    await b.record("dep", POLICY, Outcome.FAILURE, probe=False)  # b opens the shared breaker
    assert (await b.state("dep")).status == OPEN
    # a's cached view is stale, but its next change conflicts and lands on the shared state
    await a.record("dep", POLICY, Outcome.FAILURE, probe=False)
    assert (await a.state("dep")).status == OPEN
    assert [e.kind for e in seen] == ["breaker.opened"]


async def test_a_merged_window_keeps_buckets_in_order() -> None:
    state = BreakerState(consecutive=0, buckets=((3, 2, 1), (5, 1, 0)))
    assert merged(state, {4: 2, 5: 1}).buckets == ((3, 2, 1), (4, 2, 0), (5, 2, 0))
    assert merged(BreakerState(status=OPEN), {4: 2}) == BreakerState(status=OPEN)
    assert successes_only(state, BreakerState(buckets=((3, 2, 1), (5, 3, 0)))) == {5: 2}
    assert successes_only(state, BreakerState(buckets=((3, 2, 1), (5, 2, 1)))) is None
    assert successes_only(state, BreakerState(consecutive=1, buckets=state.buckets)) is None


async def test_a_fresh_closed_view_answers_the_calls_steps_without_any_command(
    lean: RedisClient, fake_clock: FakeClock
) -> None:
    """`closed_now` and `succeeded_now`, the two breaker steps of nearly every chat call, need
    no round trip while this replica's view is fresh, and hand over to the store once it is not."""
    breakers = Breakers(
        RedisBreakerStore(lean, fake_clock, max_staleness_s=1.0), fake_clock, EventBus()
    )
    counter = Counting(lean)
    assert not breakers.closed_now("dep", POLICY)  # never read: only the store can tell
    assert not breakers.succeeded_now("dep", POLICY)
    await breakers.record("dep", POLICY, Outcome.SUCCESS, probe=False)  # reads it
    assert counter.sent == ["HMGET"]
    for _ in range(20):
        assert breakers.closed_now("dep", POLICY)
        assert breakers.succeeded_now("dep", POLICY)
    assert counter.sent == ["HMGET"]
    assert counts(await breakers.state("dep")) == [(21, 0)]  # every success counted
    await fake_clock.advance(1.0)
    assert not breakers.closed_now("dep", POLICY)  # stale: the cursor path reads it again
    assert not breakers.succeeded_now("dep", POLICY)
    assert breakers.closed_now("dep", None) and breakers.succeeded_now("dep", None)  # off


async def test_no_answer_without_io_for_an_open_breaker_or_an_update_under_way(
    lean: RedisClient, fake_clock: FakeClock
) -> None:
    store = RedisBreakerStore(lean, fake_clock, max_staleness_s=10.0)
    breakers = Breakers(store, fake_clock, EventBus())
    for _ in range(2):
        await breakers.record("dep", POLICY, Outcome.FAILURE, probe=False)
    assert (await breakers.state("dep")).status == OPEN
    assert not breakers.closed_now("dep", POLICY)  # admission of an open breaker is the store's
    assert store.peek("dep") is not None
    async with store._locks["dep"]:  # another call between its read and its write
        assert store.peek("dep") is None
        assert store.try_update("dep", bump) is None


async def test_a_failing_store_is_never_answered_from_the_stale_view(fake_clock: FakeClock) -> None:
    client = RedisClient(f"redis://127.0.0.1:{free_port()}/0", connect_timeout_s=0.2)
    breakers = Breakers(RedisBreakerStore(client, fake_clock), fake_clock, EventBus())
    await breakers.record("dep", POLICY, Outcome.SUCCESS, probe=False)  # falls back to local
    assert not breakers.closed_now("dep", POLICY)
    assert not breakers.succeeded_now("dep", POLICY)
    await client.aclose()
