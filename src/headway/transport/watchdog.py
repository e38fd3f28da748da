"""One timer per stream for its deadlines, instead of one timeout per chunk.

A stream has up to three limits: an end (the attempt's or call's deadline), a first-token
deadline that no longer applies once output started, and a stall limit that counts from the last
item received. Entering `asyncio.timeout_at` around every read creates, reschedules and cancels a
timer per chunk (and the chain and a provider each enforce limits; a chain on the system clock
leaves an HTTP provider's to its own watchdog, `HttpProvider.stream_watched`). But
these deadlines almost only move *later* (every chunk pushes the stall deadline back), and a timer
can absorb that lazily: it is armed once, and when it fires before the current deadline it
re-arms itself there. Per chunk the reader only records the time (`last`) and brackets its wait
with `begin()` and `waiting = False`. The one move to an *earlier* time (output starts, and the
first-token deadline gives way to a shorter stall deadline) re-arms at once in `start_output()`.

When the deadline passes while the reader waits, the reading task is cancelled, and the reader
turns that `CancelledError` into its timeout with `expired()` — the way `asyncio.timeout` does
it, so a cancellation from elsewhere still propagates. When it passes while the reader is not
waiting (its consumer is slow), nothing happens until the next wait, which is cancelled as soon as
it suspends: what `asyncio.timeout_at` does with a deadline already past.

The timer runs on the given clock: a `loop.call_at` handle on the system clock; on any other
clock (a FakeClock in tests) a task sleeping on it, so tests move time explicitly.
"""

from __future__ import annotations

import asyncio
import sys
from collections.abc import Callable
from typing import Any, Literal

from headway.clock import Clock, SystemClock

Limit = Literal["end", "first", "stall"]

_current_task: Callable[[asyncio.AbstractEventLoop], asyncio.Task[Any] | None]
if sys.version_info >= (3, 12):
    _current_task = asyncio.current_task
else:
    # 3.11's `asyncio.current_task` is a Python function around a lookup in this table (1.1k
    # instructions against 0.3k), and a wait begins once per stream event; 3.12 made it C
    _current_task = asyncio.tasks._current_tasks.get  # type: ignore[attr-defined]

# Loop timers have millisecond resolution: a timer may run a hair before the clock reaches its
# deadline, and re-arming for that hair would spin. Only the system clock needs the slack.
_SLACK_S = 0.001


class StreamWatchdog:
    """The deadlines of one stream, enforced on the task that reads it.

    `end` and `first` are absolute times on `clock.monotonic()`'s scale (None: no such limit);
    `stall` is seconds since `last` (the last item, initially the start). `stall_first`: whether
    the stall limit also applies before output starts."""

    __slots__ = (
        "_at",
        "_clock",
        "_loop",
        "_slack",
        "_system",
        "_task",
        "_timer",
        "end",
        "fired",
        "first",
        "last",
        "stall",
        "stall_first",
        "started",
        "waiting",
    )

    def __init__(
        self,
        clock: Clock,
        start: float,
        end: float | None,
        first: float | None = None,
        stall: float | None = None,
        stall_first: bool = False,
    ) -> None:
        self._clock = clock
        self._loop = asyncio.get_running_loop()
        self._system = isinstance(clock, SystemClock)
        self._slack = _SLACK_S if self._system else 0.0
        self._timer: asyncio.TimerHandle | asyncio.Future[None] | None = None
        self._at: float | None = None  # when the armed timer runs
        self._task: asyncio.Task[object] | None = None
        #: a wait is in progress (set by `begin()`; the reader clears it when the wait is over —
        #: an attribute, not a method, because it is cleared twice per chunk)
        self.waiting = False
        self.end = end
        self.first = first
        self.stall = stall
        self.stall_first = stall_first
        self.started = False
        #: the time of the last item received: the reader sets it, the stall limit counts from it
        self.last = start
        #: which limit passed, once the timer cancelled a wait
        self.fired: Limit | None = None

    def due(self) -> tuple[float, Limit] | None:
        """The deadline in force now and which limit it is (None: no limit applies)."""
        best: tuple[float, Limit] | None = None
        if self.end is not None:
            best = (self.end, "end")
        if not self.started and self.first is not None and (best is None or self.first < best[0]):
            best = (self.first, "first")
        if self.stall is not None and (self.started or self.stall_first):
            at = self.last + self.stall
            if best is None or at < best[0]:
                best = (at, "stall")
        return best

    # ---- the reader's side ------------------------------------------------------------------

    def begin(self) -> None:
        """A wait for the next item starts (in the current task)."""
        self._task = _current_task(self._loop)  # per wait: a stream may change hands
        self.waiting = True
        if self._timer is None:
            self._arm()

    def start_output(self, now: float) -> None:
        """Output started at `now`: the first-token limit gives way to the stall limit, which
        may be the earlier of the two."""
        self.started = True
        self.last = now
        at = self._at
        if at is not None:
            due = self.due()
            if due is None or due[0] < at:
                self._disarm()
                if self.waiting:
                    self._arm()

    def expired(self) -> bool:
        """Call on `CancelledError`: True when this watchdog caused it (and it is consumed)."""
        task = self._task
        return self.fired is not None and task is not None and task.uncancel() == 0

    def close(self) -> None:
        self.waiting = False
        self._disarm()

    # ---- the timer ------------------------------------------------------------------------------

    def _arm(self) -> None:
        due = self.due()
        if due is None:
            return  # checked again at the next wait; nothing can make a limit appear meanwhile
        at = due[0]
        self._at = at
        if self._system:
            loop = self._loop
            self._timer = loop.call_at(loop.time() + (at - self._clock.monotonic()), self._fire)
        else:
            self._timer = asyncio.ensure_future(self._sleep(at))

    async def _sleep(self, at: float) -> None:
        await self._clock.sleep(at - self._clock.monotonic())
        self._fire()

    def _disarm(self) -> None:
        timer = self._timer
        if timer is not None:
            self._timer = None
            self._at = None
            timer.cancel()

    def _fire(self) -> None:
        self._timer = None
        self._at = None
        if not self.waiting:
            return  # the next wait arms it again
        due = self.due()
        if due is None:
            return
        if due[0] - self._clock.monotonic() > self._slack:
            self._arm()  # the deadline moved later since the timer was set
            return
        task = self._task
        if task is not None and not task.done():
            self.fired = due[1]
            task.cancel()
