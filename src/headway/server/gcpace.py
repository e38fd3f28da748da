"""Garbage collection paced by the event loop's clock instead of by allocation counts.

Why: CPython triggers a young collection when allocations minus deallocations pass a threshold,
and a young collection scans every object allocated since the last one that is still alive. On a
server holding many open streams the two drift apart: new streams allocate objects that live for
seconds (connections, parsers, coroutines, timers) while finished streams free objects of the
*older* generations, which lowers the count without shrinking the young generation. The count then
stays low while the young generation grows to hold every stream opened since the last collection,
and the collection that eventually comes scans them all: with 1,000 open streams, young
collections of up to 40-60 ms of CPU, each delaying every event in flight (thread CPU time of
each collection by `gc.callbacks`, bench scenario `streams1000`).

Collecting the two young generations every `TICK_S` bounds them by what a tick allocates. What
stays young between two ticks is mostly each open stream's chain of suspended coroutines and
`asend` objects, rebuilt on every event and alive until the next one (100 ms apart in the bench),
so a collection scans about the streams that received an event during the tick: its pause grows
with the tick, while the scanning per second does not. Measured over `streams1000` (gen-1 pauses,
thread CPU time, by `gc.callbacks`): a 50 ms tick paused 2.4 ms at p90, 3.4 ms at p99 and 4.0 ms at
worst, 339 ms of collection in all; a 10 ms tick 0.37 / 0.71 / 1.05 ms, 260 ms in all. Short-lived
requests pay for the shorter tick instead: at 6,000+ pass-through requests/s everything in flight
is young at every tick, so five times the ticks scan it five times as often, +0.7 us per request
(134 against 60 ms of collection over the same scenario), under 1 % of a request's CPU.

In the oldest generation an object costs nothing until a full collection. A full collection scans every object not frozen (at 1,000
streams, a pause of tens of milliseconds), so it runs at most every `FULL_CHECK_S`, and only when
the oldest generation has grown by a quarter since the last one: the rule CPython itself applies,
so the memory garbage cycles hold stays bounded the same way, only checked less often. The
automatic collector stays on as a safety net for a burst between two ticks, for the young
generation only.
"""

from __future__ import annotations

import asyncio
import gc

#: seconds between two collections of the young generations
TICK_S = 0.01
#: seconds between two checks of the oldest generation's size (listing it costs ~1 ms per 100k
#: objects), so the most often a full collection can run
FULL_CHECK_S = 30.0
#: growth of the oldest generation since the last full collection that calls for the next
FULL_GROWTH = 1.25
#: the automatic collector's thresholds: only a burst of allocations between two ticks reaches
#: the first; the others are never reached, since the ticks collect the middle generation
AUTO_THRESHOLD = (50_000, 1_000_000, 1_000_000)


class GcPacer:
    """Collects on `loop`'s clock from `start()` on, for as long as the loop runs. Call
    `start()` right after a full collection (and `gc.freeze()`, if any), so that the oldest
    generation's size then is the base of the growth rule."""

    __slots__ = ("_check_at", "_loop", "_oldest")

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self._loop = loop
        self._oldest = 0  # the oldest generation's size after the last full collection
        self._check_at = 0.0

    def start(self) -> None:
        gc.set_threshold(*AUTO_THRESHOLD)
        self._oldest = len(gc.get_objects(2))
        self._check_at = self._loop.time() + FULL_CHECK_S
        self._loop.call_later(TICK_S, self._tick)

    def _tick(self) -> None:
        now = self._loop.time()
        if now >= self._check_at and self._full_due():
            gc.collect()
            self._oldest = len(gc.get_objects(2))
        else:
            gc.collect(1)
        if now >= self._check_at:
            self._check_at = now + FULL_CHECK_S
        self._loop.call_later(TICK_S, self._tick)

    def _full_due(self) -> bool:
        # at least a few thousand objects of growth: a nearly empty heap would otherwise be
        # collected whole on every check
        return len(gc.get_objects(2)) > max(self._oldest * FULL_GROWTH, self._oldest + 10_000)
