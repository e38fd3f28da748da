"""When the fake upstream answers a delayed request: on a precise clock, or on the event loop's.

The event loop's timers (`loop.call_later`, `--timer loop`) are what the upstream used at first,
and they are not faithful to a real provider. uvloop (libuv) keeps time in whole milliseconds: a
timer is due at a millisecond of the loop's cached clock and fires with every other timer due
then, up to ~0.9 ms early or late. Under the 50 ms scenario's closed loop of 16 connections,
62-89 % of the answers to wrk (the direct baseline) left less than 100 us after the previous one,
in bursts of up to 16, although 16 requests over 50 ms are ~3 ms apart on average; 35-61 % when
the gateway was the client, because it forwards requests one after another. (Removing the bursts
did not change the gateway's added latency: see docs/performance.md.)

`PreciseTimer` keeps the deadlines in a heap and wakes the event loop with a Linux timerfd armed
at the earliest one (an hrtimer on CLOCK_MONOTONIC, the clock of `time.monotonic`): measured
50-70 us late at the median and 0.1-0.8 ms at p99 (bench at real-time priority), never early.
No thread is involved, so no GIL hand-off delays a callback. Its cost is a `timerfd_settime` per
new earliest deadline and one read per wake-up, at the few hundred answers per second of a slow
upstream; the zero-delay path never touches it.

Precise equal delays alone are not faithful either: wrk opens its 16 connections at once, answers
take exactly 50 ms, and the 16 requests stay in lockstep for the whole run (68-92 % bunched), so
wrk's own queue adds ~0.3-0.6 ms to the direct baseline's median and flatters the gateway.
`jitter` spreads each delay uniformly over [delay - jitter, delay + jitter] (mean unchanged), as
a real provider's answer times vary; the bench uses +/-1 ms (`--upstream-jitter-ms`), which
brings bunching down to 7-19 % on both sides.

`Delayed` also logs when each answer ran (`AnswerLog`), which the upstream returns on
`GET /bench/stats` and the slow scenario reports.
"""

from __future__ import annotations

import asyncio
import ctypes
import heapq
import itertools
import os
import random
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import partial
from typing import Protocol

Callback = Callable[[], None]


class Timer(Protocol):
    def later(self, delay: float, callback: Callback) -> None:
        """Run `callback` on the event loop `delay` seconds from now."""


class LoopTimer:
    """The event loop's own timers: millisecond-quantised under uvloop."""

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self._loop = loop

    def later(self, delay: float, callback: Callback) -> None:
        self._loop.call_later(delay, callback)


class _Timespec(ctypes.Structure):
    _fields_ = [("tv_sec", ctypes.c_long), ("tv_nsec", ctypes.c_long)]


class _Itimerspec(ctypes.Structure):
    _fields_ = [("it_interval", _Timespec), ("it_value", _Timespec)]


_CLOCK_MONOTONIC = 1  # the clock of time.monotonic()
_TFD_NONBLOCK_CLOEXEC = os.O_NONBLOCK | os.O_CLOEXEC
_TFD_TIMER_ABSTIME = 1


class PreciseTimer:
    """Deadlines on `time.monotonic`, in a heap, woken by a Linux timerfd the loop polls."""

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self._libc = ctypes.CDLL(None, use_errno=True)
        self._fd = self._libc.timerfd_create(_CLOCK_MONOTONIC, _TFD_NONBLOCK_CLOEXEC)
        if self._fd < 0:
            raise OSError(ctypes.get_errno(), "timerfd_create failed")
        self._heap: list[tuple[float, int, Callback]] = []
        self._order = itertools.count()  # equal deadlines run in the order they were set
        self._spec = _Itimerspec()
        loop.add_reader(self._fd, self._fire)

    def later(self, delay: float, callback: Callback) -> None:
        entry = (time.monotonic() + delay, next(self._order), callback)
        heapq.heappush(self._heap, entry)
        if self._heap[0] is entry:  # a new earliest deadline: wake sooner
            self._arm(entry[0])

    def _arm(self, deadline: float) -> None:
        value = self._spec.it_value
        value.tv_sec = int(deadline)
        value.tv_nsec = max(1, int((deadline - value.tv_sec) * 1e9))  # 0 would disarm
        self._libc.timerfd_settime(self._fd, _TFD_TIMER_ABSTIME, ctypes.byref(self._spec), None)

    def _fire(self) -> None:
        try:
            os.read(self._fd, 8)
        except BlockingIOError:  # re-armed after it expired: nothing to read yet
            pass
        heap = self._heap
        now = time.monotonic()
        while heap and heap[0][0] <= now:
            heapq.heappop(heap)[2]()
        if heap:
            self._arm(heap[0][0])


#: the bench's spread of a delayed upstream's answers, ms (see above)
DEFAULT_JITTER_MS = 1.0

#: an answer written this soon after the previous one counts as bunched with it
BUNCHED_S = 100e-6


@dataclass(slots=True)
class AnswerLog:
    """How the delayed answers fell in time: how many came bunched, and how late each was."""

    answers: int = 0
    bunched: int = 0
    last: float = 0.0
    late: list[float] = field(default_factory=list)

    def add(self, now: float, due: float) -> None:
        self.answers += 1
        if now - self.last < BUNCHED_S:
            self.bunched += 1
        self.last = now
        if len(self.late) < 1_000_000:
            self.late.append(now - due)

    def take(self) -> dict[str, float]:
        """The figures since the last call, which starts a new window."""
        late = sorted(self.late)
        out = {
            "answers": float(self.answers),
            "bunched_share": self.bunched / self.answers if self.answers else 0.0,
            "late_p50_us": _pct(late, 0.50) * 1e6,
            "late_p99_us": _pct(late, 0.99) * 1e6,
        }
        self.answers = self.bunched = 0
        self.late.clear()
        return out


def _pct(ordered: list[float], q: float) -> float:
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))] if ordered else 0.0


class Delayed:
    """Runs callbacks after the upstream's delay on `timer`, each delay spread by `jitter`
    (uniform, seeded so that runs repeat), and logs when each one ran."""

    def __init__(self, timer: Timer, delay: float, jitter: float = 0.0, seed: int = 7) -> None:
        self.timer = timer
        self.delay = delay
        self.jitter = min(jitter, delay)
        self.log = AnswerLog()
        self._random = random.Random(seed)

    def later(self, callback: Callback) -> None:
        delay = self.delay
        if self.jitter > 0:
            delay += self._random.uniform(-self.jitter, self.jitter)
        self.timer.later(delay, partial(self._run, time.monotonic() + delay, callback))

    def _run(self, due: float, callback: Callback) -> None:
        self.log.add(time.monotonic(), due)
        callback()


TIMERS: dict[str, Callable[[asyncio.AbstractEventLoop], Timer]] = {
    "precise": PreciseTimer,
    "loop": LoopTimer,
}
