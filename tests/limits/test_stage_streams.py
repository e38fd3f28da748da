"""Streams settle exactly once: on normal end, on error, and when the client goes away."""

from __future__ import annotations

import asyncio
import gc

import pytest

from headway.clock import FakeClock
from headway.errors import RateLimited, StreamInterrupted, UpstreamError
from headway.observe.events import Event
from headway.tokens import count
from headway.types import Usage
from tests.limits.rig import Rig, call, rig

CONFIG = """
limits: {enabled: true, key: {concurrency: 1, tpm: 100000}, wait: {enabled: false}}
budgets: {enabled: true, global: [{period: day, usd: 10}]}
"""


def settled(r: Rig) -> list[Event]:
    return [e for e in r.events if e.kind == "call.settled"]


async def assert_slot_free(r: Rig) -> None:
    await r.chat(call())  # concurrency 1: only admitted if the stream gave its slot back


async def test_a_stream_that_ends_settles_to_the_reported_usage(fake_clock: FakeClock) -> None:
    r = rig(CONFIG, fake_clock)
    c = call()
    chunks = [chunk async for chunk in r.stream(c)]
    assert chunks[-1].usage is not None
    [event] = settled(r)
    assert event.data["usage"] == Usage(100, 50)
    assert c.served.cost_usd == pytest.approx(0.00075)
    await assert_slot_free(r)


async def test_a_stream_without_usage_settles_to_what_was_streamed(fake_clock: FakeClock) -> None:
    r = rig(CONFIG, fake_clock)
    r.terminal.scripts["a"].stream_usage = False
    [chunk async for chunk in r.stream(call())]
    [event] = settled(r)
    assert event.data["usage"] == Usage(8, count("hello world " * 3))


async def test_a_stream_that_breaks_settles_and_frees_its_slot(fake_clock: FakeClock) -> None:
    r = rig(CONFIG, fake_clock)
    r.terminal.scripts["a"].fail = StreamInterrupted("cut")
    r.terminal.scripts["a"].fail_after = 2
    got = []
    with pytest.raises(StreamInterrupted):
        async for chunk in r.stream(call()):
            got.append(chunk)
    assert len(got) == 2
    [event] = settled(r)
    assert event.data["usage"] == Usage(8, count("hello world hello world "))
    await assert_slot_free(r)


async def test_a_stream_that_fails_before_its_first_chunk_costs_nothing(
    fake_clock: FakeClock,
) -> None:
    r = rig(CONFIG, fake_clock)
    r.terminal.scripts["a"].fail = UpstreamError("down")
    with pytest.raises(UpstreamError):
        [chunk async for chunk in r.stream(call())]
    [event] = settled(r)
    assert event.data["usage"] == Usage() and event.data["cost_usd"] == 0
    await assert_slot_free(r)


async def test_a_client_disconnect_settles_the_stream(fake_clock: FakeClock) -> None:
    r = rig(CONFIG, fake_clock)
    c = call()
    stream = r.stream(c)
    first = await stream.__anext__()
    assert first.text == "hello world "
    with pytest.raises(RateLimited):  # the open stream holds the only slot
        await r.chat(call())
    await stream.aclose()  # type: ignore[attr-defined]
    [event] = settled(r)
    assert event.data["usage"] == Usage(8, count("hello world "))
    await assert_slot_free(r)


async def test_a_call_cancelled_while_waiting_for_upstream_settles(fake_clock: FakeClock) -> None:
    r = rig(CONFIG, fake_clock)
    r.terminal.scripts["a"].gate = asyncio.Event()  # the upstream stalls after one chunk
    got = []

    async def consume() -> None:
        async for chunk in r.stream(call()):
            got.append(chunk)

    task = asyncio.ensure_future(consume())
    for _ in range(10):
        await asyncio.sleep(0)
    assert len(got) == 1
    task.cancel()  # e.g. the server's handler task when the client disconnects
    with pytest.raises(asyncio.CancelledError):
        await task
    await r.stage.aclose()
    [event] = settled(r)
    assert event.data["usage"] == Usage(8, count("hello world "))
    await assert_slot_free(r)


async def test_an_abandoned_stream_is_settled_when_it_is_finalised(fake_clock: FakeClock) -> None:
    r = rig(CONFIG, fake_clock)
    stream = r.stream(call())
    await stream.__anext__()
    del stream  # never closed by its consumer: the event loop's async-generator hook closes it
    gc.collect()
    for _ in range(10):
        await asyncio.sleep(0)
    await r.stage.aclose()
    assert len(settled(r)) == 1
    await assert_slot_free(r)
