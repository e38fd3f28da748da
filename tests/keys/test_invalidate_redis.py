"""Two replicas sharing Redis: a revocation made on one is seen by the other at once."""

from __future__ import annotations

import asyncio

import redis.asyncio as aioredis

from headway.clock import FakeClock
from headway.keys.redis_invalidate import RedisInvalidation
from headway.keys.resolver import StoreKeyResolver
from headway.keys.service import KeyService
from headway.keys.store import MemoryKeyStore
from headway.stores.redis import RedisClient
from tests.conftest import free_port


async def test_revocation_reaches_another_replica_over_pubsub(
    redis_url: str, fake_clock: FakeClock
) -> None:
    store = MemoryKeyStore()  # stands in for the shared database
    channel = "headway:test:keys"
    admin_side = RedisInvalidation(
        aioredis.from_url(redis_url), channel, fake_clock, owns_client=True
    )
    other_side = RedisInvalidation(
        aioredis.from_url(redis_url), channel, fake_clock, owns_client=True
    )
    service = KeyService(store, fake_clock, admin_side)
    replica = StoreKeyResolver(store, fake_clock, ttl=3600, invalidation=other_side)
    heard = asyncio.Event()
    other_side.subscribe(lambda _h: heard.set())
    try:
        key, token = await service.create({"tenant": "acme"})
        await replica.start()
        heard.clear()  # the creation may or may not have been heard before subscribing
        assert await replica.resolve(token) is not None
        assert replica.cached == 1

        await service.revoke(key.id)
        await asyncio.wait_for(heard.wait(), timeout=10)  # a guard, not a timer under test
        assert replica.cached == 0
        assert await replica.resolve(token) is None
    finally:
        await other_side.aclose()
        await admin_side.aclose()


async def test_publishing_without_redis_does_not_fail(fake_clock: FakeClock) -> None:
    client = aioredis.from_url("redis://127.0.0.1:1/0", socket_connect_timeout=0.5)
    inv = RedisInvalidation(client, "c", fake_clock, owns_client=True)
    await inv.publish("abc")  # logged; the cache TTL covers the miss
    await inv.aclose()


async def test_revocations_travel_over_headways_own_client(
    redis_url: str, fake_clock: FakeClock
) -> None:
    admin_side = RedisInvalidation(RedisClient(redis_url), "c2", fake_clock, owns_client=True)
    other_side = RedisInvalidation(RedisClient(redis_url), "c2", fake_clock, owns_client=True)
    heard: asyncio.Queue[str] = asyncio.Queue()
    other_side.subscribe(heard.put_nowait)
    try:
        await other_side.start()  # returns once subscribed
        await admin_side.publish("abc")
        assert await asyncio.wait_for(heard.get(), timeout=10) == "abc"  # a guard, not a timer
    finally:
        await other_side.aclose()
        await admin_side.aclose()


async def test_publishing_without_redis_does_not_fail_on_headways_client(
    fake_clock: FakeClock,
) -> None:
    inv = RedisInvalidation(
        RedisClient(f"redis://127.0.0.1:{free_port()}/0"), "c", fake_clock, owns_client=True
    )
    await inv.publish("abc")
    await inv.aclose()
