"""Breaker states shared by every replica through Redis.

Each state is a hash `{v: version, s: state JSON}` under a Cluster-safe key. An update computes the
new state with the pure state machine and writes it with one compare-and-set script
(`lua/breaker_cas_v1.lua`); when another replica wrote first the script returns the current state
and the update is recomputed from it. The last state seen is kept locally: a read that would not
change anything (a closed breaker admitting a call) is answered from it while it is younger than
`max_staleness_s`, so the common admission costs no round trip. Within one process, updates of
one breaker are serialised by a lock, so compare-and-set only ever races other replicas.
"""

from __future__ import annotations

import asyncio
from importlib import resources
from typing import Any, TypeVar

import orjson

from headway.clock import Clock
from headway.errors import Unavailable
from headway.routing.breaker import CLOSED_STATE, BreakerState
from headway.routing.breakers import Update

T = TypeVar("T")

#: compare-and-set rounds before giving up on a hot key (each round is one script call)
MAX_ROUNDS = 32


def _script_text() -> str:
    return (
        resources.files("headway.routing")
        .joinpath("lua/breaker_cas_v1.lua")
        .read_text(encoding="utf-8")
    )


def _decode(raw: Any) -> str:
    return raw.decode() if isinstance(raw, bytes) else str(raw)


def _parse(version: Any, blob: Any) -> tuple[str, BreakerState]:
    text = _decode(blob) if blob else ""
    if not text:
        return "0", CLOSED_STATE
    return _decode(version), BreakerState.from_json(orjson.loads(text))


class RedisBreakerStore:
    def __init__(
        self,
        client: Any,
        clock: Clock,
        *,
        prefix: str = "headway:breaker:",
        max_staleness_s: float = 0.25,
    ) -> None:
        from redis.exceptions import RedisError

        self._client = client
        self._clock = clock
        self._prefix = prefix
        self._staleness = max_staleness_s
        self._script = client.register_script(_script_text())
        self._errors: tuple[type[BaseException], ...] = (RedisError, OSError)
        #: name -> (version, state, monotonic time it was read)
        self._seen: dict[str, tuple[str, BreakerState, float]] = {}
        self._locks: dict[str, asyncio.Lock] = {}

    def _key(self, name: str) -> str:
        return f"{self._prefix}{{{name}}}"  # hash tag: one deployment's keys share a slot

    async def _read(self, name: str) -> tuple[str, BreakerState]:
        try:
            version, blob = await self._client.hmget(self._key(name), ["v", "s"])
        except self._errors as exc:
            raise Unavailable(f"breaker store (redis) failed: {exc}") from exc
        out = _parse(version, blob)
        self._seen[name] = (*out, self._clock.monotonic())
        return out

    async def load(self, name: str) -> BreakerState:
        return (await self._read(name))[1]

    async def update(self, name: str, fn: Update[T], ttl_s: float) -> T:
        lock = self._locks.get(name)
        if lock is None:
            lock = self._locks[name] = asyncio.Lock()
        async with lock:
            return await self._update(name, fn, ttl_s)

    async def _update(self, name: str, fn: Update[T], ttl_s: float) -> T:
        seen = self._seen.get(name)
        if seen is not None and self._clock.monotonic() - seen[2] < self._staleness:
            version, state = seen[0], seen[1]
        else:
            version, state = await self._read(name)
        ttl_ms = str(max(1000, int(ttl_s * 1000)))
        for _ in range(MAX_ROUNDS):
            new, out = fn(state)
            if new == state:
                return out
            next_version = str(int(version) + 1)
            blob = orjson.dumps(new.to_json())
            try:
                ok, cur_version, cur_blob = await self._script(
                    keys=[self._key(name)], args=[version, next_version, blob, ttl_ms]
                )
            except self._errors as exc:
                raise Unavailable(f"breaker store (redis) failed: {exc}") from exc
            if int(ok) == 1:
                self._seen[name] = (next_version, new, self._clock.monotonic())
                return out
            version, state = _parse(cur_version, cur_blob)
            self._seen[name] = (version, state, self._clock.monotonic())
        raise Unavailable(f"breaker state for {name} is too contended to update")

    async def aclose(self) -> None:
        return None  # the client is shared (services.extras["redis"]) and closed by Services
