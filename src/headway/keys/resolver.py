"""Turning a bearer token into a `Principal`, with a per-replica cache.

The server's authenticator consults `KeyResolver.resolve(token)` for every request that is not
made with the master key. A hit costs one SHA-256 and one dict lookup. Entries live `ttl` seconds
(the safety net) and are dropped at once when an invalidation arrives (the fast path). While the
database is down, keys already known keep working from the cache; unknown ones get 503, not 401,
because they may well be valid.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass

from headway.clock import Clock
from headway.context import Principal
from headway.errors import Unavailable
from headway.keys.invalidate import ALL, Invalidation
from headway.keys.model import KEY_PREFIX, ApiKey, hash_key, principal_for, same_hash
from headway.keys.store import KeyStore

#: longer tokens are not ours; refusing them early bounds the hashing work an attacker can cause
MAX_TOKEN_LEN = 256


@dataclass(slots=True)
class _Entry:
    key: ApiKey | None
    principal: Principal | None
    expires: float


class StoreKeyResolver:
    """Implements the server's `KeyResolver` protocol over a `KeyStore`."""

    def __init__(
        self,
        store: KeyStore,
        clock: Clock,
        *,
        ttl: float = 30.0,
        negative_ttl: float = 2.0,
        max_entries: int = 100_000,
        invalidation: Invalidation | None = None,
    ) -> None:
        self._store = store
        self._clock = clock
        self._ttl = ttl
        self._negative_ttl = negative_ttl
        self._max = max_entries
        self._cache: dict[str, _Entry] = {}
        self._loading: dict[str, asyncio.Task[ApiKey | None]] = {}
        #: bumped by every invalidation; a load that started before one must not be cached
        self._generation = 0
        self._invalidation = invalidation
        self._started = invalidation is None
        if invalidation is not None:
            invalidation.subscribe(self.invalidate)

    def invalidate(self, key_hash: str) -> None:
        self._generation += 1
        if key_hash == ALL:
            self._cache.clear()
        else:
            self._cache.pop(key_hash, None)

    async def start(self) -> None:
        if not self._started and self._invalidation is not None:
            await self._invalidation.start()
        self._started = True

    async def resolve(self, token: str) -> Principal | None:
        if not token.startswith(KEY_PREFIX) or len(token) > MAX_TOKEN_LEN:
            return None
        if not self._started:
            await self.start()
        key_hash = hash_key(token)
        entry = self._cache.get(key_hash)
        if entry is None or entry.expires <= self._clock.monotonic():
            try:
                entry = await self._load(key_hash)
            except Unavailable:
                if entry is None:
                    raise
                # the database is down: a key we knew a moment ago is still the best answer
        if entry.key is None or not entry.key.active(self._clock.time()):
            return None
        return entry.principal

    async def _load(self, key_hash: str) -> _Entry:
        task = self._loading.get(key_hash)
        if task is None:
            # concurrent misses for one key share one database read
            task = asyncio.get_running_loop().create_task(self._store.by_hash(key_hash))
            self._loading[key_hash] = task
            task.add_done_callback(lambda _t: self._loading.pop(key_hash, None))
        generation = self._generation
        key = await asyncio.shield(task)
        if key is not None and not same_hash(key.key_hash, key_hash):
            key = None
        ttl = self._ttl if key is not None else self._negative_ttl
        entry = _Entry(key, principal_for(key) if key is not None else None, 0.0)
        entry.expires = self._clock.monotonic() + ttl
        if generation == self._generation and ttl > 0:
            self._remember(key_hash, entry)
        return entry

    def _remember(self, key_hash: str, entry: _Entry) -> None:
        cache = self._cache
        if key_hash not in cache and len(cache) >= self._max:
            now = self._clock.monotonic()
            for h in [h for h, e in cache.items() if e.expires <= now]:
                del cache[h]
            while len(cache) >= self._max:
                del cache[next(iter(cache))]  # oldest first
        cache[key_hash] = entry

    @property
    def cached(self) -> int:
        return len(self._cache)

    async def aclose(self) -> None:
        for task in list(self._loading.values()):
            task.cancel()
        self._loading.clear()
