"""A worker told to stop while it is still starting stops cleanly once started.

With several workers, the parent passes SIGINT/SIGTERM on to all of them; one whose start-up is
slower (it loads token vocabularies off the loop) used to be killed by the signal's default action
and exit non-zero. The handlers are in place before start-up now."""

from __future__ import annotations

import asyncio
import os
import signal
import socket

from headway.server import native_serve
from headway.server.http import Answer


class SlowStart:
    """A servable whose start-up waits until the test lets it finish."""

    def __init__(self) -> None:
        self.starting = asyncio.Event()
        self.finish_start = asyncio.Event()
        self.shut_down = False

    async def startup(self) -> None:
        self.starting.set()
        await self.finish_start.wait()

    async def shutdown(self) -> None:
        self.shut_down = True

    async def answer(self, *args: object) -> Answer:  # never called: nobody connects
        raise AssertionError("no request expected")


async def test_a_signal_during_start_up_stops_the_worker_cleanly_after_it() -> None:
    app = SlowStart()
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen()
    with sock:
        serving = asyncio.create_task(
            native_serve.serve(app, sock, max_body_bytes=1024, grace_s=1.0)  # type: ignore[arg-type]
        )
        await app.starting.wait()
        os.kill(os.getpid(), signal.SIGTERM)
        await asyncio.sleep(0)  # let the loop run the handler
        app.finish_start.set()
        code = await asyncio.wait_for(serving, 10)
    assert code == 0
    assert app.shut_down
