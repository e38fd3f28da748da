"""Running the native server (`headway.server.native`) on a bound socket: the app's start-up and
shutdown around it, the idle keep-alive timeout, graceful shutdown, and the signals of a worker.

Shutdown: stop accepting, close idle connections, let the others finish their current answer
(each closes after it) for up to `grace_s`, then cancel what is left, then run the app's
shutdown (which closes the Gateway) — the order uvicorn follows, without its ASGI lifespan.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
import socket
from collections.abc import Callable
from typing import Protocol

from headway.server.native import Answering, HttpConnection, Shared

log = logging.getLogger("headway.server")

#: seconds an idle keep-alive connection stays open. Longer than the clients' own idle expiry
#: (httpx, under the OpenAI and Anthropic SDKs: 5 s; aiohttp: 15 s), so the client is the one that
#: closes: a server closing at the same moment a client reuses the connection for a POST makes
#: that POST fail with a disconnect, and clients do not re-send a POST. (uvicorn's 5 s, equal to
#: httpx's, hit exactly that race under test load.) nginx's default is 75 s.
KEEPALIVE_S = 75.0
#: how often idle connections are looked for: one timer per server, not one per request
_SWEEP_S = 1.0
#: the listen backlog (a burst of new connections waits here instead of being refused)
BACKLOG = 2048


class Servable(Answering, Protocol):
    async def startup(self) -> None: ...

    async def shutdown(self) -> None: ...


class NativeServer:
    def __init__(
        self,
        app: Servable,
        *,
        max_body_bytes: int,
        keepalive_s: float = KEEPALIVE_S,
        grace_s: float = 30.0,
    ) -> None:
        self.app = app
        self.max_body_bytes = max_body_bytes
        self.keepalive_s = keepalive_s
        self.grace_s = grace_s
        self._shared: Shared | None = None
        self._server: asyncio.AbstractServer | None = None
        self._sweeper: asyncio.TimerHandle | None = None
        self._stopped = False

    @property
    def connections(self) -> set[HttpConnection]:
        return self._shared.connections if self._shared is not None else set()

    async def start(self, sock: socket.socket) -> None:
        """Run the app's start-up, then accept on `sock` (bound, possibly shared by workers)."""
        await self.app.startup()
        loop = asyncio.get_running_loop()
        shared = self._shared = Shared(self.app, loop, self.max_body_bytes)
        self._server = await loop.create_server(
            lambda: HttpConnection(shared), sock=sock, backlog=BACKLOG
        )
        self._sweeper = loop.call_later(_SWEEP_S, self._sweep)

    def _sweep(self) -> None:
        shared = self._shared
        assert shared is not None
        now = shared.loop.time()
        for conn in [c for c in shared.connections if c.idle]:
            if now - conn.idle_since >= self.keepalive_s:
                conn.shutdown()
        self._sweeper = shared.loop.call_later(_SWEEP_S, self._sweep)

    async def stop(self) -> None:
        """Graceful shutdown, then the app's shutdown (once, however often it is called)."""
        if self._stopped:
            return
        self._stopped = True
        if self._sweeper is not None:
            self._sweeper.cancel()
        shared = self._shared
        if self._server is not None:
            self._server.close()  # no new connections
        if shared is not None:
            shared.all_closed.clear()
            for conn in list(shared.connections):
                conn.shutdown()
            if shared.connections:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(shared.all_closed.wait(), self.grace_s)
            self.abort()
            if shared.connections:  # aborted transports report their loss on the next turn
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(shared.all_closed.wait(), 1.0)
        await self.app.shutdown()

    def abort(self) -> None:
        """Cancel every in-flight answer and drop every connection (the grace period is over)."""
        if self._shared is not None:
            for conn in list(self._shared.connections):
                conn.abort()


async def serve(
    app: Servable,
    sock: socket.socket,
    *,
    max_body_bytes: int,
    grace_s: float,
    started: Callable[[], None] | None = None,
) -> int:
    """Serve until SIGINT or SIGTERM, then shut down gracefully (a second SIGINT cuts the grace
    period short). Returns the process exit code: 3 when the app failed to start, as uvicorn."""
    server = NativeServer(app, max_body_bytes=max_body_bytes, grace_s=grace_s)
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()

    def on_signal(sig: signal.Signals) -> None:
        # a second Ctrl-C cuts the grace period short; a SIGTERM after SIGINT does not (the
        # parent of workers sends one after the terminal's SIGINT reached the whole group)
        if stop.is_set() and sig == signal.SIGINT:
            log.warning("second interrupt: cancelling in-flight requests")
            server.abort()
        stop.set()

    # the handlers come before start-up: a worker told to stop while it starts (its siblings
    # were quicker, and answered) finishes starting and then stops cleanly, not by the signal
    signals = (signal.SIGINT, signal.SIGTERM)
    for sig in signals:
        loop.add_signal_handler(sig, on_signal, sig)
    try:
        try:
            await server.start(sock)
        except Exception:  # noqa: BLE001 - any start-up failure must stop the worker, readably
            log.exception("start-up failed")
            return 3
        if started is not None:
            started()
        await stop.wait()
        log.info("shutting down: finishing in-flight requests (up to %.0f s)", grace_s)
        await server.stop()
    finally:
        for sig in signals:
            loop.remove_signal_handler(sig)
    return 0
