"""`RedisLimitStore`: the same contract as `MemoryLimitStore`, shared by every replica.

One reservation is one round trip: a single EVALSHA of `lua/limits_v1.lua` that reads the
server's TIME, checks every item of every tier and charges them all or none. Scripts are package
data, read once; when the server does not know a script (restart, SCRIPT FLUSH) the NOSCRIPT
error is answered with one EVAL, which also caches the script for the next EVALSHA.

Every key starts with the hash tag `{prefix}`, so in Redis Cluster all limit keys of all tiers
live on one slot and one script can touch them (the price: limits live on one shard).
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from functools import cache
from importlib import resources
from typing import Any

from redis import exceptions as redis_errors

from headway.clock import Clock
from headway.limits.store import new_reservation_id
from headway.limits.values import Item, Outcome, Rejection, Reservation, StoreUnavailable

_KIND = {"bucket": "b", "window": "w", "concurrency": "c"}
_DOWN = (redis_errors.ConnectionError, redis_errors.TimeoutError, OSError)


class Script:
    """A Lua file shipped in headway.limits/lua, identified by its SHA-1."""

    __slots__ = ("name", "sha", "text")

    def __init__(self, name: str) -> None:
        self.name = name
        self.text = resources.files("headway.limits").joinpath("lua", name).read_text("utf-8")
        self.sha = hashlib.sha1(self.text.encode()).hexdigest()


@cache
def script() -> Script:
    """The limits script, read on first use (importing this module does no I/O)."""
    return Script("limits_v1.lua")


def connect(url: str, *, max_connections: int = 64, timeout_s: float = 5.0) -> Any:
    """A `redis.asyncio` client whose pool makes callers wait for a free connection (up to
    `timeout_s`) instead of failing when every connection is busy: under a burst of calls,
    "too many connections" must not read as "Redis is down"."""
    import redis.asyncio as aioredis

    pool = aioredis.BlockingConnectionPool.from_url(
        url,
        max_connections=max_connections,
        timeout=timeout_s,
        socket_connect_timeout=2.0,
        socket_timeout=timeout_s,
    )
    return aioredis.Redis.from_pool(pool)  # the client owns the pool: aclose() closes it


def _num(x: Any) -> float:
    return float(x.decode() if isinstance(x, bytes) else x)


def _fmt(x: float) -> str:
    return repr(float(x))


class RedisLimitStore:
    def __init__(self, client: Any, *, prefix: str = "headway", clock: Clock | None = None) -> None:
        """`client` is a `redis.asyncio.Redis`. `clock`, for tests only, replaces the server's
        TIME by the clock's time (passed as the script's time override)."""
        self._client = client
        self._prefix = "{" + prefix + "}:l:"
        self._clock = clock

    def _time_arg(self, now: float | None) -> str:
        if now is not None:
            return _fmt(now)
        if self._clock is not None:
            return _fmt(self._clock.time())
        return ""

    async def _run(self, keys: list[str], args: list[str]) -> list[Any]:
        lua = script()
        try:
            try:
                result = await self._client.evalsha(lua.sha, len(keys), *keys, *args)
            except redis_errors.NoScriptError:
                result = await self._client.eval(lua.text, len(keys), *keys, *args)
        except _DOWN as exc:
            raise StoreUnavailable(f"redis is unreachable: {exc}") from exc
        return list(result)

    async def reserve(
        self,
        items: Sequence[Item],
        alternatives: Sequence[Sequence[Item]] = (),
        *,
        now: float | None = None,
    ) -> Outcome:
        flat = [*items, *(i for group in alternatives for i in group)]
        rid = new_reservation_id()
        keys = [self._prefix + i.key for i in flat]
        args = ["reserve", self._time_arg(now), rid, str(len(items)), str(len(alternatives))]
        args.extend(str(len(g)) for g in alternatives)
        for i in flat:
            args.extend((_KIND[i.kind], str(i.limit), _fmt(i.period), str(i.amount)))
        result = await self._run(keys, args)
        at = _num(result[1])
        if int(result[0]) == 0:
            wait = _num(result[3])
            return Rejection(flat[int(result[2]) - 1], None if wait < 0 else wait, at)
        choice = int(result[2]) - 1
        applied = (*items, *(alternatives[choice] if choice >= 0 else ()))
        used = tuple(_num(x) for x in result[3:])
        return Reservation(rid, applied, used, at, choice)

    async def settle(
        self,
        reservation: Reservation,
        actual: Sequence[int],
        *,
        extra: Sequence[Item] = (),
        now: float | None = None,
    ) -> tuple[float, ...]:
        if len(actual) != len(reservation.items):
            raise ValueError("settle needs one actual amount per reserved item")
        keys: list[str] = []
        args = ["settle", self._time_arg(now), reservation.id]
        anchor = _fmt(reservation.at)
        for item, amount in zip(reservation.items, actual, strict=True):
            keys.append(self._prefix + item.key)
            args.extend(self._settle_args(item, amount - item.amount, anchor))
        for item in extra:
            keys.append(self._prefix + item.key)
            args.extend(self._settle_args(item, item.amount, ""))
        if not keys:
            return ()
        result = await self._run(keys, args)
        return tuple(_num(x) for x in result[1:])

    @staticmethod
    def _settle_args(item: Item, delta: int, anchor: str) -> tuple[str, str, str, str, str]:
        return (_KIND[item.kind], str(item.limit), _fmt(item.period), str(delta), anchor)

    async def release(self, reservation: Reservation, *, now: float | None = None) -> None:
        await self.settle(reservation, [0] * len(reservation.items), now=now)
