"""headway's own asyncio Redis client, for the hot path.

redis-py's asyncio client costs 110-250 us of CPU per command (pool checkout, connection health
checks, a parser object per command, response callbacks); a gateway request with limits,
budgets and an exact cache on Redis sends four or five commands, so the client used to be a third
of the gateway's CPU. This client sends every command of a process over one connection: commands
issued concurrently are written together (one socket write per event-loop iteration) and their
replies are matched in order (Redis answers a connection's commands in order). No pool, no
per-command timeout object, no health checks. A command is written when it is made, and on an
open connection `execute_command` hands back its reply's future, not a coroutine; `post` writes
one whose reply nobody awaits (its errors go to a `Detached` sink), and `send` takes a command
encoded already (a script's EVALSHA head is encoded once per shape).

Failures: a connection that cannot be opened, breaks, or stops answering for `timeout_s` while
commands wait fails those commands with `RedisUnavailable`; the next command reconnects. After a
failed connect, commands fail at once (no new attempt) for a backoff that doubles from 50 ms up
to `max_backoff_s`, so a Redis that is down costs neither a connect per request nor a wait.

`RedisClient` and a redis-py client can both be handed to headway's stores: `commands(client)`
wraps a redis-py client so it raises the same errors (tests and embedders still pass those).
"""

from __future__ import annotations

import asyncio
import hashlib
import ssl
from collections import deque
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from contextvars import ContextVar
from dataclasses import dataclass
from typing import Any, Protocol, cast
from urllib.parse import parse_qs, unquote, urlsplit

from headway.errors import ConfigError
from headway.stores.resp import (
    Incomplete,
    NoScript,
    RedisError,
    RedisReplyError,
    RedisUnavailable,
    encode,
    encode_tail,
    parse,
)

__all__ = [
    "Commands",
    "Detached",
    "NoScript",
    "RedisClient",
    "RedisError",
    "RedisReplyError",
    "RedisUnavailable",
    "Script",
    "commands",
    "connect",
    "shared",
    "write_follows",
]

_FIRST_BACKOFF_S = 0.05


class Commands(Protocol):
    """What headway's Redis stores need from a client."""

    def execute_command(self, *args: Any) -> Awaitable[Any]: ...

    def subscribe(self, channel: str) -> Subscription: ...

    async def aclose(self) -> None: ...


class Subscription(Protocol):
    async def start(self) -> None:
        """Return once the server confirmed the subscription."""
        ...

    def messages(self) -> AsyncIterator[bytes]: ...

    async def aclose(self) -> None: ...


@dataclass(frozen=True, slots=True)
class Endpoint:
    host: str = "127.0.0.1"
    port: int = 6379
    unix_path: str = ""
    db: int = 0
    username: str = ""
    password: str = ""
    tls: bool = False

    @classmethod
    def from_url(cls, url: str) -> Endpoint:
        """`redis://[[user]:password@]host[:port][/db]`, `rediss://` (TLS) or
        `unix://[[user]:password@]/path?db=N`, as redis-py reads them."""
        parts = urlsplit(url)
        if parts.scheme not in ("redis", "rediss", "unix"):
            raise ConfigError("redis_url", f"unsupported scheme in {url!r} (redis, rediss, unix)")
        query = parse_qs(parts.query)
        db = query.get("db", [""])[0] or (parts.path.strip("/") if parts.scheme != "unix" else "")
        try:
            number = int(db or 0)
        except ValueError:
            raise ConfigError("redis_url", f"database must be a number in {url!r}") from None
        return cls(
            host=parts.hostname or "127.0.0.1",
            port=parts.port or 6379,
            unix_path=parts.path if parts.scheme == "unix" else "",
            db=number,
            username=unquote(parts.username or ""),
            password=unquote(parts.password or ""),
            tls=parts.scheme == "rediss",
        )

    def __str__(self) -> str:
        return self.unix_path or f"{self.host}:{self.port}"


#: True while the call's outer stage will write a Redis command and await its reply once the
#: inner stages return, before the response is sent (the limits stage's settlement). A command
#: an inner stage writes meanwhile without awaiting its reply (`RedisClient.post`) is then on
#: its socket before the response too, whatever connection it took: the awaited reply takes at
#: least one loop iteration, and the connection's write was scheduled before it.
write_follows: ContextVar[bool] = ContextVar("headway_redis_write_follows", default=False)


class Detached:
    """Stands in for the future of a command nobody awaits (`RedisClient.post`): its reply is
    dropped, and an error reply or a failed connection goes to `on_error`. One serves every
    such command of its owner: nothing is made per command."""

    __slots__ = ("on_error",)

    def __init__(self, on_error: Callable[[RedisError], object]) -> None:
        self.on_error = on_error

    def done(self) -> bool:
        return False

    def set_result(self, result: Any) -> None:
        return None

    def set_exception(self, error: BaseException) -> None:
        self.on_error(error if isinstance(error, RedisError) else RedisUnavailable(str(error)))


class _Connection(asyncio.Protocol):
    """One socket. Commands wait in `waiting`, in the order they were written."""

    def __init__(self, loop: asyncio.AbstractEventLoop, timeout_s: float) -> None:
        self.loop = loop
        self.closed = False
        self.waiting: deque[asyncio.Future[Any] | Detached] = deque()
        #: set for a subscriber: replies go here instead of to `waiting`
        self.pushed: asyncio.Queue[Any] | None = None
        self._timeout = timeout_s
        self._transport: asyncio.Transport | None = None
        self._buf = b""
        self._out: list[bytes] = []
        self._replies = 0
        self._watched = 0
        self._watchdog: asyncio.TimerHandle | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self._transport = cast(asyncio.Transport, transport)  # uvloop's is no subclass

    def send(self, data: bytes) -> asyncio.Future[Any]:
        fut = self.loop.create_future()
        if self.closed:
            fut.set_exception(RedisUnavailable("the redis connection is closed"))
            return fut
        self.waiting.append(fut)
        self.write(data)
        return fut

    def post(self, data: bytes, sink: Detached) -> None:
        """`send` without a future: the reply goes to `sink`."""
        if self.closed:
            sink.set_exception(RedisUnavailable("the redis connection is closed"))
            return
        self.waiting.append(sink)
        self.write(data)

    def write(self, data: bytes) -> None:
        # commands issued in the same loop iteration leave in one write (one syscall)
        if not self._out:
            self.loop.call_soon(self._flush)
        self._out.append(data)
        if self._watchdog is None and self.pushed is None:
            self._watched = self._replies
            self._watchdog = self.loop.call_later(self._timeout, self._check)

    def _flush(self) -> None:
        out, self._out = self._out, []
        if self._transport is not None and not self.closed and out:
            self._transport.write(b"".join(out) if len(out) > 1 else out[0])

    def _check(self) -> None:
        """Fail the connection when commands waited a whole `timeout_s` without any reply
        arriving (one timer per connection, not one per command)."""
        self._watchdog = None
        if not self.waiting or self.closed:
            return
        if self._replies == self._watched:
            self.abort(RedisUnavailable(f"redis did not answer within {self._timeout:g} s"))
            return
        self._watched = self._replies
        self._watchdog = self.loop.call_later(self._timeout, self._check)

    def data_received(self, data: bytes) -> None:
        buf = self._buf + data if self._buf else data
        pos, size = 0, len(buf)
        try:
            while pos < size:
                reply, pos = parse(buf, pos)
                self._replies += 1
                if self.pushed is not None:
                    self.pushed.put_nowait(reply)
                    continue
                fut = self.waiting.popleft()
                if fut.done():  # its caller was cancelled; the reply is dropped
                    continue
                if isinstance(reply, RedisReplyError):
                    fut.set_exception(reply)
                else:
                    fut.set_result(reply)
        except Incomplete:
            pass
        except (ValueError, IndexError) as exc:  # garbage, or a reply nobody asked for
            self.abort(RedisUnavailable(f"redis protocol error: {exc}"))
            return
        self._buf = buf[pos:] if pos < size else b""

    def abort(self, error: RedisError) -> None:
        if self._transport is not None:
            self._transport.abort()
        self._fail(error)

    def connection_lost(self, exc: Exception | None) -> None:
        self._fail(RedisUnavailable(f"the redis connection was lost: {exc or 'closed'}"))

    def _fail(self, error: RedisError) -> None:
        self.closed = True
        if self._watchdog is not None:
            self._watchdog.cancel()
            self._watchdog = None
        while self.waiting:
            fut = self.waiting.popleft()
            if not fut.done():
                fut.set_exception(error)
        if self.pushed is not None:
            self.pushed.put_nowait(error)

    def close(self) -> None:
        if self._transport is not None and not self.closed:
            self._transport.close()
        self.closed = True


class RedisClient:
    """A pipelined client over one connection, opened on first use."""

    def __init__(
        self,
        url: str,
        *,
        connect_timeout_s: float = 2.0,
        timeout_s: float = 5.0,
        max_backoff_s: float = 1.0,
    ) -> None:
        self.endpoint = Endpoint.from_url(url)
        self._connect_timeout = connect_timeout_s
        self._timeout = timeout_s
        self._max_backoff = max_backoff_s
        self._conn: _Connection | None = None
        self._opening: asyncio.Task[_Connection] | None = None
        self._backoff = 0.0
        self._retry_at = 0.0
        self._last_error = ""
        self._subscribers: set[_Subscription] = set()

    def execute_command(self, *args: Any) -> Awaitable[Any]:
        """The command's reply, to await. On an open connection the command is written at once
        (it leaves with the loop iteration's other commands) and its reply future is returned
        as is: no coroutine per command, which cost more than the command's encoding."""
        return self.send(encode(args))

    def send(self, command: bytes) -> Awaitable[Any]:
        """`execute_command` of a command already RESP-encoded (a caller that sends the same
        head again and again encodes it once)."""
        conn = self._conn
        # A connection belongs to the loop that opened it; a caller always runs on a running
        # loop, so a connection whose loop is not running belongs to an older one (tests start
        # a loop each). Asking `is_running` instead of comparing with `get_running_loop()` saves
        # a getpid() system call per command (asyncio checks the pid on every lookup).
        # One client serves one event loop at a time, as one connection can.
        if conn is None or conn.closed or not conn.loop.is_running():
            return self._send_opening(command)
        return conn.send(command)

    def post(self, command: bytes, sink: Detached) -> bool:
        """Write an encoded command whose reply nobody awaits (it goes to `sink`, errors
        included) with the loop iteration's other commands. False, and nothing written, when
        the connection is not open: the caller sends it with `send` instead."""
        conn = self._conn
        if conn is None or conn.closed or not conn.loop.is_running():
            return False
        conn.post(command, sink)
        return True

    async def _send_opening(self, command: bytes) -> Any:
        """`send` when the connection must be opened first (written only once it is)."""
        conn = await self._connection()
        return await conn.send(command)

    async def _connection(self) -> _Connection:
        loop = asyncio.get_running_loop()
        opening = self._opening
        if opening is None or opening.get_loop() is not loop:
            if loop.time() < self._retry_at:
                raise RedisUnavailable(
                    f"redis at {self.endpoint} is unreachable ({self._last_error}); "
                    "retrying shortly"
                )
            # concurrent callers share one attempt; it survives a caller being cancelled
            opening = self._opening = loop.create_task(self._open_shared())
            opening.add_done_callback(self._opened)
        return await asyncio.shield(opening)

    async def _open_shared(self) -> _Connection:
        conn = self._conn = await self._open()
        return conn

    def _opened(self, task: asyncio.Task[_Connection]) -> None:
        if self._opening is task:
            self._opening = None
        if not task.cancelled():
            task.exception()  # retrieved here, so a failure nobody awaited is not reported

    async def _open(self, *, subscriber: bool = False) -> _Connection:
        loop = asyncio.get_running_loop()
        ep = self.endpoint
        conn: _Connection | None = None
        try:
            conn = await self._dial(loop)
            if ep.password:
                auth = (ep.username, ep.password) if ep.username else (ep.password,)
                await conn.send(encode(("AUTH", *auth)))
            if ep.db and not subscriber:
                await conn.send(encode(("SELECT", ep.db)))
        except RedisReplyError:
            if conn is not None:
                conn.close()
            raise
        except (OSError, TimeoutError, RedisUnavailable) as exc:
            if conn is not None:
                conn.close()
            self._backoff = min(self._max_backoff, max(_FIRST_BACKOFF_S, self._backoff * 2))
            self._retry_at = loop.time() + self._backoff
            self._last_error = str(exc) or type(exc).__name__
            raise RedisUnavailable(f"redis at {ep} is unreachable: {self._last_error}") from exc
        self._backoff = 0.0
        return conn

    async def _dial(self, loop: asyncio.AbstractEventLoop) -> _Connection:
        ep = self.endpoint

        def factory() -> _Connection:
            return _Connection(loop, self._timeout)

        async with asyncio.timeout(self._connect_timeout):
            if ep.unix_path:
                _, conn = await loop.create_unix_connection(factory, ep.unix_path)
            else:
                context = ssl.create_default_context() if ep.tls else None
                _, conn = await loop.create_connection(factory, ep.host, ep.port, ssl=context)
        return conn

    def subscribe(self, channel: str) -> Subscription:
        sub = _Subscription(self, channel)
        self._subscribers.add(sub)
        return sub

    # a few commands by name, for tests and tools
    async def ping(self) -> bool:
        return bool(await self.execute_command("PING") == b"PONG")

    async def flushdb(self) -> bool:
        return bool(await self.execute_command("FLUSHDB") == b"OK")

    async def aclose(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None
        for sub in list(self._subscribers):
            await sub.aclose()


class _Subscription:
    """A dedicated connection in subscriber mode, delivering one channel's messages."""

    def __init__(self, client: RedisClient, channel: str) -> None:
        self._client = client
        self._channel = channel
        self._conn: _Connection | None = None

    async def start(self) -> None:
        conn = self._conn = await self._client._open(subscriber=True)
        conn.pushed = asyncio.Queue()
        conn.write(encode(("SUBSCRIBE", self._channel)))
        while True:
            reply = await self._next(conn)
            if reply[0] == b"subscribe":
                return

    @staticmethod
    async def _next(conn: _Connection) -> Any:
        assert conn.pushed is not None
        reply = await conn.pushed.get()
        if isinstance(reply, BaseException):
            raise reply
        return reply

    async def messages(self) -> AsyncIterator[bytes]:
        conn = self._conn
        if conn is None:
            raise RuntimeError("start() the subscription first")
        while True:
            reply = await self._next(conn)
            if isinstance(reply, list) and len(reply) == 3 and reply[0] == b"message":
                yield reply[2]

    async def aclose(self) -> None:
        self._client._subscribers.discard(self)
        if self._conn is not None:
            self._conn.close()
            self._conn = None


class RedisPyCommands:
    """A redis-py asyncio client seen through `Commands`: redis-py's exceptions become
    headway's. `execute_command` is looked up on the client at every call, so a test that
    wraps it to count commands sees every command."""

    def __init__(self, client: Any) -> None:
        from redis import exceptions

        self._client = client
        self._x = exceptions

    async def execute_command(self, *args: Any) -> Any:
        x = self._x
        try:
            return await self._client.execute_command(*args)
        except x.NoScriptError as exc:
            raise NoScript(str(exc)) from exc
        except (x.ConnectionError, x.TimeoutError, OSError) as exc:
            raise RedisUnavailable(f"redis is unreachable: {exc}") from exc
        except x.RedisError as exc:
            raise RedisReplyError(f"redis answered: {exc}") from exc

    def subscribe(self, channel: str) -> Subscription:
        return _RedisPySubscription(self, channel)

    async def aclose(self) -> None:
        await self._client.aclose()


class _RedisPySubscription:
    def __init__(self, owner: RedisPyCommands, channel: str) -> None:
        self._owner = owner
        self._channel = channel
        self._pubsub: Any = None

    async def start(self) -> None:
        x = self._owner._x
        self._pubsub = self._owner._client.pubsub(ignore_subscribe_messages=True)
        try:
            await self._pubsub.subscribe(self._channel)
        except (x.RedisError, OSError) as exc:
            raise RedisUnavailable(f"redis is unreachable: {exc}") from exc

    async def messages(self) -> AsyncIterator[bytes]:
        x = self._owner._x
        try:
            async for message in self._pubsub.listen():
                if message.get("type") == "message":
                    data = message["data"]
                    yield data if isinstance(data, bytes) else str(data).encode()
        except (x.RedisError, OSError) as exc:
            raise RedisUnavailable(f"the redis subscription was lost: {exc}") from exc

    async def aclose(self) -> None:
        if self._pubsub is not None:
            await self._pubsub.aclose()
            self._pubsub = None


def commands(client: Any) -> Commands:
    """`client` as headway's stores use it: a `RedisClient` as is, a redis-py client wrapped."""
    if isinstance(client, RedisClient | RedisPyCommands):
        return client
    return RedisPyCommands(client)


def connect(url: str, *, timeout_s: float = 5.0) -> RedisClient:
    """The client headway's features share (`services.extras["redis"]`)."""
    return RedisClient(url, timeout_s=timeout_s)


#: the key of that shared client in `Services.extras`
SHARED = "redis"


def shared(extras: dict[str, Any], url: str) -> Any:
    """The Redis client of `extras` that limits, budgets, breakers, key invalidation and the
    cache share, made on first use. One client is one connection: the commands one call issues
    in a loop iteration leave in one socket write whichever feature issued them (the cache's
    SET with the settlement after it: one write and one reply read less per request)."""
    client = extras.get(SHARED)
    if client is None:
        client = extras[SHARED] = connect(url)
    return client


class Script:
    """A Lua script run by EVALSHA; when the server lacks it (restart, SCRIPT FLUSH) the NOSCRIPT
    error is answered with one EVAL, which also caches it for the next EVALSHA."""

    __slots__ = ("_heads", "sha", "text")

    def __init__(self, text: str) -> None:
        self.text = text
        self.sha = hashlib.sha1(text.encode()).hexdigest()
        #: (number of keys, number of args) -> the encoded "EVALSHA sha numkeys" of a call
        self._heads: dict[tuple[int, int], bytes] = {}

    async def run(self, client: Commands, keys: Sequence[str], args: Sequence[Any]) -> Any:
        try:
            return await self.evalsha(client, keys, args)
        except NoScript:
            return await self.eval(client, keys, args)

    def evalsha(self, client: Commands, keys: Sequence[str], args: Sequence[Any]) -> Awaitable[Any]:
        """The EVALSHA's reply, to await (NOSCRIPT raised as `NoScript`: answer it with
        `eval`). To headway's own client it goes with its head encoded once per shape."""
        if type(client) is not RedisClient:
            return client.execute_command("EVALSHA", self.sha, len(keys), *keys, *args)
        return client.send(self.head(len(keys), len(args)) + encode_tail(keys, args))

    def head(self, keys: int, args: int) -> bytes:
        """The encoded start of an EVALSHA of `keys` keys and `args` args (the array's length,
        EVALSHA, the sha, the number of keys): what the keys and args follow."""
        head = self._heads.get((keys, args))
        if head is None:
            if len(self._heads) >= 256:  # shapes are few (items per call); never unbounded
                self._heads.clear()
            whole = encode(("EVALSHA", self.sha, keys))
            # the array's length counts the keys and args that follow the three head values
            head = b"*%d" % (3 + keys + args) + whole[whole.index(b"\r\n") :]
            self._heads[(keys, args)] = head
        return head

    def eval(self, client: Commands, keys: Sequence[str], args: Sequence[Any]) -> Awaitable[Any]:
        """The script sent whole (after NOSCRIPT); the server caches it for the next EVALSHA."""
        return client.execute_command("EVAL", self.text, len(keys), *keys, *args)
