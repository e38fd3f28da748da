"""The app: route, authenticate, read the body, call the handler, answer. Nothing else.

`App.answer` does the work for any server: the native one (`headway.server.native`) calls it
directly; `App.__call__` is the ASGI 3 entry on top of it (uvicorn, tests, embedding).

No web framework: one dict lookup routes most requests, headers are decoded once, bodies are
read with the size limit enforced from `Content-Length` and again while reading. Every failure
becomes an answer in the route's error shape through `headway.server.errors.error_response`;
an unexpected exception is logged with the request id and answered with a 500, and the server
carries on.

Streams: status and headers go out when the handler returns its `StreamResponse` (after the
first upstream chunk); a client that disconnects mid-stream cancels the upstream call, so its
reservations settle at once instead of when the provider finishes.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Sequence
from typing import TYPE_CHECKING, Any

from headway.context import ANONYMOUS, Principal, new_request_id
from headway.errors import HeadwayError, InvalidRequest, RequestTooLarge
from headway.pipeline import aclose
from headway.server.auth import Authenticator
from headway.server.errors import error_response, internal_error
from headway.server.headers import served_headers
from headway.server.http import Answer, Headers, Request, StreamResponse
from headway.server.relay import Relay
from headway.server.routes import MOUNTS, ErrorFormat, Route, Router, ServerContext, mount_all
from headway.wire.openai.ingress_encode import error_json

if TYPE_CHECKING:
    from headway.gateway import Gateway

log = logging.getLogger("headway.server")

Scope = dict[str, Any]
Message = dict[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]

_STREAM_HEADERS: Headers = [(b"cache-control", b"no-cache"), (b"x-accel-buffering", b"no")]
#: a streamed body's frame as an ASGI message, copied per frame (each send gets its own dict)
_MORE_BODY: Message = {"type": "http.response.body", "body": b"", "more_body": True}


class ClientGone(Exception):
    """The client disconnected before its request body arrived: nobody to answer."""


#: reads the whole request body; raises `RequestTooLarge` once more than `limit` bytes arrived
#: and `ClientGone` when the client left first
BodyReader = Callable[[int], Awaitable[bytes]]


def _decode_headers(raw: Sequence[tuple[bytes, bytes]]) -> dict[str, str]:
    headers: dict[str, str] = {}
    for name, value in raw:
        key = name.decode("latin-1").lower()
        text = value.decode("latin-1")
        headers[key] = f"{headers[key]}, {text}" if key in headers else text
    return headers


class App:
    """The app over one Gateway (`answer`, and ASGI 3 on top). `mounts` lists the route modules
    to load."""

    def __init__(
        self,
        gateway: Gateway,
        *,
        authenticator: Authenticator | None = None,
        max_body_bytes: int | None = None,
        mounts: Sequence[str] = MOUNTS,
        close_gateway: bool = True,
    ) -> None:
        server_cfg = gateway.runtime.file.server
        self.gateway = gateway
        self._clock = gateway.services.clock
        self._close_gateway = close_gateway
        auth = authenticator or Authenticator(server_cfg.master_key, extras=gateway.services.extras)
        self.context = ServerContext(gateway, auth, max_body_bytes or server_cfg.max_body_bytes)
        self.router = Router()
        self.mounted = mount_all(self.router, self.context, mounts)

    # ---- ASGI entry ---------------------------------------------------------------------------

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        kind = scope["type"]
        if kind == "http":
            await self._http(scope, receive, send)
        elif kind == "lifespan":
            await self._lifespan(receive, send)

    async def _lifespan(self, receive: Receive, send: Send) -> None:
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                try:
                    await self.startup()
                except Exception as exc:  # noqa: BLE001 - any start-up failure must stop the server
                    log.exception("start-up failed")
                    await send({"type": "lifespan.startup.failed", "message": str(exc)})
                    return
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                await self.shutdown()
                await send({"type": "lifespan.shutdown.complete"})
                return

    async def startup(self) -> None:
        await self.gateway.warm(on_loop=True)  # nothing is served before start-up completes
        for hook in self.context.on_startup:
            await hook()
        if not self.context.authenticator.enabled:
            log.warning("auth is OFF: any caller who can reach this server can use it")
        self.context.accepting = True

    async def shutdown(self) -> None:
        self.context.accepting = False
        for hook in self.context.on_shutdown:
            await hook()
        if self._close_gateway:
            await self.gateway.aclose()

    # ---- one request, whatever the server ----------------------------------------------------

    async def answer(
        self,
        method: str,
        path: str,
        query_string: bytes,
        headers: dict[str, str],
        read_body: BodyReader,
    ) -> tuple[Answer, str, float]:
        """Route, authenticate, read the body, run the handler: the answer, the request id and
        when the request arrived. `headers` are lower-cased (repeats joined with ", ").
        Raises `ClientGone` when the client left before its body arrived."""
        received = self._clock.monotonic()
        request_id = new_request_id()
        error_format: ErrorFormat = error_json
        req: Request | None = None
        answer: Answer
        try:
            route, params = self.router.match(method, path)
            error_format = route.error_format
            principal = self._authenticate(route, headers)
            if isinstance(principal, str):  # an API key: ask the key resolver
                principal = await self.context.authenticator.resolve(
                    principal, route.auth == "admin"
                )
            limit = self.context.max_body_bytes
            declared = headers.get("content-length")
            if declared is not None:
                # refused before a byte of the body is read (or, with 100-continue, sent)
                try:
                    size = int(declared)
                except ValueError:
                    raise InvalidRequest("Invalid Content-Length header.") from None
                if size > limit:
                    raise too_large(limit)
            body = await read_body(limit)
            req = Request(
                method,
                path,
                headers,
                body,
                request_id,
                received,
                params,
                query_string,
                principal,
            )
            answer = await route.handler(req)
        except HeadwayError as err:
            answer = error_response(err, error_format, req.served if req else None)
        except ClientGone:
            raise
        except Exception:  # noqa: BLE001 - a bug must cost one request, never the server
            log.exception("unhandled error on %s %s (request %s)", method, path, request_id)
            served = req.served if req else None
            answer = error_response(internal_error(request_id), error_format, served)
        return answer, request_id, received

    def _authenticate(self, route: Route, headers: dict[str, str]) -> Principal | str:
        """The caller, or the API key still to resolve; without a coroutine when possible."""
        if route.auth == "none":
            return ANONYMOUS
        return self.context.authenticator.known(headers, route.auth == "admin")

    def head(self, answer: Answer, request_id: str, received: float) -> Headers:
        """The response headers every server sends (no content-length, no framing headers)."""
        served = answer.served
        # headway's own time: not the providers' (upstream_s), nor deliberate waits (wait_s)
        away = served.upstream_s + served.wait_s if served is not None else 0.0
        overhead_ms = max(0.0, (self._clock.monotonic() - received - away) * 1000.0)
        headers: Headers = [
            (b"content-type", answer.content_type),
            (b"x-request-id", request_id.encode()),
            (b"x-headway-overhead-ms", b"%.2f" % overhead_ms),  # the same digits as f"{:.2f}"
        ]
        if served is not None:
            served_headers(served, headers)
        headers.extend(answer.headers)
        if isinstance(answer, StreamResponse):
            headers.extend(_STREAM_HEADERS)
        return headers

    def stream_failed(self, answer: StreamResponse, request_id: str, exc: Exception) -> bytes:
        """The in-band frame that ends a stream whose chunks raised `exc`."""
        if isinstance(exc, HeadwayError):
            return answer.on_error(exc)
        # the caller still gets an in-band error, not a hang
        log.error("unhandled error mid-stream (request %s)", request_id, exc_info=exc)
        return answer.on_error(internal_error(request_id))

    # ---- ASGI ---------------------------------------------------------------------------------

    async def _http(self, scope: Scope, receive: Receive, send: Send) -> None:
        async def read_body(limit: int) -> bytes:
            return await _receive_body(receive, limit)

        try:
            answer, request_id, received = await self.answer(
                scope["method"],
                scope["path"],
                scope.get("query_string", b""),
                _decode_headers(scope["headers"]),
                read_body,
            )
        except ClientGone:
            return
        if isinstance(answer, StreamResponse):
            await self._stream(answer, request_id, received, receive, send)
        else:
            headers = self.head(answer, request_id, received)
            headers.append((b"content-length", str(len(answer.body)).encode()))
            await send({"type": "http.response.start", "status": answer.status, "headers": headers})
            await send({"type": "http.response.body", "body": answer.body})

    async def _stream(
        self,
        answer: StreamResponse,
        request_id: str,
        received: float,
        receive: Receive,
        send: Send,
    ) -> None:
        headers = self.head(answer, request_id, received)
        try:
            await send({"type": "http.response.start", "status": answer.status, "headers": headers})
        except BaseException:
            await close_stream(answer)  # the body never started: release the upstream stream now
            raise
        # After the body is read, `receive` only returns when the client goes away (or the
        # response completes): when it does, the pump is cancelled, which stops upstream work
        # for nobody. The pump runs in this task and the watcher cancels it from a callback: a
        # task of its own and `asyncio.wait` cost ~60k instructions per stream.
        task = asyncio.current_task()
        assert task is not None
        gone = asyncio.ensure_future(receive())
        pumping = True
        stopped = False

        def left(_: asyncio.Future[Message]) -> None:
            nonlocal stopped
            if pumping:
                stopped = True
                task.cancel()

        gone.add_done_callback(left)
        try:
            await self._pump(answer, request_id, send)
        except asyncio.CancelledError:
            # the client left: the stream is closed and nobody is there to answer; a
            # cancellation from elsewhere too goes on (as `asyncio.timeout` decides)
            if not (stopped and task.uncancel() == 0):
                raise
        finally:
            pumping = False
            gone.cancel()

    async def _pump(self, answer: StreamResponse, request_id: str, send: Send) -> None:
        tail = b""

        def body(data: bytes) -> Awaitable[None]:
            message = _MORE_BODY.copy()  # copying a built message is cheaper than building it
            message["body"] = data
            return send(message)

        try:
            chunks = answer.chunks
            if isinstance(chunks, Relay):
                await chunks.pump(body)  # the same frames, without a generator step for each
            else:
                async for data in chunks:
                    await body(data)
        except Exception as exc:  # noqa: BLE001 - see stream_failed
            tail = self.stream_failed(answer, request_id, exc)
        finally:
            await close_stream(answer)
        await send({"type": "http.response.body", "body": tail, "more_body": False})


def too_large(limit: int) -> RequestTooLarge:
    return RequestTooLarge(f"The request body is larger than the limit of {limit} bytes.")


async def _receive_body(receive: Receive, limit: int) -> bytes:
    message = await receive()
    if message["type"] == "http.disconnect":
        raise ClientGone
    body: bytes = message.get("body", b"")
    if not message.get("more_body", False):
        if len(body) > limit:
            raise too_large(limit)
        return body
    parts = [body]
    total = len(body)
    while message.get("more_body", False):
        message = await receive()
        if message["type"] == "http.disconnect":
            raise ClientGone
        chunk = message.get("body", b"")
        total += len(chunk)
        if total > limit:
            raise too_large(limit)
        parts.append(chunk)
    return b"".join(parts)


async def close_stream(answer: StreamResponse) -> None:
    """Release what a stream holds (its upstream stream) now rather than when it is collected."""
    await aclose(answer.chunks)


def create_app(
    gateway: Gateway | None = None,
    *,
    config: str | None = None,
    mounts: Sequence[str] = MOUNTS,
) -> App:
    """An app over `gateway`, or over a new Gateway for `config` (None: the embedded default),
    built as `headway serve` builds it (spend in SQLite unless the config says otherwise)."""
    if gateway is None:
        from headway.gateway import Gateway

        gateway = Gateway(config, ledger_default="sqlite")
    return App(gateway, mounts=mounts)
