"""Relaying the gateway's stream as a streamed HTTP body, whatever wire format encodes it.

The first chunk is pulled before the response starts (`first_chunk`), so a failure up to there
(unknown model, limits, every deployment down) is still a plain HTTP error with a status; the
rest is pulled lazily by `Relay`, which the format's encoder turns into frames.
"""

from __future__ import annotations

from collections.abc import AsyncGenerator, AsyncIterator, Awaitable, Callable

from headway.pipeline import aclose
from headway.types import ChatChunk


async def first_chunk(stream: AsyncIterator[ChatChunk]) -> ChatChunk | None:
    """The stream's first chunk, or None when it ends without any."""
    try:
        return await anext(stream)
    except StopAsyncIteration:
        return None


class Relay:
    """The body of a streamed answer: `start()` (if given) and `feed(first)` as the first
    frame, then `feed(chunk)` per later chunk (chunks that encode to nothing are skipped), then
    `finish()` once the stream ends.

    A class around a generator rather than the generator alone, so `aclose` reaches the
    gateway's stream even when the body is dropped before its first item (a generator that
    never started has nothing to close), which is what releases the call's reservations.
    `__anext__` hands out the generator's own awaitable: a coroutine of this class per frame
    cost more than the generator's resumption."""

    __slots__ = ("_feed", "_finish", "_first", "_frames", "_pumped", "_start", "_stream")

    def __init__(
        self,
        first: ChatChunk | None,
        stream: AsyncIterator[ChatChunk],
        feed: Callable[[ChatChunk], bytes],
        finish: Callable[[], bytes],
        start: Callable[[], bytes] | None = None,
    ) -> None:
        self._stream = stream
        self._first = first
        self._feed = feed
        self._finish = finish
        self._start = start
        self._frames = _frames(first, stream, feed, finish, start)
        self._pumped = False

    def __aiter__(self) -> Relay:
        return self

    def __anext__(self) -> Awaitable[bytes]:
        return self._frames.__anext__()

    async def pump(self, send: Callable[[bytes], Awaitable[object] | None]) -> None:
        """Hand every frame to `send`, in order, as iterating would give them (for a server
        that writes the body itself, in place of iterating): no generator step per frame.
        `send` returns what to await before the next frame, or None to go on at once (a server
        that buffers output waits only to drain: no coroutine per frame).
        Only on a relay nobody iterated; its errors are the stream's, as iterating raises them.
        """
        self._pumped = True
        stream = self._stream
        feed = self._feed
        first = self._first
        self._first = None  # not kept alive for the whole stream
        head = self._start() if self._start is not None else b""
        if first is None:
            wait = send(head + self._finish())
            if wait is not None:
                await wait
            return
        wait = send(head + feed(first))
        if wait is not None:
            await wait
        async for chunk in stream:
            data = feed(chunk)
            if data:
                wait = send(data)
                if wait is not None:
                    await wait
        wait = send(self._finish())
        if wait is not None:
            await wait

    async def aclose(self) -> None:
        if not self._pumped:  # else the generator never started: closing it would start it
            await self._frames.aclose()
        await aclose(self._stream)


async def _frames(
    first: ChatChunk | None,
    stream: AsyncIterator[ChatChunk],
    feed: Callable[[ChatChunk], bytes],
    finish: Callable[[], bytes],
    start: Callable[[], bytes] | None,
) -> AsyncGenerator[bytes, None]:
    head = start() if start is not None else b""
    if first is None:
        yield head + finish()
        return
    yield head + feed(first)
    del first  # not kept alive for the whole stream
    async for chunk in stream:
        data = feed(chunk)
        if data:
            yield data
    yield finish()
