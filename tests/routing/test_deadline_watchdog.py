"""One timer per stream (headway.transport.watchdog.StreamWatchdog): the first-token, stall and end
deadlines of a stream, on a FakeClock; and the same three limits as a chain enforces them."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable
from typing import Any

import pytest

from headway.clock import FakeClock
from headway.errors import HeadwayError, UpstreamTimeout
from headway.transport.watchdog import StreamWatchdog
from tests.routing.fakes import TOKENS, Act, FakeProvider
from tests.routing.helpers import make_chain
from tests.routing.test_stream import run, text


async def wait(dog: StreamWatchdog, aw: Awaitable[Any]) -> Any:
    """One wait as a stream reader does it: the watchdog's cancellation becomes a timeout."""
    dog.begin()
    try:
        return await aw
    except asyncio.CancelledError:
        if dog.expired():
            return f"timeout:{dog.fired}"
        raise
    finally:
        dog.waiting = False


def pending() -> asyncio.Future[str]:
    return asyncio.get_running_loop().create_future()


def live_timers(clock: FakeClock) -> int:
    return clock.sleepers


async def test_first_token_limit_fires_at_its_deadline(fake_clock: FakeClock) -> None:
    dog = StreamWatchdog(fake_clock, 0.0, end=100.0, first=2.0, stall=5.0)
    task = asyncio.ensure_future(wait(dog, pending()))
    await fake_clock.advance(1.9)
    assert not task.done()
    await fake_clock.advance(0.2)
    assert await task == "timeout:first"
    dog.close()


async def test_stall_counts_from_the_last_item_with_one_timer(fake_clock: FakeClock) -> None:
    dog = StreamWatchdog(fake_clock, 0.0, end=1000.0, first=2.0, stall=5.0)
    dog.start_output(0.0)
    for _ in range(10):  # an item every 4 s: the 5 s stall limit never passes
        item = pending()
        task = asyncio.ensure_future(wait(dog, item))
        await fake_clock.advance(4.0)
        assert live_timers(fake_clock) <= 1  # one timer, moved lazily, never one per item
        item.set_result("chunk")
        assert await task == "chunk"
        dog.last = fake_clock.monotonic()
    silent_from = fake_clock.monotonic()
    task = asyncio.ensure_future(wait(dog, pending()))
    await fake_clock.advance(4.9)
    assert not task.done()
    await fake_clock.advance(0.1)
    assert await task == "timeout:stall"
    assert fake_clock.monotonic() == pytest.approx(silent_from + 5.0)
    dog.close()
    assert live_timers(fake_clock) == 0


async def test_output_start_brings_a_shorter_stall_deadline_forward(fake_clock: FakeClock) -> None:
    dog = StreamWatchdog(fake_clock, 0.0, end=100.0, first=30.0, stall=2.0)
    item = pending()
    task = asyncio.ensure_future(wait(dog, item))
    await fake_clock.advance(1.0)
    item.set_result("first token")
    assert await task == "first token"
    dog.start_output(fake_clock.monotonic())  # the timer armed for 30 s must not wait that long
    task = asyncio.ensure_future(wait(dog, pending()))
    await fake_clock.advance(1.9)
    assert not task.done()
    await fake_clock.advance(0.1)
    assert await task == "timeout:stall"
    dog.close()


async def test_the_end_deadline_caps_a_stream_that_never_stalls(fake_clock: FakeClock) -> None:
    dog = StreamWatchdog(fake_clock, 0.0, end=10.0, first=2.0, stall=5.0)
    dog.start_output(0.0)
    results: list[str] = []
    while not results or results[-1] == "chunk":
        item = pending()
        task = asyncio.ensure_future(wait(dog, item))
        await fake_clock.advance(4.0)
        if not task.done():
            item.set_result("chunk")
        results.append(await task)
        dog.last = fake_clock.monotonic()
    assert results == ["chunk", "chunk", "timeout:end"]
    assert fake_clock.monotonic() == pytest.approx(12.0)  # the 3rd wait ended at 10 s
    dog.close()


async def test_stall_before_output_only_when_asked(fake_clock: FakeClock) -> None:
    chain_like = StreamWatchdog(fake_clock, 0.0, end=50.0, first=None, stall=5.0)
    task = asyncio.ensure_future(wait(chain_like, pending()))
    await fake_clock.advance(10.0)
    assert not task.done()  # before output only the first-token and end limits apply
    await fake_clock.advance(40.0)
    assert await task == "timeout:end"
    provider_like = StreamWatchdog(fake_clock, 50.0, end=100.0, stall=5.0, stall_first=True)
    task = asyncio.ensure_future(wait(provider_like, pending()))
    await fake_clock.advance(5.0)
    assert await task == "timeout:stall"


async def test_a_deadline_passed_while_the_consumer_was_busy(fake_clock: FakeClock) -> None:
    """Nothing fires while nobody waits; then an item already there is still taken, and the
    first wait that has to suspend is cancelled at once."""
    dog = StreamWatchdog(fake_clock, 0.0, end=100.0, stall=5.0)
    dog.start_output(0.0)
    await fake_clock.advance(10.0)  # the consumer is slow: no wait in progress
    ready = asyncio.get_running_loop().create_future()
    ready.set_result("buffered")
    assert await wait(dog, ready) == "buffered"
    task = asyncio.ensure_future(wait(dog, pending()))
    await fake_clock.advance(0)
    assert await task == "timeout:stall"
    assert fake_clock.monotonic() == pytest.approx(10.0)


async def test_a_cancellation_from_elsewhere_is_not_a_timeout(fake_clock: FakeClock) -> None:
    dog = StreamWatchdog(fake_clock, 0.0, end=5.0)
    task = asyncio.ensure_future(wait(dog, pending()))
    await fake_clock.advance(1.0)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert dog.fired is None
    dog.close()
    assert live_timers(fake_clock) == 0


async def test_no_limit_arms_no_timer(fake_clock: FakeClock) -> None:
    dog = StreamWatchdog(fake_clock, 0.0, end=None)
    task = asyncio.ensure_future(wait(dog, pending()))
    await fake_clock.advance(0)
    assert live_timers(fake_clock) == 0
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task


async def test_the_timer_cancels_the_task_that_waits_now(fake_clock: FakeClock) -> None:
    """A stream may change hands (the server reads the first chunk in the request's task and
    the rest in a pump task): the timeout lands on whoever waits when it fires."""
    dog = StreamWatchdog(fake_clock, 0.0, end=100.0, stall=5.0)
    dog.start_output(0.0)
    first = pending()
    reader_a = asyncio.ensure_future(wait(dog, first))
    await fake_clock.advance(1.0)
    first.set_result("from a")
    assert await reader_a == "from a"
    dog.last = fake_clock.monotonic()
    bystander = asyncio.ensure_future(fake_clock.sleep(100.0))
    reader_b = asyncio.ensure_future(wait(dog, pending()))
    await fake_clock.advance(5.0)
    assert await reader_b == "timeout:stall"
    assert not bystander.done()
    bystander.cancel()


# ---- the chain's limits on a streamed attempt ---------------------------------------------------


async def test_chain_stream_ends_at_the_call_deadline_though_it_never_stalls(
    fake_clock: FakeClock,
) -> None:
    p = FakeProvider("a", fake_clock, [Act(per_token=1.0)])
    chain, _ = make_chain(
        fake_clock,
        [p],
        timeout_s=20.0,
        attempt_timeout_s=20.0,
        stream={"ttft_timeout_s": 2.0, "stall_timeout_s": 5.0},
    )
    with pytest.raises(HeadwayError):
        await run(fake_clock, chain)
    assert fake_clock.monotonic() == pytest.approx(20.0)
    assert p.calls >= 1


async def test_chain_first_token_deadline_and_stall_deadline(fake_clock: FakeClock) -> None:
    late = FakeProvider("late", fake_clock, [Act(ttft=3.0)])
    chain, _ = make_chain(
        fake_clock,
        [late],
        recovery={"enabled": False},
        retry={"max_attempts": 1},
        stream={"ttft_timeout_s": 2.0, "stall_timeout_s": 5.0},
    )
    with pytest.raises(HeadwayError) as err:
        await run(fake_clock, chain)
    assert "first token" in str(err.value)
    assert fake_clock.monotonic() == pytest.approx(2.0)

    # a gap of 4.9 s between chunks is no stall; 5.1 s is one, found at 5 s
    ok = FakeProvider("ok", fake_clock, [Act(stall_after=10, stall_s=4.9)])
    chain, _ = make_chain(fake_clock, [ok], stream={"ttft_timeout_s": 2.0, "stall_timeout_s": 5.0})
    chunks, _ = await run(fake_clock, chain)
    assert text(chunks) == "".join(TOKENS)
    stalls = FakeProvider("stalls", fake_clock, [Act(stall_after=10, stall_s=5.1)])
    chain, _ = make_chain(
        fake_clock,
        [stalls],
        recovery={"enabled": False},
        stream={"ttft_timeout_s": 2.0, "stall_timeout_s": 5.0},
    )
    start = fake_clock.monotonic()
    with pytest.raises(UpstreamTimeout) as stalled:
        await run(fake_clock, chain)
    assert "stalled" in str(stalled.value)
    assert fake_clock.monotonic() - start == pytest.approx(5.0)
