"""The one upstream HTTP client every HTTP provider shares.

aiohttp, because it costs less than half of httpx per call here (deps.md). One connection pool
per upstream origin, sized by the first provider that uses it (`ProviderSection.max_connections`),
with keep-alive. Sessions are created on first use, inside the running event loop, so building a
`Transport` does no I/O and a Gateway can be constructed outside a loop.

Failures come out as headway errors and nothing else: a timeout is `UpstreamTimeout`, a refused or
dropped connection `UpstreamError`, and a body that breaks off after the headers arrived
`StreamInterrupted`. Statuses are not judged here; the provider's wire format classifies them.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Mapping
from dataclasses import dataclass
from types import TracebackType

import aiohttp
import orjson
from yarl import URL

from headway.errors import StreamInterrupted, UpstreamError, UpstreamTimeout
from headway.providers.base import HttpCall
from headway.services import Services

_JSON = "application/json"
_MAX_CACHED_URLS = 1024


@dataclass(slots=True)
class HttpResult:
    status: int
    headers: Mapping[str, str]  # case-insensitive (a multidict)
    body: bytes


def _origin(base_url: str) -> str:
    url = URL(base_url)
    return f"{url.scheme}://{url.host}:{url.port}"


def _body(call: HttpCall, headers: Mapping[str, str]) -> tuple[bytes | None, Mapping[str, str]]:
    if call.body is None:
        return None, headers
    if "Content-Type" not in headers and "content-type" not in headers:
        headers = {**headers, "Content-Type": _JSON}
    return orjson.dumps(call.body), headers


def _timed_out(what: str, timeout: float | None) -> str:
    if timeout is None:
        return f"upstream did not {what}: connect timed out"
    return f"upstream did not {what} within {timeout:.3g}s"


class UpstreamStream:
    """An open response whose status and headers are known and whose body is read in chunks."""

    __slots__ = ("_resp", "headers", "status")

    def __init__(self, resp: aiohttp.ClientResponse) -> None:
        self._resp = resp
        self.status: int = resp.status
        self.headers: Mapping[str, str] = resp.headers

    async def read(self, timeout: float | None = None) -> bytes:
        """The rest of the body at once (error responses)."""
        try:
            async with asyncio.timeout(timeout):
                return await self._resp.read()
        except TimeoutError:
            raise UpstreamTimeout("upstream response body timed out") from None
        except aiohttp.ClientError as exc:
            raise UpstreamError(f"upstream response body failed: {exc!r}") from exc

    async def next_chunk(self, timeout: float | None = None) -> bytes:
        """The bytes that arrived next (at least one), or b"" at the end of the body.
        `timeout` bounds this read alone, which is how stall and TTFT limits are enforced."""
        content = self._resp.content
        try:
            if timeout is None:
                return await content.readany()
            async with asyncio.timeout(timeout):
                return await content.readany()
        except TimeoutError:
            raise UpstreamTimeout("no data from upstream in time") from None
        except aiohttp.ClientError as exc:
            raise StreamInterrupted(f"upstream stream broke: {exc!r}") from exc

    async def drain(self, timeout: float) -> None:
        """Read what is left of a finished body (the chunked terminator), so the connection can
        go back to the pool instead of being closed."""
        content = self._resp.content
        try:
            async with asyncio.timeout(timeout):
                while not content.at_eof() and await content.readany():
                    pass
        except (TimeoutError, aiohttp.ClientError):
            pass  # the connection is closed instead of reused; nothing is lost

    def close(self) -> None:
        """Back to the pool when the body was read to the end, otherwise closed."""
        if self._resp.content.at_eof():
            self._resp.release()
        else:
            self._resp.close()

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

    def __init__(self, opener: Awaitable[UpstreamStream]) -> None:
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


class Transport:
    """Pooled upstream HTTP. Use `transport_for(services)` to get the Gateway's instance."""

    def __init__(
        self,
        *,
        connect_timeout: float = 5.0,
        keepalive_timeout: float = 60.0,
        default_max_connections: int = 256,
    ) -> None:
        self.connect_timeout = connect_timeout
        self.keepalive_timeout = keepalive_timeout
        self.default_max_connections = default_max_connections
        self._pools: dict[str, aiohttp.ClientSession] = {}  # origin -> session
        self._by_base: dict[str, aiohttp.ClientSession] = {}  # base URL -> the same sessions
        self._urls: dict[tuple[str, ...], URL] = {}
        self._closed = False

    # ---- pools and URLs -----------------------------------------------------------------------

    def _session(self, base_url: str, max_connections: int | None) -> aiohttp.ClientSession:
        session = self._by_base.get(base_url)
        if session is not None:
            return session
        if self._closed:
            raise UpstreamError("the upstream transport is closed")
        origin = _origin(base_url)
        session = self._pools.get(origin)
        if session is None or session.closed:
            connector = aiohttp.TCPConnector(
                limit=max_connections or self.default_max_connections,
                limit_per_host=0,  # one pool per origin already; its limit is the host's
                keepalive_timeout=self.keepalive_timeout,
                ttl_dns_cache=300,
            )
            session = aiohttp.ClientSession(
                connector=connector,
                timeout=aiohttp.ClientTimeout(total=None, sock_connect=self.connect_timeout),
                raise_for_status=False,
            )
            self._pools[origin] = session
        self._by_base[base_url] = session
        return session

    def _url(self, base_url: str, call: HttpCall) -> URL:
        key: tuple[str, ...] = (base_url, call.path)
        if call.query:
            key += tuple(f"{k}={v}" for k, v in sorted(call.query.items()))
        url = self._urls.get(key)
        if url is None:
            url = URL(base_url.rstrip("/") + call.path)
            if call.query:
                url = url.update_query(call.query)
            if len(self._urls) >= _MAX_CACHED_URLS:
                self._urls.clear()
            self._urls[key] = url
        return url

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
        """Send `call` and read the whole response. `timeout`: seconds for everything."""
        session = self._session(base_url, max_connections)
        data, headers = _body(call, headers)
        if timeout is not None and timeout <= 0:
            raise UpstreamTimeout("deadline passed before the request was sent")
        try:
            async with (
                asyncio.timeout(timeout),
                session.request(
                    call.method, self._url(base_url, call), data=data, headers=headers
                ) as resp,
            ):
                body = await resp.read()
                return HttpResult(resp.status, resp.headers, body)
        except TimeoutError:
            raise UpstreamTimeout(_timed_out("answer", timeout)) from None
        except aiohttp.ClientError as exc:
            raise UpstreamError(f"upstream request failed: {exc!r}") from exc

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
        session = self._session(base_url, max_connections)
        data, headers = _body(call, headers)
        if timeout is not None and timeout <= 0:
            raise UpstreamTimeout("deadline passed before the request was sent")
        try:
            async with asyncio.timeout(timeout):
                resp = await session.request(
                    call.method, self._url(base_url, call), data=data, headers=headers
                )
        except TimeoutError:
            raise UpstreamTimeout(_timed_out("send headers", timeout)) from None
        except aiohttp.ClientError as exc:
            raise UpstreamError(f"upstream request failed: {exc!r}") from exc
        return UpstreamStream(resp)

    async def aclose(self) -> None:
        self._closed = True
        sessions = list(self._pools.values())
        self._pools.clear()
        self._by_base.clear()
        for session in sessions:
            await session.close()


def transport_for(services: Services) -> Transport:
    """The Gateway's shared transport, created on first request for it."""
    transport = services.transport
    if transport is None:
        transport = Transport()
        services.transport = transport
    if not isinstance(transport, Transport):
        raise TypeError(f"services.transport is a {type(transport).__name__}, not a Transport")
    return transport
