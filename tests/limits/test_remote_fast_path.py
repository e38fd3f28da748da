"""A remote store is asked at once, outside the fair queue, while nobody waits in line: calls
get the same answers, headers and order as when every call goes through the queue."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

import pytest

from headway.clock import FakeClock
from headway.errors import RateLimited
from headway.limits.queue import FairQueue
from headway.limits.store import MemoryLimitStore
from headway.limits.values import Item, Outcome, Reservation
from tests.limits.rig import call, rig


class Remote:
    """The memory store behind coroutines, as a remote store looks to the stage; counts the
    reservations it was asked for."""

    def __init__(self, clock: FakeClock) -> None:
        self.inner = MemoryLimitStore(clock)
        self.reserves = 0

    async def reserve(
        self,
        items: Sequence[Item],
        alternatives: Sequence[Sequence[Item]] = (),
        *,
        now: float | None = None,
    ) -> Outcome:
        self.reserves += 1
        await asyncio.sleep(0)  # a round trip
        return self.inner.reserve_now(items, alternatives, now=now)

    async def settle(
        self,
        reservation: Reservation,
        actual: Sequence[int],
        *,
        extra: Sequence[Item] = (),
        now: float | None = None,
    ) -> tuple[float, ...]:
        await asyncio.sleep(0)
        return self.inner.settle_now(reservation, actual, extra=extra, now=now)

    async def release(self, reservation: Reservation, *, now: float | None = None) -> None:
        await self.settle(reservation, [0] * len(reservation.items), now=now)


class Queued(FairQueue):
    """Never free: every call goes through `admit`, the path before the fast one."""

    def free(self, keys: object, priority: str) -> bool:
        return False


LIMITS = "limits: {enabled: true, user: {rpm: 2, tpm: 100000}, wait: {max_wait_s: 120}}"


async def _scenario(clock: FakeClock, queued: bool) -> list[object]:
    """Two calls, two that wait for the rpm to refill, one refused by its deadline."""
    r = rig(LIMITS, clock, store=Remote(clock))
    if queued:
        r.stage._queue = Queued(clock)
    seen: list[object] = []
    first = [call() for _ in range(2)]
    for c in first:
        await r.chat(c)
    seen += [c.served.ratelimit_headers for c in first]
    waiting = [call() for _ in range(2)]
    tasks = [asyncio.ensure_future(r.chat(c)) for c in waiting]
    for _ in range(20):
        await asyncio.sleep(0)
    seen.append([t.done() for t in tasks])
    late = asyncio.ensure_future(r.chat(call(deadline=clock.monotonic() + 1.0)))
    await clock.advance(1)
    with pytest.raises(RateLimited) as info:
        await late
    seen.append((info.value.tier, info.value.limit))
    await clock.advance(60)
    await clock.advance(60)
    await asyncio.gather(*tasks)
    seen += [c.served.ratelimit_headers for c in waiting]
    seen.append(len(r.terminal.seen))
    return seen


async def test_asking_at_once_gives_what_the_queue_gives(fake_clock: FakeClock) -> None:
    at_once = await _scenario(fake_clock, queued=False)
    assert await _scenario(FakeClock(), queued=True) == at_once
    assert at_once[2] == [False, False]  # the rpm was spent: both waited in line
    assert at_once[-1] == 4


async def test_a_call_behind_someone_waiting_queues_without_asking_the_store(
    fake_clock: FakeClock,
) -> None:
    remote = Remote(fake_clock)
    r = rig(LIMITS, fake_clock, store=remote)
    await asyncio.gather(r.chat(call()), r.chat(call()))
    head = asyncio.ensure_future(r.chat(call()))
    for _ in range(20):
        await asyncio.sleep(0)
    asked = remote.reserves
    behind = asyncio.ensure_future(r.chat(call()))
    for _ in range(20):
        await asyncio.sleep(0)
    assert remote.reserves == asked  # it joined the line; only the head retries
    await fake_clock.advance(60)
    await fake_clock.advance(60)
    await asyncio.gather(head, behind)
