"""Telling every replica that a cached key changed.

`LocalInvalidation` reaches the resolvers of this process only (the memory state backend: one
process, nothing else to tell). `RedisInvalidation` (headway.keys.redis_invalidate) publishes on
a Redis channel that every replica listens to. Messages carry the key's hash, or `*` for "drop
everything".
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Protocol

ALL = "*"
Callback = Callable[[str], None]


class Invalidation(Protocol):
    async def publish(self, key_hash: str) -> None: ...

    def subscribe(self, callback: Callback) -> None: ...

    async def start(self) -> None:
        """Begin receiving (idempotent; needs the running event loop)."""
        ...

    async def aclose(self) -> None: ...


class LocalInvalidation:
    def __init__(self) -> None:
        self._callbacks: list[Callback] = []

    async def publish(self, key_hash: str) -> None:
        for callback in self._callbacks:
            callback(key_hash)

    def subscribe(self, callback: Callback) -> None:
        self._callbacks.append(callback)

    async def start(self) -> None:
        return None

    async def aclose(self) -> None:
        return None
