"""Key invalidation over Redis pub/sub, for replicas that share state through Redis.

Messages carry the key's hash, or `*` for "drop everything". A replica that loses its
subscription drops its whole cache once it is back, since it may have missed messages.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from headway.clock import Clock
from headway.keys.invalidate import ALL, Callback
from headway.stores.redis import RedisError, Subscription, commands

log = logging.getLogger("headway.keys")


class RedisInvalidation:
    """Pub/sub over a `headway.stores.redis.RedisClient` (or a redis-py asyncio client): the
    subscription has a connection of its own. Publishing failures are logged and swallowed: the
    cache TTL bounds how long a replica can miss a revocation."""

    def __init__(
        self,
        client: Any,
        channel: str,
        clock: Clock,
        *,
        owns_client: bool = False,
        reconnect_s: float = 1.0,
        start_timeout: float = 5.0,
    ) -> None:
        self._client = commands(client)
        self._channel = channel
        self._clock = clock
        self._owns = owns_client
        self._reconnect_s = reconnect_s
        self._start_timeout = start_timeout
        self._callbacks: list[Callback] = []
        self._task: asyncio.Task[None] | None = None
        self._ready = asyncio.Event()

    async def publish(self, key_hash: str) -> None:
        try:
            await self._client.execute_command("PUBLISH", self._channel, key_hash)
        except RedisError as exc:
            log.warning("could not publish a key invalidation: %s", exc)

    def subscribe(self, callback: Callback) -> None:
        self._callbacks.append(callback)

    def _deliver(self, key_hash: str) -> None:
        for callback in self._callbacks:
            callback(key_hash)

    async def start(self) -> None:
        if self._task is None:
            self._task = asyncio.get_running_loop().create_task(self._listen())
        # wait until subscribed, so an invalidation published right after start is not missed;
        # a Redis that does not answer must not hold up serving (the TTL still bounds staleness)
        ready = asyncio.ensure_future(self._ready.wait())
        done, _ = await asyncio.wait({ready}, timeout=self._start_timeout)
        if not done:
            ready.cancel()
            log.warning("key invalidation channel not subscribed yet; carrying on")

    async def _listen(self) -> None:
        lost = False
        while True:
            sub: Subscription = self._client.subscribe(self._channel)
            try:
                await sub.start()
                if lost:
                    self._deliver(ALL)  # messages sent while we were away are gone
                    lost = False
                self._ready.set()
                async for data in sub.messages():
                    self._deliver(data.decode())
            except RedisError as exc:
                log.warning("key invalidation channel lost (%s); reconnecting", exc)
                lost = True
                self._ready.set()  # never block start() on an unreachable Redis
                await self._clock.sleep(self._reconnect_s)
            finally:
                await sub.aclose()

    async def aclose(self) -> None:
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            try:
                await task
            except asyncio.CancelledError:
                pass
        if self._owns:
            await self._client.aclose()
