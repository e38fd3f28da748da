"""Exact-cache storage: a small protocol, an in-process LRU bounded by bytes, and Redis.

Values are encoded entries (headway.cache.entry). A store keeps an entry until `expires_at +
max_stale` so the degradation ladder can still serve it, flagged stale; freshness is decided by
the caller from the entry's own timestamps. Keys are `version:tenant:hash`, so a purge by tenant
is a prefix scan; a purge by model reads the model from the entry.
"""

from __future__ import annotations

import sys
from collections import OrderedDict
from collections.abc import Awaitable
from typing import Any, Protocol

from headway.cache.entry import decode
from headway.cache.keys import tenant_tag
from headway.stores.redis import Detached, RedisClient, commands
from headway.stores.resp import encode

#: what an entry costs besides its key and value objects: the dict slot and node of the LRU,
#: the (value, expiry) tuple and the expiry float (measured with tracemalloc: ~150 bytes)
ENTRY_OVERHEAD = 160


def entry_size(key: str, value: bytes) -> int:
    """Bytes an entry really occupies, so `max_bytes` bounds the process's memory."""
    return sys.getsizeof(key) + sys.getsizeof(value) + ENTRY_OVERHEAD


class CacheStore(Protocol):
    # awaitables, not coroutines: a remote store hands back its reply's future as is
    def get(self, key: str) -> Awaitable[bytes | None]: ...

    def set(self, key: str, value: bytes, *, keep_s: float, now: float) -> Awaitable[object]:
        """Store `value` until `now + keep_s` (freshness TTL plus the allowed staleness)."""
        ...

    async def delete(self, key: str) -> None: ...

    async def purge(self, *, tenant: str | None = None, model: str | None = None) -> int:
        """Drop every entry of `tenant` and/or `model` (both None: everything); returns a count."""
        ...

    async def aclose(self) -> None: ...


class MemoryStore:
    """LRU by bytes. `now` comes from the caller's clock, so expiry is testable without sleeps.

    Values are stored as right-sized copies: an `orjson.dumps` result keeps the allocation it
    was built in (~4 KB for a ~450-byte answer), so keeping it would hold ~10x what is counted.
    """

    def __init__(self, max_bytes: int, clock_time: Any) -> None:
        self._max = max_bytes
        self._time = clock_time
        self._items: OrderedDict[str, tuple[bytes, float]] = OrderedDict()
        self.bytes = 0

    def __len__(self) -> int:
        return len(self._items)

    async def get(self, key: str) -> bytes | None:
        return self.get_now(key)

    def get_now(self, key: str) -> bytes | None:
        """`get` without the coroutine (the cache stage's path when nothing else awaits)."""
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
        self.bytes -= entry_size(key, value)

    async def set(self, key: str, value: bytes, *, keep_s: float, now: float) -> None:
        self.set_now(key, value, keep_s=keep_s, now=now)

    def set_now(self, key: str, value: bytes, *, keep_s: float, now: float) -> None:
        """`set` without the coroutine."""
        size = entry_size(key, value)
        if size > self._max:
            return
        if key in self._items:
            self._drop(key)
        self._items[key] = (bytes(memoryview(value)), now + keep_s)  # a copy of exactly len()
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
    A Redis failure raises `headway.stores.redis.RedisError` (an `Unavailable`, HTTP 503).
    """

    prefix = "headway:cache:"

    def __init__(self, client: Any, *, owns_client: bool = False) -> None:
        """`client`: a `headway.stores.redis.RedisClient` (or a redis-py asyncio client)."""
        self._r = commands(client)
        self._owns = owns_client

    @classmethod
    def from_url(cls, url: str) -> RedisStore:
        return cls(RedisClient(url), owns_client=True)

    # get and set hand back the client's reply future: no coroutine per command
    def get(self, key: str) -> Awaitable[bytes | None]:
        reply: Awaitable[bytes | None] = self._r.execute_command("GET", self.prefix + key)
        return reply

    def set(self, key: str, value: bytes, *, keep_s: float, now: float) -> Awaitable[object]:
        px = str(max(1, int(keep_s * 1000)))  # text: encoded inline, without the generic path
        reply: Awaitable[object] = self._r.execute_command(
            "SET", self.prefix + key, value, "PX", px
        )
        return reply

    def set_detached(self, key: str, value: bytes, *, keep_s: float, sink: Detached) -> bool:
        """`set` written now with the loop iteration's other commands, its reply not awaited
        (an error goes to `sink`). False, and nothing written, when that is not possible (a
        connection not open yet, a redis-py client): `set` it then."""
        client = self._r
        if type(client) is not RedisClient:
            return False
        px = str(max(1, int(keep_s * 1000)))
        return client.post(encode(("SET", self.prefix + key, value, "PX", px)), sink)

    async def delete(self, key: str) -> None:
        await self._r.execute_command("DEL", self.prefix + key)

    async def purge(self, *, tenant: str | None = None, model: str | None = None) -> int:
        tag = tenant_tag(tenant) if tenant is not None else None
        pattern = self.prefix + "*:" + _glob_escape(tag) + ":*" if tag else self.prefix + "*"
        count = 0
        cursor: Any = 0
        while True:
            cursor, found = await self._r.execute_command(
                "SCAN", cursor, "MATCH", pattern, "COUNT", 500
            )
            for raw_key in found:
                key = raw_key.decode() if isinstance(raw_key, bytes) else raw_key
                count += await self._purge_one(key, tenant, tag, model)
            if int(cursor) == 0:
                return count

    async def _purge_one(
        self, key: str, tenant: str | None, tag: str | None, model: str | None
    ) -> int:
        if model is not None:
            value = await self._r.execute_command("GET", key)
            if value is None or not _matches(key[len(self.prefix) :], value, tenant, model):
                return 0
        elif tag is not None and key[len(self.prefix) :].split(":", 2)[1] != tag:
            return 0
        deleted: int = await self._r.execute_command("DEL", key)
        return deleted

    async def aclose(self) -> None:
        if self._owns:
            await self._r.aclose()


def _glob_escape(text: str) -> str:
    return "".join("\\" + c if c in "*?[]\\" else c for c in text)
