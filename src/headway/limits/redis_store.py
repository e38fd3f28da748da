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
from collections.abc import Awaitable, Iterable, Sequence
from functools import cache
from importlib import resources
from typing import Any, NamedTuple

from headway.clock import Clock
from headway.limits.values import Item, Outcome, Rejection, Reservation, StoreUnavailable
from headway.stores.redis import NoScript, RedisClient, RedisUnavailable, Script, commands
from headway.stores.redis import connect as _connect
from headway.stores.resp import encode_tail

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


#: counters whose encoded parts are kept; past it the cache starts over
_MAX_KNOWN = 4096


class _Known(NamedTuple):
    """What a counter sends every call, made once."""

    kind: str  # the kind, limit and period it was made for
    limit: int
    period: float
    key: str  # its key in Redis
    key_bulk: bytes  # that key as a RESP bulk string
    text: str  # "kind limit period", the fixed part of its numbers


class RedisLimitStore:
    def __init__(self, client: Any, *, prefix: str = "headway", clock: Clock | None = None) -> None:
        """`client` is a `RedisClient` (or a redis-py asyncio client). `clock`, for tests only,
        replaces the server's TIME by the clock's time (passed as the script's time override)."""
        self._client = commands(client)
        self._prefix = "{" + prefix + "}:l:"
        self._clock = clock
        #: item key -> what its counter sends (`_Known`)
        self._known: dict[str, _Known] = {}
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

    def _learn(self, item: Item) -> _Known:
        """What `item`'s counter sends, made once per counter (the callers look in `_known`
        themselves first, and check it was made for the item's kind, limit and period)."""
        if len(self._known) >= _MAX_KNOWN:
            self._known.clear()
        key = self._prefix + item.key
        data = key.encode()
        head = f"{_KIND[item.kind]} {item.limit} {_fmt(item.period)}"
        known = _Known(
            item.kind,
            item.limit,
            item.period,
            key,
            b"$%d\r\n%b\r\n" % (len(data), data),
            head,
        )
        self._known[item.key] = known
        return known

    def _counters(self, items: Iterable[Item]) -> list[_Known]:
        known, learn = self._known, self._learn
        out: list[_Known] = []
        for i in items:
            k = known.get(i.key)
            if k is None or k.limit != i.limit or k.period != i.period or k.kind != i.kind:
                k = learn(i)
            out.append(k)
        return out

    def _send(self, counters: list[_Known], args: tuple[str, str, str, str]) -> Awaitable[Any]:
        """The script's EVALSHA, its reply to await. To headway's own client it goes as bytes
        made mostly of parts encoded once (the head per shape, each key per counter)."""
        client = self._client
        if type(client) is RedisClient:
            head = script().head(len(counters), len(args))
            keys = b"".join([k.key_bulk for k in counters])
            return client.send(head + keys + encode_tail(args))
        return script().evalsha(client, [k.key for k in counters], args)

    async def _run(self, counters: list[_Known], args: tuple[str, str, str, str]) -> Any:
        """The script's reply split into its values (bytes, or str from a client that decodes).
        NOSCRIPT is answered with the script itself."""
        try:
            try:
                reply = await self._send(counters, args)
            except NoScript:
                reply = await script().eval(self._client, [k.key for k in counters], args)
        except RedisUnavailable as exc:
            raise StoreUnavailable(str(exc)) from exc
        return reply.split()

    async def reserve(
        self,
        items: Sequence[Item],
        alternatives: Sequence[Sequence[Item]] = (),
        *,
        now: float | None = None,
    ) -> Outcome:
        flat = [*items, *(i for group in alternatives for i in group)] if alternatives else items
        rid = f"{self._id_tag}{next(self._ids):x}"
        counters = self._counters(flat)
        packed = [f"{len(items)} {len(alternatives)}", *(str(len(g)) for g in alternatives)]
        packed += [f"{k.text} {i.amount}" for k, i in zip(counters, flat, strict=True)]
        args = ("reserve", self._time_arg(now), rid, " ".join(packed))
        result = await self._run(counters, args)
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
        counters, packed = self._settlement(reservation, actual, extra)
        args = ("settle", self._time_arg(now), reservation.id, packed)
        result = await self._run(counters, args)
        return tuple(map(float, result[1:]))

    def settle_soon(
        self, reservation: Reservation, actual: Sequence[int], extra: Sequence[Item] = ()
    ) -> Awaitable[Any]:
        """`settle`, written to the connection now (a cancellation of its caller can no longer
        lose it), without a coroutine: the script's raw reply, to await. Raises as the client
        does (`NoScript`: run `settle` instead, which answers it; `RedisUnavailable`)."""
        if len(actual) != len(reservation.items):
            raise ValueError("settle needs one actual amount per reserved item")
        counters, packed = self._settlement(reservation, actual, extra)
        return self._send(counters, ("settle", self._time_arg(None), reservation.id, packed))

    def _settlement(
        self, reservation: Reservation, actual: Sequence[int], extra: Sequence[Item]
    ) -> tuple[list[_Known], str]:
        """A settlement's counters and packed numbers."""
        items = reservation.items
        counters = self._counters(items)
        anchor = _fmt(reservation.at)
        packed = [
            f"{k.text} {amount - i.amount} {anchor}"
            for k, i, amount in zip(counters, items, actual, strict=True)
        ]
        if extra:
            more = self._counters(extra)
            # "-": an item that was never reserved is anchored at the settlement
            packed += [f"{k.text} {i.amount} -" for k, i in zip(more, extra, strict=True)]
            counters += more
        return counters, " ".join(packed)

    async def release(self, reservation: Reservation, *, now: float | None = None) -> None:
        await self.settle(reservation, [0] * len(reservation.items), now=now)
