"""`RedisLimitStore`: the same contract as `MemoryLimitStore`, shared by every replica.

One reservation is one round trip: a single EVALSHA of `lua/limits_v1.lua` that reads the
server's TIME, checks every item of every tier and charges them all or none. Scripts are package
data, read once; when the server does not know a script (restart, SCRIPT FLUSH) the NOSCRIPT
error is answered with one EVAL, which also caches the script for the next EVALSHA
(`headway.stores.redis.Script`).

Every key starts with the hash tag `{prefix}`, so in Redis Cluster all limit keys of all tiers
live on one slot and one script can touch them (the price: limits live on one shard).
"""

from __future__ import annotations

from collections.abc import Sequence
from functools import cache
from importlib import resources
from typing import Any

from headway.clock import Clock
from headway.limits.store import new_reservation_id
from headway.limits.values import Item, Outcome, Rejection, Reservation, StoreUnavailable
from headway.stores.redis import RedisClient, RedisUnavailable, Script, commands
from headway.stores.redis import connect as _connect

_KIND = {"bucket": "b", "window": "w", "concurrency": "c"}


@cache
def script() -> Script:
    """The limits script, read on first use (importing this module does no I/O)."""
    text = resources.files("headway.limits").joinpath("lua", "limits_v1.lua").read_text("utf-8")
    return Script(text)


def connect(url: str, *, max_connections: int = 64, timeout_s: float = 5.0) -> RedisClient:
    """The shared client (headway.stores.redis): one pipelined connection, so concurrent calls
    never wait for a free connection and "too many connections" never reads as "Redis is down".
    `max_connections` is accepted for compatibility and unused."""
    return _connect(url, timeout_s=timeout_s)


def _num(x: Any) -> float:
    return float(x)  # float() reads bytes, str and int alike


def _fmt(x: float) -> str:
    return repr(float(x))


class RedisLimitStore:
    def __init__(self, client: Any, *, prefix: str = "headway", clock: Clock | None = None) -> None:
        """`client` is a `RedisClient` (or a redis-py asyncio client). `clock`, for tests only,
        replaces the server's TIME by the clock's time (passed as the script's time override)."""
        self._client = commands(client)
        self._prefix = "{" + prefix + "}:l:"
        self._clock = clock

    def _time_arg(self, now: float | None) -> str:
        if now is not None:
            return _fmt(now)
        if self._clock is not None:
            return _fmt(self._clock.time())
        return ""

    async def _run(self, keys: list[str], args: list[str]) -> list[Any]:
        try:
            result = await script().run(self._client, keys, args)
        except RedisUnavailable as exc:
            raise StoreUnavailable(str(exc)) from exc
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
