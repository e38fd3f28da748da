"""The `LimitStore` protocol and its in-memory implementation.

A store checks and charges a set of items all-or-nothing. `alternatives` are groups of which the
first that fits whole is charged too (one per deployment of a chain): the caller learns the chosen
group from `Reservation.choice`. `RedisLimitStore` (redis_store.py) does the same in one Lua call;
the contract suite in tests/limits runs over both.

The memory store is atomic by construction: it never awaits between reading and writing.
"""

from __future__ import annotations

import itertools
import os
from collections.abc import Sequence
from typing import Protocol

from headway.clock import SYSTEM_CLOCK, Clock
from headway.limits import window
from headway.limits.values import Item, Outcome, Rejection, Reservation

_SWEEP_EVERY = 4096
#: the expiry of a window that never ends
_NEVER = float("inf")


def new_reservation_id() -> str:
    return os.urandom(8).hex()


class LimitStore(Protocol):
    async def reserve(
        self,
        items: Sequence[Item],
        alternatives: Sequence[Sequence[Item]] = (),
        *,
        now: float | None = None,
    ) -> Outcome:
        """Charge every item of `items` and of the first fitting group of `alternatives`, or
        nothing. `now` overrides the store's clock (tests only)."""
        ...

    async def settle(
        self,
        reservation: Reservation,
        actual: Sequence[int],
        *,
        extra: Sequence[Item] = (),
        now: float | None = None,
    ) -> tuple[float, ...]:
        """Correct each reserved item to `actual[i]` and release concurrency slots; charge each
        `extra` item its `amount` unconditionally (usage that landed elsewhere, e.g. on a
        fallback deployment). Returns the levels after settlement, items then extra."""
        ...

    async def release(self, reservation: Reservation, *, now: float | None = None) -> None:
        """Give everything back: the call never went upstream."""
        ...


def _drained(
    state: tuple[float, float, float] | None, now: float, limit: int, period: float
) -> float:
    """A stored bucket's level at `now`: `window.drain` of its (used, ts); 0 when none is kept."""
    return 0.0 if state is None else window.drain(state[0], state[1], now, limit, period)


class MemoryLimitStore:
    """Per-process counters with the same semantics as the Redis store."""

    def __init__(self, clock: Clock = SYSTEM_CLOCK) -> None:
        self._clock = clock
        # key -> (used, ts, expiry): expiry is when the state may be forgotten (the Redis TTL)
        self._buckets: dict[str, tuple[float, float, float]] = {}
        self._windows: dict[str, tuple[float, float, float]] = {}  # key -> (index, used, expiry)
        self._leases: dict[str, dict[str, float]] = {}  # key -> {reservation id: expiry}
        self._ops = 0
        # ids need only be unique within this store (they name its leases): a counter, not
        # `new_reservation_id`'s system call per reservation
        self._ids = itertools.count()

    # ---- reading ----------------------------------------------------------------------------
    # A bucket's level is `_drained`; the formulas are window.drain, bucket_wait and bucket_ttl,
    # which the Lua script mirrors.

    def _level(self, item: Item, now: float) -> float:
        kind = item.kind
        if kind == "bucket":
            return _drained(self._buckets.get(item.key), now, item.limit, item.period)
        if kind == "window":
            idx, used, _ = self._windows.get(item.key, (-1.0, 0.0, now))
            return used if idx == window.window_index(now, item.period) else 0.0
        leases = self._leases.get(item.key)
        if not leases:
            return 0.0
        for rid in [r for r, exp in leases.items() if exp <= now]:
            del leases[rid]
        return float(len(leases))

    def _wait(self, item: Item, level: float, now: float) -> float | None:
        """Seconds until `item` fits (0.0: now), None if it never will."""
        amount, limit = item.amount, item.limit
        if amount > limit:
            return None  # never fits, whatever the kind
        if level + amount <= limit:
            return 0.0
        if item.kind == "bucket":
            return (level + item.amount - item.limit) * item.period / item.limit
        if item.kind == "window":
            return window.window_reset(now, item.period)
        return min(self._leases[item.key].values()) - now

    # ---- writing ----------------------------------------------------------------------------

    def _charge(self, item: Item, level: float, delta: float, rid: str, now: float) -> float:
        kind = item.kind
        if kind == "concurrency":
            self._leases.setdefault(item.key, {})[rid] = now + item.period
            return level + 1
        used = level + delta
        if not used > 0.0:
            used = 0.0
        if kind == "bucket":
            self._buckets[item.key] = (used, now, now + used * item.period / item.limit)
            return used
        idx, reset = window.window_span(now, item.period)
        self._windows[item.key] = (idx, used, now + reset if reset is not None else _NEVER)
        return used

    async def reserve(
        self,
        items: Sequence[Item],
        alternatives: Sequence[Sequence[Item]] = (),
        *,
        now: float | None = None,
    ) -> Outcome:
        return self.reserve_now(items, alternatives, now=now)

    def reserve_now(
        self,
        items: Sequence[Item],
        alternatives: Sequence[Sequence[Item]] = (),
        *,
        now: float | None = None,
    ) -> Outcome:
        """`reserve` without the coroutine (the limits stage's fast path)."""
        t = self._clock.time() if now is None else now
        self._ops += 1
        if not self._ops % _SWEEP_EVERY:
            self._sweep(t)
        buckets, windows = self._buckets, self._windows
        levels: list[float] = []
        worst, worst_item = 0.0, None
        for item in items:
            # `_level` of a bucket (most items) and of a window (budgets), without its dispatch
            kind = item.kind
            if kind == "bucket":
                level = _drained(buckets.get(item.key), t, item.limit, item.period)
            elif kind == "window":
                state = windows.get(item.key)
                if state is not None and state[0] == window.window_index(t, item.period):
                    level = state[1]
                else:
                    level = 0.0
            else:
                level = self._level(item, t)
            levels.append(level)
            amount, limit = item.amount, item.limit
            if amount > limit or level + amount > limit:  # else `_wait` would say 0.0
                wait = self._wait(item, level, t)
                if wait is None:
                    return Rejection(item, None, t)
                if wait > worst:
                    worst, worst_item = wait, item
        choice = -1
        if alternatives:
            choice, best = self._choose(alternatives, levels, t)
            if isinstance(best, Rejection):
                return best
            if best is not None and best[0] > worst:
                worst, worst_item = best
        if worst_item is not None:
            return Rejection(worst_item, worst, t)
        applied = (*items, *alternatives[choice]) if choice >= 0 else tuple(items)
        rid = str(next(self._ids))
        used_after: list[float] = []
        # by index: the same length by construction, and `zip(strict=True)` parses its keyword
        # on every call
        for i, item in enumerate(applied):
            level = levels[i]
            kind = item.kind
            if kind == "concurrency":
                used = self._charge(item, level, item.amount, rid, t)
            else:  # `_charge` of a bucket or a window, inlined
                used = level + item.amount
                if not used > 0.0:
                    used = 0.0
                if kind == "bucket":
                    buckets[item.key] = (used, t, t + used * item.period / item.limit)
                else:
                    idx, reset = window.window_span(t, item.period)
                    windows[item.key] = (idx, used, t + reset if reset is not None else _NEVER)
            used_after.append(used)
        return Reservation(rid, applied, tuple(used_after), t, choice)

    def _choose(
        self, alternatives: Sequence[Sequence[Item]], levels: list[float], t: float
    ) -> tuple[int, tuple[float, Item] | Rejection | None]:
        """The index of the first group that fits whole, its levels appended to `levels`, and
        None; else -1 and the soonest group's (wait, item), or a rejection when none ever fits."""
        best: tuple[float, Item] | None = None
        never: Item | None = None
        for j, group in enumerate(alternatives):
            group_wait, group_item, fits_ever = 0.0, None, True
            group_levels: list[float] = []
            for item in group:
                level = self._level(item, t)
                group_levels.append(level)
                wait = self._wait(item, level, t)
                if wait is None:
                    fits_ever, never = False, never or item
                    break
                if wait > group_wait:
                    group_wait, group_item = wait, item
            if not fits_ever:
                continue
            if group_item is None:
                levels += group_levels
                return j, None
            if best is None or group_wait < best[0]:
                best = (group_wait, group_item)
        if best is None:
            assert never is not None
            return -1, Rejection(never, None, t)
        return -1, best

    async def settle(
        self,
        reservation: Reservation,
        actual: Sequence[int],
        *,
        extra: Sequence[Item] = (),
        now: float | None = None,
    ) -> tuple[float, ...]:
        return self.settle_now(reservation, actual, extra=extra, now=now)

    def settle_now(
        self,
        reservation: Reservation,
        actual: Sequence[int],
        *,
        extra: Sequence[Item] = (),
        now: float | None = None,
    ) -> tuple[float, ...]:
        """`settle` without the coroutine: the limits stage calls it directly, which spares
        each call a task and a shield (nothing here awaits, so nothing can interrupt it)."""
        items = reservation.items
        if len(actual) != len(items):
            raise ValueError("settle needs one actual amount per reserved item")
        t = self._clock.time() if now is None else now
        buckets = self._buckets
        out: list[float] = []
        for i, item in enumerate(items):  # by index: the lengths are checked above
            delta = actual[i] - item.amount
            if item.kind != "bucket":
                out.append(self._correct(item, delta, reservation, t))
                continue
            # `_correct` of a bucket, inlined: its level, corrected and written when delta != 0
            # (else only read, as the Lua script does: a bucket drains the same either way)
            level = _drained(buckets.get(item.key), t, item.limit, item.period)
            if delta:
                level = level + delta
                if not level > 0.0:
                    level = 0.0
                buckets[item.key] = (level, t, t + level * item.period / item.limit)
            out.append(level)
        for item in extra:
            out.append(self._correct(item, item.amount, None, t))
        return tuple(out)

    def _correct(self, item: Item, delta: float, res: Reservation | None, now: float) -> float:
        kind = item.kind
        if kind == "concurrency":
            leases = self._leases.get(item.key, {})
            if res is not None:
                leases.pop(res.id, None)
            return self._level(item, now)
        if kind == "window":
            # `_level` and `_charge` of a window, its index and reset worked out once
            period = item.period
            idx, reset = window.window_span(now, period)
            state = self._windows.get(item.key)
            level = state[1] if state is not None and state[0] == idx else 0.0
            # only read when there is nothing to correct (as the Lua script does), or when the
            # window the amount was reserved in is over (nothing is left to correct then)
            if not delta or (res is not None and window.window_index(res.at, period) != idx):
                return level
            used = level + delta
            if not used > 0.0:
                used = 0.0
            self._windows[item.key] = (idx, used, now + reset if reset is not None else _NEVER)
            return used
        if not delta:
            # only read, as the Lua script does: a bucket drains the same whether or not its
            # drained level is written back
            return self._level(item, now)
        return self._charge(item, self._level(item, now), delta, "", now)

    async def release(self, reservation: Reservation, *, now: float | None = None) -> None:
        await self.settle(reservation, [0] * len(reservation.items), now=now)

    def _sweep(self, now: float) -> None:
        """Forget drained buckets and ended windows (every `_SWEEP_EVERY` reservations), so
        idle keys don't pile up."""
        self._buckets = {k: v for k, v in self._buckets.items() if v[2] > now}
        self._windows = {k: v for k, v in self._windows.items() if v[2] > now}
        self._leases = {k: v for k, v in self._leases.items() if v}
