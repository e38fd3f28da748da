"""Keep-alive connections to one upstream origin.

At most `limit` connections are open at once, counting those still connecting. When all are
busy, requests queue first come, first served: a released connection, or the right to open a new
one when a connection closes, goes to the oldest waiter still waiting, never to whoever asks
next. Idle connections are reused most recently used first (the least likely to have been closed
by the server in the meantime), and the oldest are closed after `keepalive_timeout` by one timer
per pool rather than one per connection.

A connection the server closed while it was idle is dropped the moment the loop reports it, and
skipped at acquisition if that report is still pending. What to do when it was closed between
acquisition and the answer is the caller's decision (see `headway.transport.http`).

Timeouts surface as the built-in `TimeoutError`, for the caller to name what timed out (its
subclass `ConnectTimeout` when the connect timeout ran out before the caller's deadline);
failures to connect as `UpstreamError`.
"""

from __future__ import annotations

import asyncio
import ssl
from collections import deque

from headway.errors import UpstreamError
from headway.transport.conn import Connection, Deadlines


class ConnectTimeout(TimeoutError):
    """The connect timeout ran out, before the caller's own deadline."""


def _expire(waiter: asyncio.Future[Connection | bool]) -> None:
    if not waiter.done():
        waiter.set_result(False)


class Pool:
    __slots__ = (
        "_all",
        "_idle",
        "_open",
        "_sweeper",
        "_waiters",
        "closed",
        "connect_timeout",
        "deadlines",
        "host",
        "keepalive_timeout",
        "limit",
        "loop",
        "port",
        "server_hostname",
        "ssl",
    )

    def __init__(
        self,
        host: str,
        port: int,
        ssl_context: ssl.SSLContext | None,
        *,
        limit: int,
        connect_timeout: float,
        keepalive_timeout: float,
    ) -> None:
        self.loop = asyncio.get_running_loop()
        self.host = host
        self.port = port
        self.ssl = ssl_context
        self.server_hostname = host if ssl_context is not None else None
        self.limit = max(1, limit)
        self.connect_timeout = connect_timeout
        self.keepalive_timeout = keepalive_timeout
        self.closed = False
        self._idle: list[Connection] = []  # oldest first; reused from the end
        self._all: set[Connection] = set()  # open ones, idle or not, to close them all at the end
        self._open = 0  # connections counted against the limit, connecting ones included
        # a waiter's result: a connection handed over, True (open a new one: the slot is
        # yours) or False (the deadline passed)
        self._waiters: deque[asyncio.Future[Connection | bool]] = deque()
        self._sweeper: asyncio.TimerHandle | None = None
        #: the time limits of its connections' waits, on one timer
        self.deadlines = Deadlines(self.loop)

    @property
    def open_connections(self) -> int:
        return self._open

    @property
    def idle_connections(self) -> int:
        return len(self._idle)

    # ---- getting a connection -----------------------------------------------------------------

    def take_idle(self) -> Connection | None:
        """An idle connection ready for a request, marked in use, or None: `acquire` without
        a coroutine, for the usual request, which finds one."""
        idle = self._idle
        while idle:
            conn = idle.pop()
            conn.idle = False
            if not conn.closed and conn.transport is not None and not conn.transport.is_closing():
                conn.in_use = True
                return conn
            self._free_slot(conn)  # closed by the server; its connection_lost is still pending
        return None

    async def acquire(self, deadline: float | None) -> Connection:
        """A connection ready for a request, marked in use. `deadline` is loop time."""
        conn = self.take_idle()
        if conn is not None:
            return conn
        if self.closed:
            raise UpstreamError("the upstream transport is closed")
        if self._open < self.limit and not self._waiters:
            self._open += 1
            return await self._connect(deadline)
        return await self._queue(deadline)

    async def _queue(self, deadline: float | None) -> Connection:
        waiter: asyncio.Future[Connection | bool] = self.loop.create_future()
        self._waiters.append(waiter)
        handle = self.loop.call_at(deadline, _expire, waiter) if deadline is not None else None
        try:
            got = await waiter
        except asyncio.CancelledError:
            if waiter.done() and not waiter.cancelled():
                self._give_back(waiter.result())  # handed over just before the cancellation
            raise
        finally:
            if handle is not None:
                handle.cancel()
        if got is False:
            raise TimeoutError
        if got is True:
            return await self._connect(deadline)
        assert isinstance(got, Connection)
        return got

    def _give_back(self, got: Connection | bool) -> None:
        if isinstance(got, Connection):
            self.release(got)
        elif got:
            self._open -= 1
            self._pass_slot()

    async def _connect(self, deadline: float | None) -> Connection:
        """Open a connection whose slot is already counted in `_open`."""
        try:
            if self.closed:
                raise UpstreamError("the upstream transport is closed")
            timeout = self.connect_timeout
            by_deadline = False  # which limit `timeout` is: the caller's deadline or ours
            if deadline is not None:
                left = deadline - self.loop.time()
                if left <= 0:
                    raise TimeoutError
                if left < timeout:
                    timeout, by_deadline = left, True
            try:
                _, conn = await asyncio.wait_for(
                    self.loop.create_connection(
                        self._protocol,
                        self.host,
                        self.port,
                        ssl=self.ssl,
                        server_hostname=self.server_hostname,
                    ),
                    timeout,
                )
            except TimeoutError:  # an OSError too, but the caller names what timed out
                if by_deadline:
                    raise
                raise ConnectTimeout from None
            except OSError as exc:  # refused, unreachable, DNS, TLS handshake (SSLError)
                raise UpstreamError(f"upstream connection failed: {exc!r}") from exc
        except BaseException:
            self._open -= 1
            self._pass_slot()
            raise
        if self.closed:  # closed while connecting
            conn.close()
            self._open -= 1
            raise UpstreamError("the upstream transport is closed")
        conn.in_use = True
        self._all.add(conn)
        return conn

    def _protocol(self) -> Connection:
        return Connection(self)

    # ---- giving it back -----------------------------------------------------------------------

    def release(self, conn: Connection) -> None:
        """After a request: kept for the next one when its answer was read to the end and the
        server keeps it alive, otherwise closed."""
        if not conn.in_use:
            return
        conn.in_use = False
        if not conn.reusable or self.closed:
            conn.close()
            self._free_slot(conn)
            return
        waiters = self._waiters
        while waiters:
            waiter = waiters.popleft()
            if not waiter.done():
                conn.in_use = True
                waiter.set_result(conn)
                return
        conn.idle = True
        conn.idle_since = self.loop.time()
        self._idle.append(conn)
        if self._sweeper is None:
            self._sweeper = self.loop.call_at(
                self._idle[0].idle_since + self.keepalive_timeout, self._sweep
            )

    def lost(self, conn: Connection) -> None:
        """The connection's socket closed. Only an idle one is ours to forget; one in use is
        released by its holder, who sees the failure."""
        if conn.idle:
            conn.idle = False
            self._idle.remove(conn)
            self._free_slot(conn)

    def _free_slot(self, conn: Connection) -> None:
        if conn in self._all:
            self._all.discard(conn)
            self._open -= 1
            self._pass_slot()

    def _pass_slot(self) -> None:
        """A connection closed: the oldest waiter may open a new one."""
        waiters = self._waiters
        while waiters and self._open < self.limit:
            waiter = waiters.popleft()
            if not waiter.done():
                self._open += 1
                waiter.set_result(True)
                return

    def _sweep(self) -> None:
        self._sweeper = None
        idle = self._idle
        expired = self.loop.time() - self.keepalive_timeout
        n = 0
        while n < len(idle) and idle[n].idle_since <= expired:
            n += 1
        stale = idle[:n]
        del idle[:n]
        for conn in stale:
            conn.idle = False
            conn.close()
            self._free_slot(conn)
        if idle:
            self._sweeper = self.loop.call_at(
                idle[0].idle_since + self.keepalive_timeout, self._sweep
            )

    def close(self) -> None:
        """Close every connection, busy ones included; waiters are told the pool is closed."""
        self.closed = True
        if self._sweeper is not None:
            self._sweeper.cancel()
            self._sweeper = None
        self._idle.clear()
        for conn in list(self._all):
            conn.idle = False
            conn.close()
        while self._waiters:
            waiter = self._waiters.popleft()
            if not waiter.done():
                self._open += 1
                waiter.set_result(True)  # _connect sees the pool closed and says so
