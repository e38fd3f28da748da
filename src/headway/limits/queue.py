"""Waiting for capacity: a fair queue per blocking limit, driven by futures and the Clock.

A call whose reservation is rejected joins the line of the limit that blocked it. Only the head
of a line retries; it sleeps (on the Clock) for the time the store said the limit needs, or until
this process frees capacity on that limit (`kick`), whichever comes first. When the head is
served or gives up, the next in line becomes head at once. Lines are ordered by priority
(interactive before batch), then arrival. A new call that needs a limit someone of the same or
higher priority already waits on queues behind them instead of taking capacity first.

No polling with real sleeps: every wait is a future raced against `Clock.sleep`, so tests drive
it with `FakeClock.advance`. Across replicas each process keeps its own lines; the store stays
the only arbiter of capacity.
"""

from __future__ import annotations

import asyncio
import heapq
import itertools
from collections.abc import Awaitable, Callable, Iterable

from headway.clock import Clock
from headway.limits.values import Outcome, Rejection, Reservation

PRIORITY_RANK = {"interactive": 0, "batch": 1}


class _Waiter:
    __slots__ = ("kick", "rank", "seq", "turn")

    def __init__(self, rank: int, seq: int, loop: asyncio.AbstractEventLoop) -> None:
        self.rank = rank
        self.seq = seq
        self.turn: asyncio.Future[None] = loop.create_future()
        self.kick: asyncio.Future[None] = loop.create_future()

    def __lt__(self, other: _Waiter) -> bool:
        return (self.rank, self.seq) < (other.rank, other.seq)


def _wake(fut: asyncio.Future[None]) -> None:
    if not fut.done():
        fut.set_result(None)


class FairQueue:
    def __init__(self, clock: Clock, *, recheck_s: float = 0.25) -> None:
        self._clock = clock
        self._recheck = recheck_s
        self._lines: dict[str, list[_Waiter]] = {}
        self._seq = itertools.count()

    def waiting(self, key: str | None = None) -> int:
        if key is not None:
            return len(self._lines.get(key, ()))
        return sum(len(line) for line in self._lines.values())

    @property
    def idle(self) -> bool:
        """Nobody waits in any line."""
        return not self._lines

    def kick(self, keys: Iterable[str]) -> None:
        """Capacity on these limits was freed here: let each line's head try again now."""
        for key in keys:
            line = self._lines.get(key)
            if line:
                _wake(line[0].kick)

    async def admit(
        self,
        attempt: Callable[[], Awaitable[Outcome]],
        keys: Iterable[str],
        priority: str,
        until: float,
        *,
        first: Rejection | None = None,
    ) -> Outcome:
        """Reserve through `attempt`, waiting in line until `until` (Clock.monotonic scale).
        Returns the Reservation, or the last Rejection when waiting cannot help. `first` is the
        outcome of an attempt the caller already made, with nobody in line (`free`): it is
        waited on instead of trying again at once."""
        rank = PRIORITY_RANK.get(priority, 0)
        line_key = self._busy(keys, rank)
        last: Outcome | None = None
        if line_key is None:
            last = first if first is not None else await attempt()
            if isinstance(last, Reservation) or not self._worth_waiting(last, until):
                return last
            line_key = last.key
        waiter = _Waiter(rank, next(self._seq), asyncio.get_running_loop())
        self._join(line_key, waiter)
        # a rejection not yet waited on: the head sleeps on it before trying again
        pending = last if isinstance(last, Rejection) else None
        try:
            while True:
                if self._lines[line_key][0] is not waiter:
                    pending = None
                    if not await self._race(waiter.turn, until - self._clock.monotonic()):
                        return last if last is not None else await attempt()
                    continue
                if pending is None:
                    last = out = await attempt()
                    if isinstance(out, Reservation) or not self._worth_waiting(out, until):
                        return out
                    pending = out
                    if out.key != line_key:
                        self._leave(line_key, waiter)
                        line_key = out.key
                        self._join(line_key, waiter)
                        continue
                waiter.kick = asyncio.get_running_loop().create_future()
                await self._race(waiter.kick, self._pause(pending, until))
                pending = None
        finally:
            self._leave(line_key, waiter)

    def free(self, keys: Iterable[str], priority: str) -> bool:
        """Nobody of the same or higher priority waits on these limits: a call may try to
        reserve at once, as `admit` would."""
        return self._busy(keys, PRIORITY_RANK.get(priority, 0)) is None

    def worth_waiting(self, rej: Rejection, until: float) -> bool:
        return self._worth_waiting(rej, until)

    def _pause(self, rej: Rejection, until: float) -> float:
        remaining = until - self._clock.monotonic()
        wait = rej.retry_after if rej.retry_after is not None else remaining
        if rej.item.kind == "concurrency":
            wait = min(wait, self._recheck)
        return max(0.0, min(wait, remaining))

    def _worth_waiting(self, rej: Rejection, until: float) -> bool:
        remaining = until - self._clock.monotonic()
        if rej.retry_after is None or remaining <= 0:
            return False
        # a slot may be released at any moment; a rate limit refills on a known schedule
        return rej.item.kind == "concurrency" or rej.retry_after <= remaining

    def _busy(self, keys: Iterable[str], rank: int) -> str | None:
        if not self._lines:
            return None
        for key in keys:
            line = self._lines.get(key)
            if line and line[0].rank <= rank:
                return key
        return None

    def _join(self, key: str, waiter: _Waiter) -> None:
        line = self._lines.setdefault(key, [])
        old_head = line[0] if line else None
        heapq.heappush(line, waiter)
        if line[0] is waiter:
            if old_head is not None:
                old_head.turn = asyncio.get_running_loop().create_future()
            _wake(waiter.turn)

    def _leave(self, key: str, waiter: _Waiter) -> None:
        line = self._lines.get(key)
        if not line or waiter not in line:
            return
        was_head = line[0] is waiter
        line.remove(waiter)
        heapq.heapify(line)
        if not line:
            del self._lines[key]
        elif was_head:
            _wake(line[0].turn)

    async def _race(self, fut: asyncio.Future[None], seconds: float) -> bool:
        """Wait for `fut` at most `seconds` on the Clock; True if `fut` completed."""
        if fut.done():
            return True
        if seconds <= 0:
            return False
        sleeper = asyncio.ensure_future(self._clock.sleep(seconds))
        try:
            await asyncio.wait((fut, sleeper), return_when=asyncio.FIRST_COMPLETED)
        finally:
            sleeper.cancel()
        return fut.done()
