"""The stream relay every streamed route builds its body from (server/relay.py)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest

from headway.server.relay import Relay, first_chunk
from headway.types import ChatChunk


class Upstream:
    """A gateway stream that records whether it was closed."""

    def __init__(self, *texts: str) -> None:
        self._texts = list(texts)
        self.closed = False

    def __aiter__(self) -> Upstream:
        return self

    async def __anext__(self) -> ChatChunk:
        if not self._texts:
            raise StopAsyncIteration
        return ChatChunk(id="c1", model="m", text=self._texts.pop(0))

    async def aclose(self) -> None:
        self.closed = True


def feed(chunk: ChatChunk) -> bytes:
    return f"[{chunk.text}]".encode() if chunk.text else b""


async def body(relay: AsyncIterator[bytes]) -> list[bytes]:
    return [frame async for frame in relay]


async def test_first_chunk_is_none_for_an_empty_stream() -> None:
    assert await first_chunk(Upstream()) is None
    first = await first_chunk(Upstream("a", "b"))
    assert first is not None and first.text == "a"


async def test_start_and_first_chunk_form_one_frame_then_empty_chunks_are_skipped() -> None:
    up = Upstream("a", "", "b", "")
    first = await first_chunk(up)
    relay = Relay(first, up, feed=feed, finish=lambda: b"<end>", start=lambda: b"<start>")
    assert await body(relay) == [b"<start>[a]", b"[b]", b"<end>"]


async def test_an_empty_stream_is_start_and_finish_in_one_frame() -> None:
    relay = Relay(None, Upstream(), feed=feed, finish=lambda: b"<end>", start=lambda: b"<s>")
    assert await body(relay) == [b"<s><end>"]


async def test_without_start_the_first_frame_is_the_first_chunk() -> None:
    up = Upstream("a", "b")
    relay = Relay(await first_chunk(up), up, feed=feed, finish=lambda: b"<end>")
    assert await body(relay) == [b"[a]", b"[b]", b"<end>"]


async def test_aclose_before_the_first_frame_closes_the_upstream() -> None:
    up = Upstream("a", "b")
    relay = Relay(await first_chunk(up), up, feed=feed, finish=lambda: b"<end>")
    await relay.aclose()
    assert up.closed
    assert await body(relay) == []


async def pumped(relay: Relay) -> list[bytes]:
    frames: list[bytes] = []

    async def send(data: bytes) -> None:
        frames.append(data)

    await relay.pump(send)
    return frames


async def test_pump_sends_the_frames_iterating_gives() -> None:
    def relays() -> list[Relay]:
        up = Upstream("a", "", "b", "")
        first = ChatChunk(id="c1", model="m", text="")
        return [
            Relay(first, up, feed=feed, finish=lambda: b"<end>", start=lambda: b"<start>"),
            Relay(None, Upstream(), feed=feed, finish=lambda: b"<end>", start=lambda: b"<s>"),
            Relay(first, Upstream("x"), feed=feed, finish=lambda: b"<end>"),
        ]

    iterated = [await body(relay) for relay in relays()]
    assert iterated[2] == [b"", b"[x]", b"<end>"]  # an empty first frame is still a frame
    assert [await pumped(relay) for relay in relays()] == iterated


async def test_pump_raises_the_stream_error_after_the_frames_before_it() -> None:
    class Breaks(Upstream):
        async def __anext__(self) -> ChatChunk:
            if not self._texts:
                raise RuntimeError("cut")
            return await super().__anext__()

    frames: list[bytes] = []

    async def send(data: bytes) -> None:
        frames.append(data)

    up = Breaks("a", "b")
    relay = Relay(await first_chunk(up), up, feed=feed, finish=lambda: b"<end>")
    with pytest.raises(RuntimeError, match="cut"):
        await relay.pump(send)
    assert frames == [b"[a]", b"[b]"]


async def test_pump_takes_a_synchronous_send_and_waits_only_for_what_it_returns() -> None:
    """A server that buffers output sends without a coroutine per frame: None goes on at once,
    anything else is awaited before the next frame."""
    loop = asyncio.get_running_loop()
    frames: list[bytes] = []
    waits: list[asyncio.Future[None]] = []

    def send(data: bytes) -> asyncio.Future[None] | None:
        frames.append(data)
        if data != b"[b]":
            return None
        wait: asyncio.Future[None] = loop.create_future()
        waits.append(wait)
        return wait

    up = Upstream("a", "b", "c")
    relay = Relay(await first_chunk(up), up, feed=feed, finish=lambda: b"<end>")
    pumping = asyncio.ensure_future(relay.pump(send))
    while not waits:
        await asyncio.sleep(0)
    for _ in range(3):
        await asyncio.sleep(0)
    assert frames == [b"[a]", b"[b]"] and not pumping.done()  # held until the wait is over
    waits[0].set_result(None)
    await pumping
    assert frames == [b"[a]", b"[b]", b"[c]", b"<end>"]
