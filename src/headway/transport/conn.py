"""One upstream HTTP/1.1 connection: an `asyncio.Protocol` driving `httptools`' response parser.

The connection carries one request at a time. Its response is parsed as bytes arrive: status and
headers once complete, body pieces appended to a buffer that the reader takes whole, so a reader
that falls behind gets everything that arrived in one piece instead of one per parser callback.
Reading pauses while more than `HIGH_WATER` bytes wait unread, and resumes when they are taken.

Waiting is one future per wait, woken by the parser's callbacks, with its time limit kept by the
pool's `Deadlines`: one loop timer for every wait of the pool rather than a `loop.call_at` handle
per wait, and no `asyncio.timeout` context (which costs several timer operations and a task
cancellation per use) on a path that runs once per request and per stream read.

Body framing is the parser's (Content-Length, chunked) except a body delimited by the end of the
connection, which `httptools` cannot finish (it has no `finish()`): that one is complete when the
connection ends cleanly. A connection is reusable only when its response was read to the end,
the server did not ask to close, and nothing went wrong.
"""

from __future__ import annotations

import asyncio
import heapq
import math
from typing import TYPE_CHECKING, cast

import httptools

from headway.transport.headers import Headers

if TYPE_CHECKING:
    from headway.transport.pool import Pool

#: unread body bytes above which the socket stops being read until the reader catches up
HIGH_WATER = 256 * 1024


class _StrayResponse(Exception):
    pass


#: raw header name -> lower-cased text, learnt as responses arrive (bounded: a misbehaving
#: upstream cannot grow it)
_NAMES: dict[bytes, str] = {}
_NAMES_MAX = 512
_NAME_MAX_LEN = 64
#: the plain dict's own `get`: `Headers` overrides it to lower-case the name asked for
_dict_get = dict.get


def _name(raw: bytes) -> str:
    name = raw.lower().decode("latin-1")
    if len(raw) < _NAME_MAX_LEN and len(_NAMES) < _NAMES_MAX:
        _NAMES[raw] = name
    return name


class Deadlines:
    """Time limits of many waits on one loop timer, armed for the earliest.

    A `loop.call_at` handle and its cancel cost ~7,600 instructions on uvloop (a libuv timer each,
    measured with callgrind), a third of a keep-alive request's client side; a wait here costs a
    heap push. Deadlines of successive requests grow, so the timer is re-armed rarely. A waiter
    is told False when its deadline comes, exactly when a timer of its own would have fired: the
    entries due are those at or before the time the loop timer was armed for. Finished waits stay
    in the heap until compacted, which happens once they are most of it."""

    __slots__ = ("_at", "_handle", "_heap", "_live", "_loop", "_seq")

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self._loop = loop
        self._heap: list[tuple[float, int, asyncio.Future[bool]]] = []
        self._seq = 0  # ties on the deadline are broken by arrival: futures do not compare
        self._live = 0  # waits added and not yet finished
        self._handle: asyncio.TimerHandle | None = None
        self._at = math.inf  # when the armed timer fires

    def add(self, when: float, waiter: asyncio.Future[bool]) -> None:
        """Until `finished`, `waiter` gets False at `when` (loop time) unless done before."""
        heap = self._heap
        if len(heap) > 2 * self._live + 32:
            self._compact()
        self._seq += 1
        heapq.heappush(heap, (when, self._seq, waiter))
        self._live += 1
        if when < self._at:
            self._arm(when)

    def finished(self) -> None:
        """A wait `add`ed is over (whatever ended it)."""
        self._live -= 1

    def _arm(self, when: float) -> None:
        if self._handle is not None:
            self._handle.cancel()
        self._at = when
        self._handle = self._loop.call_at(when, self._fire)

    def _fire(self) -> None:
        due, self._at, self._handle = self._at, math.inf, None
        heap = self._heap
        while heap and (heap[0][0] <= due or heap[0][2].done()):
            waiter = heapq.heappop(heap)[2]
            if not waiter.done():
                waiter.set_result(False)
        if heap:
            self._arm(heap[0][0])

    def _compact(self) -> None:
        self._heap = [entry for entry in self._heap if not entry[2].done()]
        heapq.heapify(self._heap)


class Connection(asyncio.Protocol):
    """The socket side is driven by the loop; the request side by `send` and the waits."""

    __slots__ = (
        "_chunks",
        "_collect",
        "_head",
        "_loop",
        "_parser",
        "_paused",
        "_pool",
        "_size",
        "_until_close",
        "_waiter",
        "closed",
        "done",
        "error",
        "got_bytes",
        "headers",
        "idle",
        "idle_since",
        "in_use",
        "keep_alive",
        "sent",
        "status",
        "transport",
        "uses",
    )

    def __init__(self, pool: Pool) -> None:
        self._pool = pool
        self._loop = pool.loop
        self._parser = httptools.HttpResponseParser(self)
        self.transport: asyncio.Transport | None = None
        self._waiter: asyncio.Future[bool] | None = None
        self._chunks: list[bytes] = []
        self._size = 0
        self._paused = False
        self._collect = False  # the reader wants the whole body: no pausing, no per-piece wakeups
        self._head = False  # the request was HEAD: a response without a body
        self._until_close = False  # the body ends with the connection
        self.status = 0
        self.headers = Headers()
        self.keep_alive = False
        self.done = False  # the response is complete
        self.error: str | None = None  # why the response cannot be completed
        self.got_bytes = False  # anything arrived for the current request
        self.sent = False  # the current request was handed to the socket
        self.closed = False
        self.in_use = False
        self.idle = False  # in its pool's idle list
        self.idle_since = 0.0
        self.uses = 0  # requests sent, so 1+ means the connection was reused

    # ---- the request side ---------------------------------------------------------------------

    def send(self, data: bytes, *, collect: bool, head: bool = False) -> None:
        """Write a whole request and get ready for its response."""
        self.status = 0
        self.headers = Headers()
        self.keep_alive = False
        self.done = False
        self.error = None
        self.got_bytes = False
        self.sent = False
        self._chunks = []
        self._size = 0
        self._collect = collect
        self._head = head
        self._until_close = False
        self.uses += 1
        if self.closed or self.transport is None or self.transport.is_closing():
            self.error = "connection closed before the request was sent"
            return
        self.sent = True
        self.transport.write(data)

    async def wait(self, deadline: float | None) -> bool:
        """Until the parser or the socket has news; False when `deadline` (loop time) passed."""
        waiter: asyncio.Future[bool] = self._loop.create_future()
        self._waiter = waiter
        if deadline is None:
            try:
                return await waiter
            finally:
                self._waiter = None
        deadlines = self._pool.deadlines
        deadlines.add(deadline, waiter)
        try:
            return await waiter
        finally:
            self._waiter = None
            deadlines.finished()

    async def wait_headers(self, deadline: float | None) -> bool:
        """True once status and headers are known or the response failed; False on the deadline."""
        while not self.status and self.error is None:
            if not await self.wait(deadline):
                return False
        return True

    async def wait_done(self, deadline: float | None) -> bool:
        """True once the body is complete or the response failed; False on the deadline."""
        self._collect = True  # `collect()` inline: once per request
        if self._paused:
            self._resume()
        # `wait` inline (every whole-body request waits here): a coroutine fewer per request
        deadlines = None if deadline is None else self._pool.deadlines
        while not self.done and self.error is None:
            waiter: asyncio.Future[bool] = self._loop.create_future()
            self._waiter = waiter
            if deadlines is not None:
                deadlines.add(deadline, waiter)  # type: ignore[arg-type] # not None here
            try:
                woke = await waiter
            finally:
                self._waiter = None
                if deadlines is not None:
                    deadlines.finished()
            if not woke:
                return False
        return True

    def collect(self) -> None:
        """From now on the body is read whole: wake only at its end, never pause for it."""
        self._collect = True
        if self._paused:
            self._resume()

    def take(self) -> bytes:
        """Every body byte buffered so far, at once (b"" when none)."""
        chunks = self._chunks
        if not chunks:
            return b""
        data = chunks[0] if len(chunks) == 1 else b"".join(chunks)
        self._chunks = []
        self._size = 0
        if self._paused:
            self._resume()
        return data

    @property
    def buffered(self) -> bool:
        return bool(self._chunks)

    @property
    def reusable(self) -> bool:
        return self.done and self.keep_alive and self.error is None and not self.closed

    def close(self) -> None:
        self.closed = True
        if self.transport is not None:
            self.transport.close()

    def abort(self) -> None:
        """Drop at once: what is unread is unwanted, and a graceful close would wait for it."""
        self.closed = True
        if self.transport is not None:
            self.transport.abort()

    def _resume(self) -> None:
        self._paused = False
        if self.transport is not None and not self.closed:
            self.transport.resume_reading()

    def _wake(self) -> None:
        waiter = self._waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(True)

    # ---- asyncio.Protocol ---------------------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # uvloop's transports implement asyncio.Transport without deriving from it
        self.transport = cast(asyncio.Transport, transport)

    def data_received(self, data: bytes) -> None:
        if not self.in_use or self.done or self.error is not None:
            # nothing was asked (a stray answer, an idle timeout notice) or the answer is over:
            # what follows cannot be matched to a request, so the connection is of no more use
            self.error = self.error or "unexpected data from upstream"
            self.abort()
            return
        self.got_bytes = True
        try:
            self._parser.feed_data(data)
        except (httptools.HttpParserError, httptools.HttpParserUpgrade) as exc:
            self.error = f"invalid HTTP response from upstream: {exc!r}"
            self.abort()
            self._wake()

    def eof_received(self) -> bool | None:
        return None  # close our side too; connection_lost follows

    def connection_lost(self, exc: Exception | None) -> None:
        by_us = self.closed  # close() or abort(): the end of the socket is not the server's
        self.closed = True
        if self.in_use and not self.done and self.error is None:
            if by_us:
                self.error = "the connection was closed by the client"
            elif self._until_close and exc is None:
                self.done = True  # a body delimited by the end of the connection
            elif exc is None:
                self.error = "upstream closed the connection"
            else:
                self.error = f"upstream connection lost: {exc!r}"
        self._wake()
        self._pool.lost(self)

    # ---- httptools callbacks ------------------------------------------------------------------

    def on_message_begin(self) -> None:
        if self.done:
            # a second answer to one request: stop the parser before it overwrites the first
            raise _StrayResponse

    def on_header(self, name: bytes, value: bytes | None) -> None:
        # once per response header: names from a table (an upstream sends the same few on every
        # response) and `Headers.add` inline, a Python call fewer each
        key = _NAMES.get(name)
        if key is None:
            key = _name(name)
        text = value.decode("utf-8", "surrogateescape") if value else ""
        headers = self.headers
        old = _dict_get(headers, key)
        headers[key] = text if old is None else f"{old}, {text}"

    def on_headers_complete(self) -> None:
        status = self._parser.get_status_code()
        if status < 200:
            self.headers = Headers()  # an interim answer (100 Continue): the real one follows
            return
        self.status = status
        self.keep_alive = self._parser.should_keep_alive()
        if self._head:
            # httptools cannot be told a HEAD answer has no body; it is complete here, and the
            # parser's expectation of a body makes the connection unusable afterwards
            self.keep_alive = False
            self.done = True
        elif status not in (204, 304):
            # the names are stored lower-cased: the plain dict's lookups, not `Headers`' own
            headers = self.headers
            chunked = "chunked" in _dict_get(headers, "transfer-encoding", "").lower()
            self._until_close = not chunked and _dict_get(headers, "content-length") is None
        self._wake()

    def on_body(self, body: bytes) -> None:
        self._chunks.append(body)
        if not self._collect:
            self._size += len(body)
            if self._size > HIGH_WATER and not self._paused and self.transport is not None:
                self._paused = True
                self.transport.pause_reading()
            self._wake()

    def on_message_complete(self) -> None:
        if self.status:  # not the end of an interim answer
            self.done = True
            self._wake()
