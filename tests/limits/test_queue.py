"""The fair wait queue, driven only by FakeClock.advance (no test sleeps)."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

import pytest

from headway.clock import FakeClock
from headway.limits.queue import FairQueue
from headway.limits.store import MemoryLimitStore
from headway.limits.values import Item, Outcome, Rejection, Reservation
from tests.limits.items import bucket, slots


class Attempts:
    def __init__(self, store: MemoryLimitStore, item: Item) -> None:
        self.store = store
        self.item = item
        self.count = 0

    def __call__(self) -> Awaitable[Outcome]:
        self.count += 1
        return self.store.reserve([self.item])


async def settle_loop() -> None:
    for _ in range(10):
        await asyncio.sleep(0)


def start(
    queue: FairQueue,
    attempt: Callable[[], Awaitable[Outcome]],
    key: str,
    priority: str,
    until: float,
) -> asyncio.Task[Outcome]:
    return asyncio.ensure_future(queue.admit(attempt, [key], priority, until))


async def test_a_waiter_is_admitted_when_capacity_returns(fake_clock: FakeClock) -> None:
    store = MemoryLimitStore(fake_clock)
    queue = FairQueue(fake_clock)
    rpm1 = bucket("k", limit=1, amount=1)
    await store.reserve([rpm1])
    attempts = Attempts(store, rpm1)
    task = start(queue, attempts, "k", "interactive", fake_clock.monotonic() + 120)
    await settle_loop()
    assert not task.done() and queue.waiting("k") == 1 and fake_clock.sleepers == 1
    await fake_clock.advance(59.9)
    assert not task.done()
    await fake_clock.advance(0.1)
    assert isinstance(await task, Reservation)
    assert attempts.count == 2  # woken once by its timer: no polling
    assert queue.waiting() == 0


async def test_interactive_calls_go_before_batch_calls(fake_clock: FakeClock) -> None:
    store = MemoryLimitStore(fake_clock)
    queue = FairQueue(fake_clock)
    rpm1 = bucket("k", limit=1, amount=1)
    await store.reserve([rpm1])
    until = fake_clock.monotonic() + 600
    batch = start(queue, Attempts(store, rpm1), "k", "batch", until)
    await settle_loop()
    interactive = start(queue, Attempts(store, rpm1), "k", "interactive", until)
    await settle_loop()
    await fake_clock.advance(60)
    assert interactive.done() and isinstance(interactive.result(), Reservation)
    assert not batch.done()
    await fake_clock.advance(60)
    assert isinstance(await batch, Reservation)


async def test_same_priority_is_first_come_first_served(fake_clock: FakeClock) -> None:
    store = MemoryLimitStore(fake_clock)
    queue = FairQueue(fake_clock)
    rpm1 = bucket("k", limit=1, amount=1)
    await store.reserve([rpm1])
    until = fake_clock.monotonic() + 600
    tasks = []
    for _ in range(3):
        tasks.append(start(queue, Attempts(store, rpm1), "k", "interactive", until))
        await settle_loop()
    order: list[int] = []
    for _ in range(3):
        await fake_clock.advance(60)
        order += [i for i, t in enumerate(tasks) if t.done() and i not in order]
    assert order == [0, 1, 2]


async def test_a_newcomer_queues_behind_someone_already_waiting(fake_clock: FakeClock) -> None:
    store = MemoryLimitStore(fake_clock)
    queue = FairQueue(fake_clock)
    big = bucket("k", limit=10, amount=10)
    await store.reserve([big])
    first = start(queue, Attempts(store, big), "k", "interactive", fake_clock.monotonic() + 600)
    await settle_loop()
    await fake_clock.advance(30)  # 5 tokens back: enough for a small call, not for `first`
    small = Attempts(store, bucket("k", limit=10, amount=5))
    second = start(queue, small, "k", "interactive", fake_clock.monotonic() + 600)
    await settle_loop()
    assert not second.done() and small.count == 0  # it did not take the 5 tokens first
    await fake_clock.advance(30)
    assert first.done() and not second.done()
    await fake_clock.advance(30)
    assert isinstance(await second, Reservation)


async def test_a_wait_longer_than_the_deadline_fails_at_once(fake_clock: FakeClock) -> None:
    store = MemoryLimitStore(fake_clock)
    queue = FairQueue(fake_clock)
    rpm1 = bucket("k", limit=1, amount=1)
    await store.reserve([rpm1])
    out = await queue.admit(Attempts(store, rpm1), ["k"], "interactive", fake_clock.monotonic() + 5)
    assert isinstance(out, Rejection) and out.retry_after == pytest.approx(60.0)
    assert fake_clock.sleepers == 0 and queue.waiting() == 0


async def test_a_waiter_behind_others_gives_up_at_its_deadline(fake_clock: FakeClock) -> None:
    store = MemoryLimitStore(fake_clock)
    queue = FairQueue(fake_clock)
    rpm1 = bucket("k", limit=1, amount=1)
    await store.reserve([rpm1])
    head = start(queue, Attempts(store, rpm1), "k", "interactive", fake_clock.monotonic() + 600)
    await settle_loop()
    behind = start(queue, Attempts(store, rpm1), "k", "interactive", fake_clock.monotonic() + 10)
    await settle_loop()
    await fake_clock.advance(10)
    assert isinstance(await behind, Rejection)
    assert queue.waiting("k") == 1
    await fake_clock.advance(50)
    assert isinstance(await head, Reservation)


async def test_a_kick_wakes_the_head_when_a_slot_is_freed(fake_clock: FakeClock) -> None:
    store = MemoryLimitStore(fake_clock)
    queue = FairQueue(fake_clock, recheck_s=5.0)
    one = slots("c", limit=1, lease=600)
    held = await store.reserve([one])
    assert isinstance(held, Reservation)
    attempts = Attempts(store, one)
    task = start(queue, attempts, "c", "interactive", fake_clock.monotonic() + 60)
    await settle_loop()
    await fake_clock.advance(4)  # before the recheck: still waiting
    assert not task.done()
    await store.release(held)
    queue.kick(["c"])
    await settle_loop()
    assert isinstance(await task, Reservation)
    assert attempts.count == 2


async def test_a_cancelled_waiter_hands_its_turn_on(fake_clock: FakeClock) -> None:
    store = MemoryLimitStore(fake_clock)
    queue = FairQueue(fake_clock)
    rpm1 = bucket("k", limit=1, amount=1)
    await store.reserve([rpm1])
    until = fake_clock.monotonic() + 600
    head = start(queue, Attempts(store, rpm1), "k", "interactive", until)
    await settle_loop()
    nxt = start(queue, Attempts(store, rpm1), "k", "interactive", until)
    await settle_loop()
    head.cancel()
    await settle_loop()
    assert queue.waiting("k") == 1
    await fake_clock.advance(60)
    assert isinstance(await nxt, Reservation)
    assert queue.waiting() == 0
