"""Breaker states shared by every replica through Redis.

Each state is a hash `{v: version, s: state JSON}` under a Cluster-safe key. An update computes the
new state with the pure state machine and writes it with one compare-and-set script
(`lua/breaker_cas_v1.lua`); when another replica wrote first the script returns the current state
and the update is recomputed from it. The last state seen is kept locally: a read that would not
change anything (a closed breaker admitting a call) is answered from it while it is younger than
`max_staleness_s`, so the common admission costs no round trip. Within one process, updates of
one breaker are serialised by a lock, so compare-and-set only ever races other replicas.

Writes happen on change only. The one change every successful call makes to a healthy breaker,
one more success in its error-rate window, is kept locally and written together with the next
change that must be shared (a failure, a transition) or, at the latest, with the first update
after `max_staleness_s`: a busy deployment costs a few writes per second per replica instead of
one per call. What waits is only ever successes, which can delay opening by error rate (more
calls, same failures) by at most that long and never hide a failure. `max_staleness_s=0` writes
every change at once.
"""

from __future__ import annotations

import asyncio
from importlib import resources
from typing import Any, TypeVar

import orjson

from headway.clock import Clock
from headway.errors import Unavailable
from headway.routing.breaker import CLOSED, CLOSED_STATE, BreakerState
from headway.routing.breakers import Update
from headway.stores.redis import RedisError, Script, commands

T = TypeVar("T")

#: compare-and-set rounds before giving up on a hot key (each round is one script call)
MAX_ROUNDS = 32

#: bucket index -> successes counted here and not yet written
Pending = dict[int, int]


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


def successes_only(before: BreakerState, after: BreakerState) -> Pending | None:
    """The successes `after` adds to the window of `before`, when that is all that changed
    between two closed states with no failure streak; None for any other change."""
    if not (before.status == after.status == CLOSED and before.consecutive == after.consecutive):
        return None
    if before.consecutive or after.opened_at != before.opened_at:
        return None
    b, a = before.buckets, after.buckets
    # the common shapes first: the newest bucket grew, or a new newest bucket was started
    if a and len(a) == len(b) and a[:-1] == b[:-1] and a[-1][0] == b[-1][0]:
        n, f = a[-1][1] - b[-1][1], a[-1][2] - b[-1][2]
        return {a[-1][0]: n} if n > 0 and f == 0 else None
    if a and len(a) == len(b) + 1 and a[:-1] == b and a[-1][2] == 0:
        return {a[-1][0]: a[-1][1]}
    old = {idx: (n, f) for idx, n, f in b}
    added: Pending = {}
    for idx, n, f in a:
        was_n, was_f = old.get(idx, (0, 0))
        if f != was_f or n < was_n:
            return None
        if n > was_n:
            added[idx] = n - was_n
    return added or None


def merged(state: BreakerState, pending: Pending | None) -> BreakerState:
    """`state` with the successes counted locally added to its window. An open or half-open
    breaker has nothing to count: they are dropped."""
    if not pending or state.status != CLOSED:
        return state
    buckets = {idx: [n, f] for idx, n, f in state.buckets}
    for idx, n in pending.items():
        buckets.setdefault(idx, [0, 0])[0] += n
    ordered = tuple((idx, nf[0], nf[1]) for idx, nf in sorted(buckets.items()))
    return BreakerState(consecutive=state.consecutive, buckets=ordered)


class _Unwritten:
    """Successes counted here and not yet written, and the local view they make."""

    __slots__ = ("base", "counts", "since", "view")

    def __init__(
        self, counts: Pending, since: float, base: BreakerState, view: BreakerState
    ) -> None:
        self.counts = counts
        self.since = since  # monotonic time the first of them was counted
        self.base = base  # the shared state `view` was computed on
        self.view = view


class RedisBreakerStore:
    def __init__(
        self,
        client: Any,
        clock: Clock,
        *,
        prefix: str = "headway:breaker:",
        max_staleness_s: float = 0.25,
    ) -> None:
        """`client` is a `headway.stores.redis.RedisClient` (or a redis-py asyncio client)."""
        self._client = commands(client)
        self._clock = clock
        self._prefix = prefix
        self._staleness = max_staleness_s
        self._script = Script(_script_text())
        #: name -> (version, state, monotonic time it was read)
        self._seen: dict[str, tuple[str, BreakerState, float]] = {}
        self._pending: dict[str, _Unwritten] = {}
        self._locks: dict[str, asyncio.Lock] = {}

    def _key(self, name: str) -> str:
        return f"{self._prefix}{{{name}}}"  # hash tag: one deployment's keys share a slot

    async def _read(self, name: str) -> tuple[str, BreakerState]:
        try:
            version, blob = await self._client.execute_command("HMGET", self._key(name), "v", "s")
        except RedisError as exc:
            raise Unavailable(f"breaker store (redis) failed: {exc}") from exc
        out = _parse(version, blob)
        self._seen[name] = (*out, self._clock.monotonic())
        return out

    def _local(self, name: str, state: BreakerState) -> BreakerState:
        """The shared state as this process sees it: with its own unwritten successes."""
        pending = self._pending.get(name)
        if pending is None:
            return state
        if state.status != CLOSED:  # opened elsewhere: an open breaker counts nothing
            del self._pending[name]
            return state
        if pending.base is not state:  # merged once per shared state, not once per call
            pending.base, pending.view = state, merged(state, pending.counts)
        return pending.view

    async def load(self, name: str) -> BreakerState:
        return self._local(name, (await self._read(name))[1])

    async def update(self, name: str, fn: Update[T], ttl_s: float) -> T:
        done = self.try_update(name, fn)
        if done is not None:
            return done[0]
        lock = self._locks.get(name)
        if lock is None:
            lock = self._locks[name] = asyncio.Lock()
        async with lock:
            return await self._update(name, fn, ttl_s)

    def try_update(self, name: str, fn: Update[T]) -> tuple[T] | None:
        """`update` done here and now when it needs no I/O: `(its result,)`, else None (await
        `update` then). Nobody is between a read and a write of this breaker, and its state is
        fresh: an update that writes nothing (the common admission and success) completes
        without the lock's coroutines, since code that does not await cannot be interleaved."""
        lock = self._locks.get(name)
        if lock is not None and lock.locked():
            return None
        now = self._clock.monotonic()
        seen = self._seen.get(name)
        if seen is None or now - seen[2] >= self._staleness:
            return None
        new, out = self._step(name, seen[1], fn, now)
        return (out,) if new is None else None

    def peek(self, name: str) -> BreakerState | None:
        """This process's view of the breaker (its unwritten successes included) when it may be
        acted on without a read, as `try_update` would; else None."""
        lock = self._locks.get(name)
        if lock is not None and lock.locked():
            return None
        seen = self._seen.get(name)
        if seen is None or self._clock.monotonic() - seen[2] >= self._staleness:
            return None
        return self._local(name, seen[1])

    def _step(
        self, name: str, state: BreakerState, fn: Update[T], now: float
    ) -> tuple[BreakerState | None, T]:
        """`fn` applied to this process's view of `state`: (None, result) when nothing must be
        written (no change, or successes kept locally), else (the state to write, result)."""
        local = self._local(name, state)
        new, out = fn(local)
        if new == local or self._defer(name, state, new, successes_only(local, new), now):
            return None, out
        return new, out

    def _defer(
        self, name: str, state: BreakerState, new: BreakerState, added: Pending | None, now: float
    ) -> bool:
        """Count `added` locally instead of writing, unless what waits is old enough to go.
        `new` is the local view afterwards, on top of the shared `state`."""
        if added is None or self._staleness <= 0:
            return False
        pending = self._pending.get(name)
        if pending is None:
            self._pending[name] = _Unwritten(added, now, state, new)
            return True
        if now - pending.since >= self._staleness:
            return False
        counts = pending.counts
        for idx, n in added.items():
            counts[idx] = counts.get(idx, 0) + n
        pending.base, pending.view = state, new
        return True

    async def _update(self, name: str, fn: Update[T], ttl_s: float) -> T:
        now = self._clock.monotonic()
        seen = self._seen.get(name)
        if seen is not None and now - seen[2] < self._staleness:
            version, state = seen[0], seen[1]
        else:
            version, state = await self._read(name)
        ttl_ms = str(max(1000, int(ttl_s * 1000)))
        for _ in range(MAX_ROUNDS):
            new, out = self._step(name, state, fn, now)
            if new is None:
                return out
            next_version = str(int(version) + 1)
            blob = orjson.dumps(new.to_json())
            try:
                ok, cur_version, cur_blob = await self._script.run(
                    self._client, [self._key(name)], [version, next_version, blob, ttl_ms]
                )
            except RedisError as exc:
                raise Unavailable(f"breaker store (redis) failed: {exc}") from exc
            if int(ok) == 1:
                self._seen[name] = (next_version, new, self._clock.monotonic())
                self._pending.pop(name, None)  # written as part of `new`
                return out
            version, state = _parse(cur_version, cur_blob)
            self._seen[name] = (version, state, self._clock.monotonic())
        raise Unavailable(f"breaker state for {name} is too contended to update")

    async def aclose(self) -> None:
        return None  # the client is shared (services.extras["redis"]) and closed by Services
