"""`Deadlines`: many waits' time limits on one loop timer, each told False when its own deadline
comes, as a `loop.call_at` per wait would have told it."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

from headway.transport.conn import Deadlines


def _waits(loop: asyncio.AbstractEventLoop, n: int) -> list[asyncio.Future[bool]]:
    return [loop.create_future() for _ in range(n)]


async def test_each_waiter_expires_at_its_own_deadline_in_order() -> None:
    loop = asyncio.get_running_loop()
    deadlines = Deadlines(loop)
    late, early, middle = _waits(loop, 3)
    now = loop.time()
    deadlines.add(now + 0.15, late)
    deadlines.add(now + 0.03, early)  # earlier than the armed timer: re-armed for it
    deadlines.add(now + 0.08, middle)
    order: list[str] = []

    def note(name: str) -> Callable[[asyncio.Future[bool]], None]:
        return lambda _: order.append(name)

    for name, fut in (("late", late), ("early", early), ("middle", middle)):
        fut.add_done_callback(note(name))
    assert await early is False
    assert not middle.done() and not late.done()
    assert await middle is False and await late is False
    assert order == ["early", "middle", "late"]


async def test_a_waiter_done_in_time_keeps_its_result() -> None:
    loop = asyncio.get_running_loop()
    deadlines = Deadlines(loop)
    answered, silent = _waits(loop, 2)
    deadlines.add(loop.time() + 0.02, answered)
    deadlines.add(loop.time() + 0.04, silent)
    answered.set_result(True)
    deadlines.finished()
    assert await silent is False
    assert answered.result() is True


async def test_a_past_deadline_expires_at_once() -> None:
    loop = asyncio.get_running_loop()
    deadlines = Deadlines(loop)
    (waiter,) = _waits(loop, 1)
    deadlines.add(loop.time() - 1.0, waiter)
    assert await asyncio.wait_for(waiter, 1.0) is False


async def test_finished_waits_are_compacted_away() -> None:
    loop = asyncio.get_running_loop()
    deadlines = Deadlines(loop)
    far = loop.time() + 3600.0
    for i in range(1000):
        (waiter,) = _waits(loop, 1)
        deadlines.add(far + i, waiter)
        waiter.set_result(True)
        deadlines.finished()
    assert len(deadlines._heap) <= 40  # bounded by the waits still going, not by all ever made
    (live,) = _waits(loop, 1)
    deadlines.add(loop.time() + 0.02, live)
    assert await live is False
