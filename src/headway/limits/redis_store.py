"""`RedisLimitStore`: the same contract as `MemoryLimitStore`, shared by every replica.

One reservation is one round trip: a single EVALSHA of `lua/limits_v2.lua` that reads the
server's TIME, checks every item of every tier and charges them all or none. A call's numbers
travel packed in one argument and come back as one string: RESP-encoding ~40 arguments and
parsing an array reply per call cost the gateway more CPU than the round trip itself. Scripts
are package data, read once; when the server does not know a script (restart, SCRIPT FLUSH) the
NOSCRIPT error is answered with one EVAL, which also caches the script for the next EVALSHA
(`headway.stores.redis.Script`).

Every key starts with the hash tag `{prefix}`, so in Redis Cluster all limit keys of all tiers
live on one slot and one script can touch them (the price: limits live on one shard).
"""

from __future__ import annotations

import itertools
import os
from collections.abc import Sequence
from functools import cache
from importlib import resources
from typing import Any

from headway.clock import Clock
from headway.limits.values import Item, Outcome, Rejection, Reservation, StoreUnavailable
from headway.stores.redis import RedisClient, RedisUnavailable, Script, commands
from headway.stores.redis import connect as _connect

_KIND = {"bucket": "b", "window": "w", "concurrency": "c"}


@cache
def script() -> Script:
    """The limits script, read on first use (importing this module does no I/O)."""
    text = resources.files("headway.limits").joinpath("lua", "limits_v2.lua").read_text("utf-8")
    return Script(text)


def connect(url: str, *, max_connections: int = 64, timeout_s: float = 5.0) -> RedisClient:
    """The shared client (headway.stores.redis): one pipelined connection, so concurrent calls
    never wait for a free connection and "too many connections" never reads as "Redis is down".
    `max_connections` is accepted for compatibility and unused."""
    return _connect(url, timeout_s=timeout_s)


def _fmt(x: float) -> str:
    return repr(float(x))


#: distinct (kind, limit, period) whose text is kept; past it the cache starts over
_MAX_HEADS = 4096


class RedisLimitStore:
    def __init__(self, client: Any, *, prefix: str = "headway", clock: Clock | None = None) -> None:
        """`client` is a `RedisClient` (or a redis-py asyncio client). `clock`, for tests only,
        replaces the server's TIME by the clock's time (passed as the script's time override)."""
        self._client = commands(client)
        self._prefix = "{" + prefix + "}:l:"
        self._clock = clock
        #: (kind, limit, period) -> "kind limit period", the fixed part of an item's arguments
        self._heads: dict[tuple[str, int, float], str] = {}
        # Reservation ids name concurrency leases, which every replica shares: unique per store
        # by a random tag, then a counter (no system call per reservation, as os.urandom makes)
        self._id_tag = os.urandom(6).hex()
        self._ids = itertools.count()

    def _time_arg(self, now: float | None) -> str:
        if now is not None:
            return _fmt(now)
        if self._clock is not None:
            return _fmt(self._clock.time())
        return ""

    def _head(self, item: Item) -> str:
        """The text of an item's kind, limit and period, formatted once per distinct limit (the
        callers look in `_heads` themselves first)."""
        if len(self._heads) >= _MAX_HEADS:
            self._heads.clear()
        head = f"{_KIND[item.kind]} {item.limit} {_fmt(item.period)}"
        self._heads[(item.kind, item.limit, item.period)] = head
        return head

    async def _run(self, op: str, now: float | None, rid: str, keys: list[str], packed: str) -> Any:
        """The script's reply split into its values (bytes, or str from a client that decodes)."""
        args = (op, self._time_arg(now), rid, packed)
        try:
            result = await script().run(self._client, keys, args)
        except RedisUnavailable as exc:
            raise StoreUnavailable(str(exc)) from exc
        return result.split()

    async def reserve(
        self,
        items: Sequence[Item],
        alternatives: Sequence[Sequence[Item]] = (),
        *,
        now: float | None = None,
    ) -> Outcome:
        flat = [*items, *(i for group in alternatives for i in group)]
        rid = f"{self._id_tag}{next(self._ids):x}"
        prefix, heads, head = self._prefix, self._heads, self._head
        keys = [prefix + i.key for i in flat]
        packed = [f"{len(items)} {len(alternatives)}", *(str(len(g)) for g in alternatives)]
        packed += [f"{heads.get((i.kind, i.limit, i.period)) or head(i)} {i.amount}" for i in flat]
        result = await self._run("reserve", now, rid, keys, " ".join(packed))
        at = float(result[1])  # float() reads bytes and str alike
        if int(result[0]) == 0:
            wait = float(result[3])
            return Rejection(flat[int(result[2]) - 1], None if wait < 0 else wait, at)
        choice = int(result[2]) - 1
        applied = (*items, *(alternatives[choice] if choice >= 0 else ()))
        used = tuple(map(float, result[3:]))
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
        if not reservation.items and not extra:
            return ()
        prefix, heads, head = self._prefix, self._heads, self._head
        keys = [prefix + i.key for i in reservation.items]
        keys += [prefix + i.key for i in extra]
        anchor = _fmt(reservation.at)
        packed = [
            f"{heads.get((i.kind, i.limit, i.period)) or head(i)} {amount - i.amount} {anchor}"
            for i, amount in zip(reservation.items, actual, strict=True)
        ]
        # "-": an item that was never reserved is anchored at the settlement
        packed += [
            f"{heads.get((i.kind, i.limit, i.period)) or head(i)} {i.amount} -" for i in extra
        ]
        result = await self._run("settle", now, reservation.id, keys, " ".join(packed))
        return tuple(map(float, result[1:]))

    async def release(self, reservation: Reservation, *, now: float | None = None) -> None:
        await self.settle(reservation, [0] * len(reservation.items), now=now)
