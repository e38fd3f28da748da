"""The one upstream HTTP client every HTTP provider shares.

headway's own HTTP/1.1 client: a keep-alive pool per upstream origin (`pool.py`) of
`asyncio.Protocol` connections parsed by `httptools` (`conn.py`), with request bytes cached
wherever they repeat (`encode.py`). aiohttp's client cost ~140-280 us of CPU per request here,
more than all of headway's own code (docs/performance.md, 3.1); this one ~23 us (uvloop, sequential
calls to the bench upstream). It runs on uvloop and on the default asyncio loop alike.

One pool per origin, sized by the first provider that uses it (`ProviderSection.max_connections`).
Pools are created on first use, inside the running event loop, so building a `Transport` does no
I/O and a Gateway can be constructed outside a loop.

Failures come out as headway errors and nothing else: a timeout is `UpstreamTimeout`, a refused or
dropped connection `UpstreamError`, and a body that breaks off after the headers arrived
`StreamInterrupted`. Statuses are not judged here; the provider's wire format classifies them.

A request is sent a second time, on a fresh connection, only when it cannot have been processed
the first time: when the pooled connection it was given turned out closed before the request was
written, or when a *reused* connection ended without a single response byte and the request is
safe to repeat (an idempotent method, or an `Idempotency-Key` header). The second case is the
race of a server closing an idle keep-alive connection just as a request is sent; a POST there is
not repeated, because a server that read it may have acted on it (and billed it). Its failure is
an ordinary `UpstreamError`, which the routing layer's retry and fallback handle.
"""

from __future__ import annotations

import asyncio
import ssl
from collections.abc import Coroutine, Mapping
from dataclasses import dataclass
from types import TracebackType
from typing import Any

import orjson

from headway.errors import StreamInterrupted, UpstreamError, UpstreamTimeout
from headway.providers.base import HttpCall
from headway.services import Services
from headway.transport.conn import Connection
from headway.transport.encode import Origin, header_block, parse_origin, request_line, with_body
from headway.transport.pool import ConnectTimeout, Pool

_MAX_CACHED = 1024
_IDEMPOTENT = frozenset({"GET", "HEAD", "OPTIONS", "PUT", "DELETE", "TRACE"})


@dataclass(slots=True)
class HttpResult:
    status: int
    headers: Mapping[str, str]  # case-insensitive (`headway.transport.headers.Headers`)
    body: bytes


class DeadlineTimeout(UpstreamTimeout):
    """A request's own `timeout` ran out (not the connect timeout): what a caller that passed its
    deadline as `timeout` may take as that deadline passing (`HttpProvider.chat_bounded`)."""


def _timed_out(what: str, timeout: float | None) -> str:
    if timeout is None:
        return f"upstream did not {what}: connect timed out"
    return f"upstream did not {what} within {timeout:.3g}s"


class UpstreamStream:
    """An open response whose status and headers are known and whose body is read in chunks."""

    __slots__ = ("_conn", "_loop", "_pool", "headers", "status")

    def __init__(self, pool: Pool, conn: Connection) -> None:
        self._pool = pool
        self._loop = pool.loop
        self._conn: Connection | None = conn
        self.status: int = conn.status
        self.headers: Mapping[str, str] = conn.headers

    async def read(self, timeout: float | None = None) -> bytes:
        """The rest of the body at once (error responses)."""
        conn = self._conn
        if conn is None:
            return b""
        deadline = None if timeout is None else self._loop.time() + timeout
        if not await conn.wait_done(deadline):
            raise UpstreamTimeout("upstream response body timed out")
        if not conn.done:
            raise UpstreamError(f"upstream response body failed: {conn.error}")
        return conn.take()

    async def next_chunk(self, timeout: float | None = None) -> bytes:
        """Every body byte that arrived since the last call (at least one), or b"" at the end
        of the body. `timeout` bounds this read alone, which is how stall and TTFT limits are
        enforced."""
        conn = self._conn
        if conn is None:
            return b""
        if conn.buffered:
            return conn.take()
        if conn.done:
            return b""
        deadline = None if timeout is None else self._loop.time() + timeout
        while True:
            if conn.error is not None:
                raise StreamInterrupted(f"upstream stream broke: {conn.error}")
            if not await conn.wait(deadline):
                raise UpstreamTimeout("no data from upstream in time")
            if conn.buffered:
                return conn.take()
            if conn.done:
                return b""

    async def drain(self, timeout: float) -> None:
        """Read what is left of a finished body (the chunked terminator), so the connection can
        go back to the pool instead of being closed."""
        conn = self._conn
        if conn is None:
            return
        deadline = self._loop.time() + timeout
        while not conn.done and conn.error is None:
            conn.take()
            if not await conn.wait(deadline):
                return  # the connection is closed instead of reused; nothing is lost

    def close(self) -> None:
        """Back to the pool when the body was read to the end, otherwise closed."""
        conn, self._conn = self._conn, None
        if conn is not None:
            self._pool.release(conn)

    # async iteration without per-read limits, for callers that need none
    def __aiter__(self) -> UpstreamStream:
        return self

    async def __anext__(self) -> bytes:
        data = await self.next_chunk()
        if not data:
            raise StopAsyncIteration
        return data


class _StreamContext:
    __slots__ = ("_open", "_stream")

    def __init__(self, opener: Coroutine[Any, Any, UpstreamStream]) -> None:
        self._open = opener
        self._stream: UpstreamStream | None = None

    async def __aenter__(self) -> UpstreamStream:
        self._stream = await self._open
        return self._stream

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self._stream is not None:
            self._stream.close()


@dataclass(slots=True)
class _Base:
    origin: Origin
    pool: Pool


@dataclass(slots=True, frozen=True)
class PoolStats:
    open: int  # connections counted against the limit: busy, idle and connecting
    idle: int


class Transport:
    """Pooled upstream HTTP. Use `transport_for(services)` to get the Gateway's instance.

    `ssl_context` verifies https upstreams; the default is the system's trust store."""

    def __init__(
        self,
        *,
        connect_timeout: float = 5.0,
        keepalive_timeout: float = 60.0,
        default_max_connections: int = 256,
        ssl_context: ssl.SSLContext | None = None,
    ) -> None:
        self.connect_timeout = connect_timeout
        self.keepalive_timeout = keepalive_timeout
        self.default_max_connections = default_max_connections
        self._ssl = ssl_context
        self._pools: dict[str, Pool] = {}  # origin -> pool
        self._bases: dict[str, _Base] = {}  # base URL -> its origin and pool
        #: (base, method, path, header items, has body, query...) -> (head bytes, safe to repeat)
        self._heads: dict[tuple[Any, ...], tuple[bytes, bool]] = {}
        self._closed = False

    # ---- pools and request bytes --------------------------------------------------------------

    def _base(self, base_url: str, max_connections: int | None) -> _Base:
        base = self._bases.get(base_url)
        if base is not None:
            return base
        if self._closed:
            raise UpstreamError("the upstream transport is closed")
        origin = parse_origin(base_url)
        pool = self._pools.get(origin.key)
        if pool is None or pool.closed:
            if origin.tls and self._ssl is None:
                self._ssl = ssl.create_default_context()  # loads the trust store: once
            pool = Pool(
                origin.host,
                origin.port,
                self._ssl if origin.tls else None,
                limit=max_connections or self.default_max_connections,
                connect_timeout=self.connect_timeout,
                keepalive_timeout=self.keepalive_timeout,
            )
            self._pools[origin.key] = pool
        base = self._bases[base_url] = _Base(origin, pool)
        return base

    def _request_bytes(
        self, base_url: str, base: _Base, call: HttpCall, headers: Mapping[str, str]
    ) -> tuple[bytes, bool]:
        """The request to write, and whether it may be sent twice."""
        # one cache for the request line and the header block: one key and one lookup per
        # request (the line and the headers repeat together: one provider's calls)
        has_body = call.body is not None
        items = tuple(headers.items())
        key: tuple[Any, ...] = (base_url, call.method, call.path, items, has_body)
        if call.query:
            key += tuple(f"{k}={v}" for k, v in call.query.items())
        cached = self._heads.get(key)
        if cached is None:
            # checked in the order the request is built: the line, the body, the headers
            line = request_line(base.origin, call.method, call.path, call.query)
            body = orjson.dumps(call.body) if has_body else None
            block, keyed = header_block(headers, has_body)
            cached = (line + block, keyed or call.method in _IDEMPOTENT)
            if len(self._heads) >= _MAX_CACHED:
                self._heads.clear()
            self._heads[key] = cached
        else:
            body = orjson.dumps(call.body) if has_body else None
        return with_body(cached[0], call.method, body), cached[1]

    async def _exchange(
        self,
        base_url: str,
        base: _Base,
        call: HttpCall,
        headers: Mapping[str, str],
        deadline: float | None,
        *,
        whole: bool,
    ) -> tuple[Pool, Connection]:
        """Send the request and wait for its whole answer (`whole`) or its head. Raises
        `TimeoutError` on the deadline, `UpstreamError` for the rest."""
        pool = base.pool
        data, safe = self._request_bytes(base_url, base, call, headers)
        head = call.method == "HEAD"
        for attempt in (1, 2):
            conn = pool.take_idle() or await pool.acquire(deadline)  # the first: no coroutine
            conn.send(data, collect=whole, head=head)
            try:
                if whole:
                    answered = await conn.wait_done(deadline)
                else:
                    answered = await conn.wait_headers(deadline)
            except BaseException:  # cancelled: the answer is unwanted, so is the connection
                pool.release(conn)
                raise
            if not answered:
                pool.release(conn)
                raise TimeoutError
            if conn.done or (conn.status and not whole):
                return pool, conn
            pool.release(conn)
            repeat = not conn.sent or (conn.uses > 1 and not conn.got_bytes and safe)
            if attempt == 1 and repeat:
                continue
            raise UpstreamError(f"upstream request failed: {conn.error}")
        raise AssertionError("unreachable")

    # ---- requests -----------------------------------------------------------------------------

    async def request(
        self,
        call: HttpCall,
        base_url: str,
        headers: Mapping[str, str],
        *,
        timeout: float | None = None,
        max_connections: int | None = None,
    ) -> HttpResult:
        """Send `call` and read the whole response. `timeout`: seconds for everything; when
        they run out, `DeadlineTimeout` (a connect timeout that ran out first: `UpstreamTimeout`)."""
        base = self._base(base_url, max_connections)
        if timeout is not None and timeout <= 0:
            raise UpstreamTimeout("deadline passed before the request was sent")
        deadline = None if timeout is None else base.pool.loop.time() + timeout
        try:
            pool, conn = await self._exchange(base_url, base, call, headers, deadline, whole=True)
        except ConnectTimeout:
            raise UpstreamTimeout(_timed_out("answer", timeout)) from None
        except TimeoutError:
            raise DeadlineTimeout(_timed_out("answer", timeout)) from None
        result = HttpResult(conn.status, conn.headers, conn.take())
        pool.release(conn)
        return result

    def stream(
        self,
        call: HttpCall,
        base_url: str,
        headers: Mapping[str, str],
        *,
        timeout: float | None = None,
        max_connections: int | None = None,
    ) -> _StreamContext:
        """`async with transport.stream(...) as up:` -> an `UpstreamStream` with `status` and
        `headers` set; read the body with `up.next_chunk(timeout)` or `async for`. `timeout`
        bounds the wait for the response headers only."""
        return _StreamContext(self._open(call, base_url, headers, timeout, max_connections))

    async def _open(
        self,
        call: HttpCall,
        base_url: str,
        headers: Mapping[str, str],
        timeout: float | None,
        max_connections: int | None,
    ) -> UpstreamStream:
        base = self._base(base_url, max_connections)
        if timeout is not None and timeout <= 0:
            raise UpstreamTimeout("deadline passed before the request was sent")
        deadline = None if timeout is None else base.pool.loop.time() + timeout
        try:
            pool, conn = await self._exchange(base_url, base, call, headers, deadline, whole=False)
        except TimeoutError:
            raise UpstreamTimeout(_timed_out("send headers", timeout)) from None
        return UpstreamStream(pool, conn)

    def pool_stats(self, base_url: str) -> PoolStats:
        """How many connections the pool serving `base_url` holds (zeros before its first use)."""
        base = self._bases.get(base_url)
        if base is None:
            return PoolStats(0, 0)
        return PoolStats(base.pool.open_connections, base.pool.idle_connections)

    async def aclose(self) -> None:
        self._closed = True
        pools = list(self._pools.values())
        self._pools.clear()
        self._bases.clear()
        for pool in pools:
            pool.close()
        if pools:
            await asyncio.sleep(0)  # let the closed sockets report their end to their owners


def transport_for(services: Services) -> Transport:
    """The Gateway's shared transport, created on first request for it."""
    transport = services.transport
    if transport is None:
        transport = Transport()
        services.transport = transport
    if not isinstance(transport, Transport):
        raise TypeError(f"services.transport is a {type(transport).__name__}, not a Transport")
    return transport
