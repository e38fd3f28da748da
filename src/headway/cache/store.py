"""Exact-cache storage: a small protocol, an in-process LRU bounded by bytes, and Redis.

Values are encoded entries (headway.cache.entry). A store keeps an entry until `expires_at +
max_stale` so the degradation ladder can still serve it, flagged stale; freshness is decided by
the caller from the entry's own timestamps. Keys are `version:tenant:hash`, so a purge by tenant
is a prefix scan; a purge by model reads the model from the entry.
"""

from __future__ import annotations

from collections import OrderedDict
from typing import Any, Protocol

from headway.cache.entry import decode
from headway.cache.keys import tenant_tag


class CacheStore(Protocol):
    async def get(self, key: str) -> bytes | None: ...

    async def set(self, key: str, value: bytes, *, keep_s: float, now: float) -> None:
        """Store `value` until `now + keep_s` (freshness TTL plus the allowed staleness)."""
        ...

    async def delete(self, key: str) -> None: ...

    async def purge(self, *, tenant: str | None = None, model: str | None = None) -> int:
        """Drop every entry of `tenant` and/or `model` (both None: everything); returns a count."""
        ...

    async def aclose(self) -> None: ...


class MemoryStore:
    """LRU by bytes. `now` comes from the caller's clock, so expiry is testable without sleeps."""

    def __init__(self, max_bytes: int, clock_time: Any) -> None:
        self._max = max_bytes
        self._time = clock_time
        self._items: OrderedDict[str, tuple[bytes, float]] = OrderedDict()
        self.bytes = 0

    def __len__(self) -> int:
        return len(self._items)

    async def get(self, key: str) -> bytes | None:
        item = self._items.get(key)
        if item is None:
            return None
        if item[1] <= self._time():
            self._drop(key)
            return None
        self._items.move_to_end(key)
        return item[0]

    def _drop(self, key: str) -> None:
        value, _ = self._items.pop(key)
        self.bytes -= len(value) + len(key)

    async def set(self, key: str, value: bytes, *, keep_s: float, now: float) -> None:
        size = len(value) + len(key)
        if size > self._max:
            return
        if key in self._items:
            self._drop(key)
        self._items[key] = (value, now + keep_s)
        self.bytes += size
        while self.bytes > self._max:
            oldest = next(iter(self._items))
            self._drop(oldest)

    async def delete(self, key: str) -> None:
        if key in self._items:
            self._drop(key)

    async def purge(self, *, tenant: str | None = None, model: str | None = None) -> int:
        doomed = []
        for key, (value, _) in self._items.items():
            if _matches(key, value, tenant, model):
                doomed.append(key)
        for key in doomed:
            self._drop(key)
        return len(doomed)

    async def aclose(self) -> None:
        self._items.clear()
        self.bytes = 0


def _matches(key: str, value: bytes, tenant: str | None, model: str | None) -> bool:
    if tenant is not None and key.split(":", 2)[1] != tenant_tag(tenant):
        return False
    if model is not None:
        entry = decode(value)
        return entry is None or entry.model == model
    return True


class RedisStore:
    """Entries as plain Redis strings with PX expiry; shared by every replica.

    Keys live under `headway:cache:` and carry the tenant in clear text (`...:<tenant>:<hash>`),
    so a tenant purge is one SCAN with a MATCH pattern; a model purge reads the entries.
    """

    prefix = "headway:cache:"

    def __init__(self, client: Any, *, owns_client: bool = False) -> None:
        self._r = client
        self._owns = owns_client

    @classmethod
    def from_url(cls, url: str) -> RedisStore:
        import redis.asyncio as aioredis

        return cls(aioredis.from_url(url), owns_client=True)

    async def get(self, key: str) -> bytes | None:
        value: bytes | None = await self._r.get(self.prefix + key)
        return value

    async def set(self, key: str, value: bytes, *, keep_s: float, now: float) -> None:
        await self._r.set(self.prefix + key, value, px=max(1, int(keep_s * 1000)))

    async def delete(self, key: str) -> None:
        await self._r.delete(self.prefix + key)

    async def purge(self, *, tenant: str | None = None, model: str | None = None) -> int:
        tag = tenant_tag(tenant) if tenant is not None else None
        pattern = self.prefix + "*:" + _glob_escape(tag) + ":*" if tag else self.prefix + "*"
        count = 0
        async for raw_key in self._r.scan_iter(match=pattern, count=500):
            key = raw_key.decode() if isinstance(raw_key, bytes) else raw_key
            if model is not None:
                value = await self._r.get(key)
                if value is None or not _matches(key[len(self.prefix) :], value, tenant, model):
                    continue
            elif tag is not None and key[len(self.prefix) :].split(":", 2)[1] != tag:
                continue
            count += await self._r.delete(key)
        return count

    async def aclose(self) -> None:
        if self._owns:
            await self._r.aclose()


def _glob_escape(text: str) -> str:
    return "".join("\\" + c if c in "*?[]\\" else c for c in text)
