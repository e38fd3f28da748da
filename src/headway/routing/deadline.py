"""Deadline arithmetic (pure) and one clock-driven way to enforce a deadline on an awaitable.

Every deadline is an absolute time on the Clock's monotonic scale. A call has one overall deadline;
each attempt gets `min(call deadline, start + attempt timeout)`; a streamed attempt must deliver its
first token by `min(attempt deadline, start + ttft timeout)` and then one chunk every
`stall timeout`, never past the call deadline. The chain enforces these itself, whatever the
provider does with the same numbers in its `AttemptContext`: a chat attempt with `within`, a
streamed one with one `headway.transport.watchdog.StreamWatchdog` for the whole stream (a timeout
entered per chunk cost more than the rest of the chain's per-chunk work).
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable
from typing import TypeVar

from headway.clock import Clock, SystemClock

T = TypeVar("T")


def earliest(*deadlines: float | None) -> float | None:
    """The earliest of some deadlines, None meaning "no deadline"."""
    out: float | None = None
    for d in deadlines:
        if d is not None and (out is None or d < out):
            out = d
    return out


def after(start: float, seconds: float | None) -> float | None:
    return None if seconds is None else start + seconds


def call_deadline(now: float, route_timeout_s: float, requested: float | None) -> float:
    """The call's overall deadline: the route default, shortened by one the caller asked for."""
    default = now + route_timeout_s
    return default if requested is None else min(default, requested)


def attempt_deadline(now: float, call: float | None, attempt_timeout_s: float) -> float | None:
    own = now + attempt_timeout_s  # `earliest` of the two, without its loop: every attempt
    return call if call is not None and call <= own else own


def first_token_deadline(
    start: float, ttft_timeout_s: float | None, attempt: float | None
) -> float | None:
    return earliest(after(start, ttft_timeout_s), attempt)


def next_chunk_deadline(
    last_chunk: float, stall_timeout_s: float | None, call: float | None
) -> float | None:
    return earliest(after(last_chunk, stall_timeout_s), call)


def remaining(now: float, deadline: float | None) -> float | None:
    return None if deadline is None else deadline - now


class _Expiry:
    """The timer callback of `within`: cancels the waiting task and remembers it did."""

    __slots__ = ("fired", "task")

    def __init__(self, task: asyncio.Task[object]) -> None:
        self.task = task
        self.fired = False

    def __call__(self) -> None:
        self.fired = True
        self.task.cancel()


async def within(clock: Clock, aw: Awaitable[T], deadline: float | None) -> T:
    """Await `aw`, raising TimeoutError once `clock.monotonic()` reaches `deadline`.

    On the system clock this is what `asyncio.timeout_at` does (one `loop.call_at` handle that
    cancels the task; the cancellation turns into TimeoutError only when it was the timer's and
    nobody else cancelled too) without its context manager's two coroutines and state machine:
    it runs on every chat attempt. On any other clock (a FakeClock in tests) a watcher task
    sleeps on the clock and cancels the waiter the same way."""
    if deadline is None:
        return await aw
    if not isinstance(clock, SystemClock):
        return await _within_clock(clock, aw, deadline)
    loop = asyncio.get_running_loop()
    task = asyncio.current_task(loop)
    assert task is not None
    expiry = _Expiry(task)
    cancelling = task.cancelling()
    handle = loop.call_at(loop.time() + (deadline - clock.monotonic()), expiry)
    cancelled = False
    try:
        return await aw
    except asyncio.CancelledError:
        cancelled = True
        raise
    finally:
        handle.cancel()
        # as asyncio.timeout's exit: withdraw the timer's cancellation whatever `aw` did with it
        if expiry.fired and task.uncancel() <= cancelling and cancelled:
            raise TimeoutError from None


async def _within_clock(clock: Clock, aw: Awaitable[T], deadline: float) -> T:
    task = asyncio.current_task()
    assert task is not None
    if clock.monotonic() >= deadline:
        if asyncio.iscoroutine(aw):
            aw.close()
        raise TimeoutError
    fired = False

    async def watch() -> None:
        nonlocal fired
        await clock.sleep(deadline - clock.monotonic())
        fired = True
        task.cancel()

    watcher = asyncio.ensure_future(watch())
    try:
        return await aw
    except asyncio.CancelledError:
        if fired and task.uncancel() == 0:
            raise TimeoutError from None
        raise
    finally:
        watcher.cancel()
