"""One contract suite for the exact-cache stores, run over memory and Redis."""

from __future__ import annotations

import tracemalloc
from collections.abc import AsyncIterator
from typing import Any

import pytest

from headway.cache.entry import Entry, encode
from headway.cache.store import CacheStore, MemoryStore, RedisStore, entry_size
from headway.clock import FakeClock
from headway.stores.redis import RedisClient
from headway.types import ChatResponse, FinishReason, Usage


def value(tenant: str, model: str, text: str = "x") -> bytes:
    response = ChatResponse("id", model, text, FinishReason.STOP, Usage(1, 1))
    return encode(Entry(response, 0.0, 10.0, tenant, model))


@pytest.fixture(params=["memory", "redis", "redis-py"])
async def store(request: pytest.FixtureRequest, fake_clock: FakeClock) -> AsyncIterator[CacheStore]:
    if request.param == "memory":
        yield MemoryStore(1 << 20, fake_clock.time)
        return
    import redis.asyncio as aioredis

    url: str = request.getfixturevalue("redis_url")
    client: Any = aioredis.from_url(url)
    await client.flushdb()
    if request.param == "redis":  # headway's own client
        await client.aclose()
        lean = RedisStore.from_url(url)
        try:
            yield lean
        finally:
            await lean.aclose()
        return
    try:
        yield RedisStore(client)
    finally:
        await client.aclose()


async def test_set_get_delete(store: CacheStore, fake_clock: FakeClock) -> None:
    await store.set("hw:t1:a", b"one", keep_s=60, now=fake_clock.time())
    assert await store.get("hw:t1:a") == b"one"
    await store.delete("hw:t1:a")
    assert await store.get("hw:t1:a") is None


async def test_purge_by_tenant_and_model(store: CacheStore, fake_clock: FakeClock) -> None:
    now = fake_clock.time()
    await store.set("hw:t1:a", value("t1", "m1"), keep_s=60, now=now)
    await store.set("hw:t1:b", value("t1", "m2"), keep_s=60, now=now)
    await store.set("hw:t2:c", value("t2", "m1"), keep_s=60, now=now)
    assert await store.purge(tenant="t1", model="m1") == 1
    assert await store.get("hw:t1:a") is None and await store.get("hw:t1:b") is not None
    assert await store.purge(tenant="t2") == 1
    assert await store.get("hw:t2:c") is None
    assert await store.purge(model="m2") == 1


async def test_memory_expiry_follows_the_clock(fake_clock: FakeClock) -> None:
    store = MemoryStore(1 << 20, fake_clock.time)
    await store.set("hw:t:a", b"v", keep_s=10, now=fake_clock.time())
    await fake_clock.advance(9)
    assert await store.get("hw:t:a") == b"v"
    await fake_clock.advance(2)
    assert await store.get("hw:t:a") is None


async def test_memory_lru_is_bounded_by_bytes(fake_clock: FakeClock) -> None:
    room = 3 * entry_size("k0", b"x" * 90)  # three entries fit, counted as they really weigh
    store = MemoryStore(room, fake_clock.time)
    now = fake_clock.time()
    for i in range(3):
        await store.set(f"k{i}", b"x" * 90, keep_s=60, now=now)
    assert await store.get("k0") is not None  # k0 becomes the most recently used
    await store.set("k3", b"x" * 90, keep_s=60, now=now)
    assert store.bytes <= room
    assert await store.get("k1") is None
    assert await store.get("k0") is not None
    await store.set("huge", b"x" * room, keep_s=60, now=now)
    assert await store.get("huge") is None


async def test_memory_bound_holds_for_real_memory(fake_clock: FakeClock) -> None:
    """orjson results keep an oversized allocation; what the store keeps must not."""
    bound = 256 * 1024
    store = MemoryStore(bound, fake_clock.time)
    now = fake_clock.time()
    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        for i in range(2000):  # ~10x what fits
            await store.set(
                f"v1:t:{i:064x}", value("t", "m", "y" * 400 + str(i)), keep_s=60, now=now
            )
        held = tracemalloc.get_traced_memory()[0] - before
    finally:
        tracemalloc.stop()
    assert store.bytes <= bound
    assert 200 < len(store) < 2000
    assert held < bound * 1.25  # keeping orjson's own buffers held ~6x the bound


async def test_a_purge_walks_every_scan_page(redis_url: str, fake_clock: FakeClock) -> None:
    client = RedisClient(redis_url)
    await client.flushdb()
    store = RedisStore(client, owns_client=True)
    try:
        now = fake_clock.time()
        for i in range(1200):  # more than one SCAN page of 500
            await store.set(f"hw:t{i % 2}:{i}", value(f"t{i % 2}", "m"), keep_s=60, now=now)
        assert await store.purge(tenant="t1") == 600
        assert await store.purge() == 600
    finally:
        await store.aclose()
