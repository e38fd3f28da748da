"""Relaying the gateway's stream as a streamed HTTP body, whatever wire format encodes it.

The first chunk is pulled before the response starts (`first_chunk`), so a failure up to there
(unknown model, limits, every deployment down) is still a plain HTTP error with a status; the
rest is pulled lazily by `Relay`, which the format's encoder turns into frames.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable

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

    A class rather than an async generator so `aclose` reaches the gateway's stream even when
    the body is dropped before its first item (a generator that never started has nothing to
    close), which is what releases the call's reservations."""

    __slots__ = ("_feed", "_finish", "_first", "_start", "_state", "_stream")

    def __init__(
        self,
        first: ChatChunk | None,
        stream: AsyncIterator[ChatChunk],
        *,
        feed: Callable[[ChatChunk], bytes],
        finish: Callable[[], bytes],
        start: Callable[[], bytes] | None = None,
    ) -> None:
        self._first = first
        self._stream = stream
        self._feed = feed
        self._finish = finish
        self._start = start
        self._state = 0  # 0: not started, 1: relaying, 2: done

    def __aiter__(self) -> Relay:
        return self

    async def __anext__(self) -> bytes:
        if self._state == 0:
            self._state = 1
            head = self._start() if self._start is not None else b""
            first, self._first = self._first, None
            if first is None:
                self._state = 2
                return head + self._finish()
            return head + self._feed(first)
        while self._state == 1:
            try:
                chunk = await anext(self._stream)
            except StopAsyncIteration:
                self._state = 2
                return self._finish()
            data = self._feed(chunk)
            if data:
                return data
        raise StopAsyncIteration

    async def aclose(self) -> None:
        self._state = 2
        await aclose(self._stream)
