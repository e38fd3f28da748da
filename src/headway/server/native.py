"""headway's own HTTP/1.1 server connection: `asyncio.Protocol` + `httptools`, calling the app
directly (`App.answer`), without ASGI message dicts.

Why: uvicorn + ASGI cost ~69 us of CPU per request on this machine, a third of an exact-cache hit;
this layer does only what headway needs. One `HttpConnection` per client connection:

- Requests are parsed by httptools and answered one at a time and in order by the connection's
  task, which waits for the next request between answers (pipelined requests wait in `queue`;
  reading pauses when too many wait). One task per connection, not per request: asyncio keeps
  every task in a WeakSet, in Python on 3.11, ~5k instructions per task.
- The body is collected while the app authenticates; `App.answer` reads it through
  `_Request.read`, which sends `100 Continue` first when the client asked for it. Bodies over the
  limit are dropped as they arrive and answered with the app's 413 (which closes).
- A plain answer leaves in one `transport.write` (head + body). A stream is chunked; chunks the
  app produces during one event-loop iteration are joined into one write by a flush at the end
  of the iteration, one `call_soon` for all connections (`Shared.flush_later`; per-chunk socket
  writes were the largest single cost of a stream), and the pump waits while the transport's
  buffer is over its high-water mark.
- A client that goes away mid-stream cancels the pump (so the upstream call is cancelled and its
  reservations settle at once); one that goes away before its body arrived stops the request.
- Malformed requests get a plain 400 (431 for an oversized head) and the connection closes.
"""

from __future__ import annotations

import asyncio
import logging
from collections import deque
from dataclasses import dataclass, field
from typing import Protocol, cast

import httptools

from headway.server import native_wire as wire
from headway.server.app import BodyReader, ClientGone, close_stream, too_large
from headway.server.http import Answer, Headers, Response, StreamResponse
from headway.server.native_wire import NAMES as _NAMES
from headway.server.native_wire import header_name as _name
from headway.server.native_wire import method_name as _method
from headway.server.relay import Relay

log = logging.getLogger("headway.server")

#: request line + headers, bytes; more is answered with 431 (uvicorn/h11 allow 16 KiB)
MAX_HEAD_BYTES = 64 * 1024
#: pipelined requests waiting for their turn before reading pauses
MAX_PIPELINE = 32
#: buffered stream bytes that are written at once instead of at the end of the loop iteration
FLUSH_AT = 64 * 1024


class Answering(Protocol):
    """What the server needs of an app (`headway.server.app.App` is one)."""

    async def answer(
        self,
        method: str,
        path: str,
        query_string: bytes,
        headers: dict[str, str],
        read_body: BodyReader,
    ) -> tuple[Answer, str, float]: ...

    def head(self, answer: Answer, request_id: str, received: float) -> Headers: ...

    def stream_failed(self, answer: StreamResponse, request_id: str, exc: Exception) -> bytes: ...


@dataclass(slots=True, eq=False)
class Shared:
    """What every connection of one server uses; the server reads `connections` to shut down."""

    app: Answering
    loop: asyncio.AbstractEventLoop
    max_body_bytes: int
    connections: set[HttpConnection] = field(default_factory=set)
    #: set by the server when the last connection closes (graceful shutdown waits on it)
    all_closed: asyncio.Event = field(default_factory=asyncio.Event)
    #: connections with stream output buffered in this loop iteration, flushed at its end
    unflushed: list[HttpConnection] = field(default_factory=list)

    def flush_later(self, conn: HttpConnection) -> None:
        """Have `conn`'s buffered output written once the current loop iteration's callbacks
        have run. One callback per iteration flushes every connection that buffered output: with
        many open streams most iterations relay events of several, and a callback of their own
        (a handle, a bound method and a context copy) per event each was measurable."""
        pending = self.unflushed
        if not pending:
            self.loop.call_soon(self._flush_all)
        pending.append(conn)

    def _flush_all(self) -> None:
        pending, self.unflushed = self.unflushed, []
        for conn in pending:
            conn.flush()


class _HeadTooLarge(Exception):
    pass


class _Request:
    __slots__ = (
        "body",
        "complete",
        "conn",
        "error",
        "expect",
        "headers",
        "http10",
        "keep_alive",
        "method",
        "parts",
        "path",
        "query",
        "size",
        "too_large",
        "waiter",
    )

    def __init__(
        self,
        conn: HttpConnection,
        method: str,
        path: str,
        query: bytes,
        headers: dict[str, str],
        keep_alive: bool,
        http10: bool,
    ) -> None:
        self.conn = conn
        self.method = method
        self.path = path
        self.query = query
        self.headers = headers
        self.keep_alive = keep_alive
        self.http10 = http10
        expect = headers.get("expect")
        self.expect = expect is not None and expect.lower() == "100-continue" and not http10
        self.parts: list[bytes] = []
        self.size = 0
        self.body = b""
        self.complete = False
        self.too_large = False
        self.waiter: asyncio.Future[None] | None = None
        #: a complete answer of the server's own, sent in this request's turn (malformed input)
        self.error = b""

    async def read(self, limit: int) -> bytes:
        """The `BodyReader` handed to `App.answer`."""
        if not self.complete and not self.too_large:
            conn = self.conn
            if conn.lost:
                raise ClientGone
            if self.expect:
                self.expect = False
                conn.transport.write(wire.CONTINUE)
            self.waiter = conn.loop.create_future()
            await self.waiter
        if self.too_large or self.size > limit:
            raise too_large(limit)
        return self.body

    def wake(self) -> None:
        waiter = self.waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)


def _error_request(conn: HttpConnection, answer: bytes) -> _Request:
    req = _Request(conn, "", "", b"", {}, False, False)
    req.error = answer
    return req


class HttpConnection(asyncio.Protocol):
    def __init__(self, shared: Shared) -> None:
        self.shared = shared
        self.app = shared.app
        self.loop = shared.loop
        self.parser = httptools.HttpRequestParser(self)
        self.transport: asyncio.Transport = None  # type: ignore[assignment]  # set at connection_made
        # the request being parsed
        self.url = b""
        self.headers: dict[str, str] = {}
        self.head_bytes = 0
        self.in_head = False
        self.parsing: _Request | None = None
        #: parsed requests in order; queue[0] is the one being answered while `answering`
        self.queue: deque[_Request] = deque()
        #: the connection's task (`_run`): it answers the requests and waits between them
        self.task: asyncio.Task[None] | None = None
        self.answering = False
        #: the server closed the connection: no request will follow
        self.ended = False
        #: what the task awaits between requests: True for the next one, False to end
        self.next: asyncio.Future[bool] | None = None
        self.streaming = False
        self.lost = False
        #: close once the current answer is out (server shutdown, unparsable input)
        self.closing = False
        self.broken = False
        self.reading_paused = False
        # coalesced stream output
        self.out: list[bytes] = []
        self.out_size = 0
        self.flush_pending = False
        self.write_paused = False
        self.drained: asyncio.Future[None] | None = None
        self.idle_since = self.loop.time()

    # ---- transport events ---------------------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)  # uvloop's does not subclass it
        self.shared.connections.add(self)

    def connection_lost(self, exc: Exception | None) -> None:
        self.lost = True
        shared = self.shared
        shared.connections.discard(self)
        if not shared.connections:
            shared.all_closed.set()
        if self.answering:
            req = self.queue[0]
            waiter = req.waiter
            if waiter is not None and not waiter.done():
                waiter.set_exception(ClientGone())
            elif self.streaming and self.task is not None:
                self.task.cancel()  # nobody reads the stream: stop the upstream call now
        self._stop_waiting()
        drained = self.drained
        if drained is not None and not drained.done():
            drained.cancel()

    def pause_writing(self) -> None:
        self.write_paused = True

    def resume_writing(self) -> None:
        self.write_paused = False
        drained = self.drained
        if drained is not None and not drained.done():
            drained.set_result(None)

    def data_received(self, data: bytes) -> None:
        if self.broken:
            return
        if self.in_head:  # a head arriving in pieces: bound what httptools buffers
            self.head_bytes += len(data)
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserUpgrade:
            # no upgrades (WebSocket, h2c): answer what was parsed, then close
            self.broken = self.closing = True
            req = self.parsing
            if req is not None:
                req.complete = True
                req.wake()
        except httptools.HttpParserError:
            if self.head_bytes > MAX_HEAD_BYTES:
                self._reject(wire.plain(431, "Request header fields too large."))
            else:
                self._reject(wire.plain(400, "Invalid HTTP request."))

    def _reject(self, answer: bytes) -> None:
        self.broken = True
        self._pause_reading()
        if not self.answering:
            self._write_and_close(answer)
        else:  # answered in its turn, after the requests before it
            self.queue.append(_error_request(self, answer))

    # ---- httptools callbacks ------------------------------------------------------------------

    def on_message_begin(self) -> None:
        self.url = b""
        self.headers = {}
        self.head_bytes = 0
        self.in_head = True

    def on_url(self, url: bytes) -> None:
        self.url += url
        self.head_bytes += len(url)

    def on_header(self, name: bytes, value: bytes) -> None:
        self.head_bytes += len(name) + len(value)
        if self.head_bytes > MAX_HEAD_BYTES:
            raise _HeadTooLarge
        key = _NAMES.get(name)
        if key is None:
            key = _name(name)
        text = value.decode("latin-1")
        headers = self.headers
        if key in headers:
            text = f"{headers[key]}, {text}"
        headers[key] = text

    def on_headers_complete(self) -> None:
        self.in_head = False
        if self.head_bytes > MAX_HEAD_BYTES:
            raise _HeadTooLarge
        parser = self.parser
        path, query = wire.target(self.url)
        req = _Request(
            self,
            _method(parser.get_method()),
            path,
            query,
            self.headers,
            parser.should_keep_alive(),
            parser.get_http_version() == "1.0",
        )
        self.parsing = req
        self.queue.append(req)
        if not self.answering:
            self._start()
        elif len(self.queue) > MAX_PIPELINE:
            self._pause_reading()

    def on_body(self, body: bytes) -> None:
        req = self.parsing
        if req is None or req.too_large:
            return
        req.size += len(body)
        if req.size > self.shared.max_body_bytes:
            # drop it: the answer is a 413 that closes the connection
            req.too_large = True
            req.parts.clear()
            self._pause_reading()
            req.wake()
            return
        req.parts.append(body)

    def on_message_complete(self) -> None:
        req = self.parsing
        if req is None:
            return
        self.parsing = None
        req.complete = True
        parts = req.parts
        if parts and not req.too_large:
            req.body = parts[0] if len(parts) == 1 else b"".join(parts)
            req.parts = []
        req.wake()

    # ---- answering ----------------------------------------------------------------------------

    def _start(self) -> None:
        """Have the connection's task answer queue[0]: wake it when it waits for a request,
        start it when there is none (the first request), or leave it to go on (`_done`)."""
        req = self.queue[0]
        if req.error:
            self._write_and_close(req.error)
            return
        self.answering = True
        waiting = self.next
        if waiting is not None:
            self.next = None
            waiting.set_result(True)
        elif self.task is None:
            self.task = self.loop.create_task(self._run())

    async def _run(self) -> None:
        try:
            while True:
                await self._answer(self.queue[0])
                if self.answering:
                    continue  # a pipelined request, started by `_done`
                if self.lost or self.ended:
                    return
                waiting = self.next = self.loop.create_future()
                if not await waiting:
                    return
        finally:
            self.task = None
            self.next = None

    async def _answer(self, req: _Request) -> None:
        keep = False
        try:
            try:
                answer, request_id, received = await self.app.answer(
                    req.method, req.path, req.query, req.headers, req.read
                )
            except ClientGone:
                return
            if self.lost:  # gone while the handler worked: nobody to answer
                if isinstance(answer, StreamResponse):
                    await close_stream(answer)
                return
            # a body that did not arrive whole was dropped (413, or answered without reading)
            keep = req.keep_alive and req.complete and not self.closing
            if isinstance(answer, StreamResponse):
                keep = await self._stream(req, answer, request_id, received, keep)
            else:
                keep = self._send(req, answer, request_id, received, keep)
        except Exception:  # noqa: BLE001 - a bug must cost one connection, never the server
            log.exception("unhandled error answering %s %s", req.method, req.path)
            keep = False
            if not self.lost:
                self.flush()
                self.transport.abort()
        finally:
            self._done(keep)

    def _send(
        self, req: _Request, answer: Response, request_id: str, received: float, keep: bool
    ) -> bool:
        body = answer.body
        head, keep = wire.encode_head(
            answer.status,
            self.app.head(answer, request_id, received),
            b"content-length: %d\r\n" % len(body),
            keep,
        )
        if req.method == "HEAD" or not body:
            self.transport.write(head)
        elif len(body) < FLUSH_AT:
            self.transport.write(head + body)  # one write: one segment for a small answer
        else:
            self.transport.writelines((head, body))
        return keep

    async def _stream(
        self, req: _Request, answer: StreamResponse, request_id: str, received: float, keep: bool
    ) -> bool:
        chunked = not req.http10  # HTTP/1.0 has no chunks: the body ends when the connection does
        try:
            head, keep = wire.encode_head(
                answer.status,
                self.app.head(answer, request_id, received),
                wire.CHUNKED if chunked else b"",
                keep and chunked,
            )
        except BaseException:
            await close_stream(answer)  # the body never started: release the upstream stream now
            raise
        self.streaming = True
        self._buffer(head)
        put = self._put_chunk if chunked else self._put
        tail = b""
        try:
            chunks = answer.chunks
            if isinstance(chunks, Relay):
                await chunks.pump(put)  # the same frames, without a generator step for each
            else:
                async for data in chunks:
                    wait = put(data)
                    if wait is not None:
                        await wait
        except Exception as exc:  # noqa: BLE001 - see App.stream_failed
            tail = self.app.stream_failed(answer, request_id, exc)
        finally:
            self.streaming = False
            await close_stream(answer)
        if tail:
            self.out.append(wire.chunk(tail) if chunked else tail)
        if chunked:
            self.out.append(wire.LAST_CHUNK)
        self.flush()
        return keep

    def _put_chunk(self, data: bytes) -> asyncio.Future[None] | None:
        """Buffer one streamed frame as an HTTP chunk; what to await before the next (the
        transport draining), or None. Synchronous: it runs once per streamed frame, and only
        a full buffer needs waiting for."""
        if not data:
            return None  # an empty chunk would end a chunked body
        return self._put(b"%x\r\n%b\r\n" % (len(data), data))  # `wire.chunk` inlined

    def _put(self, data: bytes) -> asyncio.Future[None] | None:
        """`_put_chunk` for a body without chunks (HTTP/1.0)."""
        if not data:
            return None
        self.out.append(data)
        size = self.out_size = self.out_size + len(data)
        if size >= FLUSH_AT or self.write_paused:
            return self._drain()
        if not self.flush_pending:
            self.flush_pending = True
            self.shared.flush_later(self)
        return None

    def _buffer(self, data: bytes) -> None:
        self.out.append(data)
        self.out_size += len(data)
        if self.out_size >= FLUSH_AT:
            self.flush()
        elif not self.flush_pending:
            self.flush_pending = True
            self.shared.flush_later(self)

    def flush(self) -> None:
        """Write the buffered stream output now (one write, however many chunks)."""
        self.flush_pending = False
        out = self.out
        if not out:
            return
        data = out[0] if len(out) == 1 else b"".join(out)
        out.clear()
        self.out_size = 0
        if not self.lost:
            self.transport.write(data)

    def _drain(self) -> asyncio.Future[None] | None:
        """Write what is buffered now; what to await while the transport's buffer is over its
        mark (None: nothing to wait for)."""
        self.flush()
        if self.write_paused and not self.lost:
            drained = self.drained = self.loop.create_future()
            return drained
        return None

    def _done(self, keep: bool) -> None:
        self.answering = False
        if self.queue:
            self.queue.popleft()
        if self.lost:
            return
        if not keep or self.closing:
            self._close()
        elif self.queue:
            if self.reading_paused and len(self.queue) <= MAX_PIPELINE and not self.broken:
                self._resume_reading()
            self._start()
        else:
            self.idle_since = self.loop.time()
            if self.reading_paused and not self.broken:
                self._resume_reading()

    # ---- connection -----------------------------------------------------------------------------

    @property
    def idle(self) -> bool:
        return not self.answering and not self.queue

    def shutdown(self) -> None:
        """Stop taking requests: close now when idle, else after the current answer."""
        self.closing = True
        if self.idle:
            self._close()

    def abort(self) -> None:
        """Graceful shutdown ran out of time: cancel what is running and drop the connection."""
        if self.task is not None:
            self.task.cancel()
        if not self.lost:
            self.transport.abort()

    def _write_and_close(self, answer: bytes) -> None:
        if not self.lost:
            self.flush()
            self.transport.write(answer)
            self.transport.close()
        self._stop_waiting()

    def _close(self) -> None:
        if not self.lost:
            self.flush()
            self.transport.close()
        self._stop_waiting()

    def _stop_waiting(self) -> None:
        """No request will come: end the connection's task if it waits for one."""
        self.ended = True
        waiting = self.next
        if waiting is not None:
            self.next = None
            if not waiting.done():
                waiting.set_result(False)

    def _pause_reading(self) -> None:
        if not self.reading_paused and not self.lost:
            self.reading_paused = True
            self.transport.pause_reading()

    def _resume_reading(self) -> None:
        if self.reading_paused and not self.lost:
            self.reading_paused = False
            self.transport.resume_reading()
