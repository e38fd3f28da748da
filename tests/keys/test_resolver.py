"""Resolving tokens: the cache, its TTL and invalidation, revocation, and database outages."""

from __future__ import annotations

import asyncio

import pytest

from headway.clock import FakeClock
from headway.errors import Unavailable
from headway.keys.invalidate import ALL, LocalInvalidation
from headway.keys.model import ApiKey
from headway.keys.resolver import StoreKeyResolver
from headway.keys.service import KeyService
from headway.keys.store import MemoryKeyStore


class CountingStore(MemoryKeyStore):
    def __init__(self) -> None:
        super().__init__()
        self.reads = 0
        self.down = False
        self.gate: asyncio.Event | None = None

    async def by_hash(self, key_hash: str) -> ApiKey | None:
        self.reads += 1
        if self.gate is not None:
            await self.gate.wait()
        if self.down:
            raise Unavailable("key store is down")
        return await super().by_hash(key_hash)


def setup(
    clock: FakeClock, *, ttl: float = 30.0, negative_ttl: float = 2.0
) -> tuple[CountingStore, KeyService, StoreKeyResolver]:
    store = CountingStore()
    inv = LocalInvalidation()
    resolver = StoreKeyResolver(store, clock, ttl=ttl, negative_ttl=negative_ttl, invalidation=inv)
    return store, KeyService(store, clock, inv), resolver


async def test_a_key_resolves_to_its_principal(fake_clock: FakeClock) -> None:
    _, service, resolver = setup(fake_clock)
    key, token = await service.create(
        {"tenant": "acme", "user": "ann", "team": "ads", "allowed_models": ["sim-small"]}
    )
    p = await resolver.resolve(token)
    assert p is not None
    assert (p.tenant, p.user, p.team, p.key_id) == ("acme", "ann", "ads", key.id)
    assert p.allowed_models == frozenset({"sim-small"}) and not p.is_admin


async def test_hits_come_from_the_cache_until_the_ttl(fake_clock: FakeClock) -> None:
    store, service, resolver = setup(fake_clock, ttl=30)
    _, token = await service.create({})
    for _ in range(5):
        assert await resolver.resolve(token) is not None
    assert store.reads == 1
    await fake_clock.advance(30)
    assert await resolver.resolve(token) is not None
    assert store.reads == 2


async def test_revocation_is_seen_at_once_through_invalidation(fake_clock: FakeClock) -> None:
    _, service, resolver = setup(fake_clock)
    key, token = await service.create({})
    assert await resolver.resolve(token) is not None
    await service.revoke(key.id)
    assert await resolver.resolve(token) is None


async def test_without_invalidation_the_ttl_bounds_a_stale_key(fake_clock: FakeClock) -> None:
    store = CountingStore()
    resolver = StoreKeyResolver(store, fake_clock, ttl=10)
    service = KeyService(store, fake_clock)  # e.g. the CLI on another machine, no pub/sub
    key, token = await service.create({})
    assert await resolver.resolve(token) is not None
    await service.revoke(key.id)
    assert await resolver.resolve(token) is not None  # still cached
    await fake_clock.advance(10)
    assert await resolver.resolve(token) is None


async def test_unknown_tokens_are_remembered_briefly(fake_clock: FakeClock) -> None:
    store, _, resolver = setup(fake_clock, negative_ttl=2)
    for _ in range(3):
        assert await resolver.resolve("hw-not-a-real-key") is None
    assert store.reads == 1
    await fake_clock.advance(2)
    assert await resolver.resolve("hw-not-a-real-key") is None
    assert store.reads == 2


async def test_foreign_and_oversized_tokens_never_reach_the_store(fake_clock: FakeClock) -> None:
    store, _, resolver = setup(fake_clock)
    assert await resolver.resolve("sk-openai-style") is None
    assert await resolver.resolve("hw-" + "x" * 500) is None
    assert store.reads == 0


async def test_expired_keys_stop_resolving_even_from_the_cache(fake_clock: FakeClock) -> None:
    _, service, resolver = setup(fake_clock, ttl=1000)
    _, token = await service.create({"expires_in_s": 60})
    assert await resolver.resolve(token) is not None
    await fake_clock.advance(60)
    assert await resolver.resolve(token) is None


async def test_known_keys_survive_a_database_outage(fake_clock: FakeClock) -> None:
    store, service, resolver = setup(fake_clock, ttl=5)
    _, token = await service.create({"tenant": "acme"})
    assert await resolver.resolve(token) is not None
    store.down = True
    await fake_clock.advance(5)
    p = await resolver.resolve(token)  # stale but known: still served
    assert p is not None and p.tenant == "acme"
    _, other = await service.create({})
    with pytest.raises(Unavailable):
        await resolver.resolve(other)  # unknown while down: 503, not 401


async def test_concurrent_misses_share_one_read(fake_clock: FakeClock) -> None:
    store, service, resolver = setup(fake_clock)
    _, token = await service.create({})
    store.gate = asyncio.Event()
    waiting = [asyncio.ensure_future(resolver.resolve(token)) for _ in range(10)]
    await asyncio.sleep(0)
    store.gate.set()
    results = await asyncio.gather(*waiting)
    assert all(r is not None for r in results)
    assert store.reads == 1


async def test_a_load_overtaken_by_an_invalidation_is_not_cached(fake_clock: FakeClock) -> None:
    store, service, resolver = setup(fake_clock)
    key, token = await service.create({})
    store.gate = asyncio.Event()
    pending = asyncio.ensure_future(resolver.resolve(token))
    await asyncio.sleep(0)
    resolver.invalidate(key.key_hash)  # e.g. a revocation published mid-read
    store.gate.set()
    assert await pending is not None
    assert resolver.cached == 0
    store.gate = None
    await service.revoke(key.id)
    assert await resolver.resolve(token) is None


async def test_flush_all_and_the_size_bound(fake_clock: FakeClock) -> None:
    store = CountingStore()
    resolver = StoreKeyResolver(store, fake_clock, max_entries=3)
    service = KeyService(store, fake_clock)
    tokens = [(await service.create({}))[1] for _ in range(5)]
    for t in tokens:
        await resolver.resolve(t)
    assert resolver.cached == 3
    resolver.invalidate(ALL)
    assert resolver.cached == 0
