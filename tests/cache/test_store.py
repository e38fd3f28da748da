"""One contract suite for the exact-cache stores, run over memory and Redis."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest

from headway.cache.entry import Entry, encode
from headway.cache.store import CacheStore, MemoryStore, RedisStore
from headway.clock import FakeClock
from headway.types import ChatResponse, FinishReason, Usage


def value(tenant: str, model: str, text: str = "x") -> bytes:
    response = ChatResponse("id", model, text, FinishReason.STOP, Usage(1, 1))
    return encode(Entry(response, 0.0, 10.0, tenant, model))


@pytest.fixture(params=["memory", "redis"])
async def store(request: pytest.FixtureRequest, fake_clock: FakeClock) -> AsyncIterator[CacheStore]:
    if request.param == "memory":
        yield MemoryStore(1 << 20, fake_clock.time)
        return
    import redis.asyncio as aioredis

    url: str = request.getfixturevalue("redis_url")
    client: Any = aioredis.from_url(url)
    await client.flushdb()
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
    store = MemoryStore(300, fake_clock.time)
    now = fake_clock.time()
    for i in range(3):
        await store.set(f"k{i}", b"x" * 90, keep_s=60, now=now)
    assert await store.get("k0") is not None  # k0 becomes the most recently used
    await store.set("k3", b"x" * 90, keep_s=60, now=now)
    assert store.bytes <= 300
    assert await store.get("k1") is None
    assert await store.get("k0") is not None
    await store.set("huge", b"x" * 1000, keep_s=60, now=now)
    assert await store.get("huge") is None
