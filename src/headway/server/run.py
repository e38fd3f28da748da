"""Running the app, in one process or several on one port.

The server is headway's own (`native`: `headway.server.native`, HTTP/1.1 on httptools, calling
the app directly) unless `http="uvicorn"` asks for uvicorn (uvloop + httptools, ASGI), which
stays as the reference and the fallback.

With N workers the parent binds the listening socket once and starts N spawned processes that
each accept on it (the pre-fork model uvicorn itself uses); each worker builds its own Gateway
inside its own event loop. SIGINT/SIGTERM stop accepting, let in-flight calls finish (up to
`GRACE_S`), then run the app's shutdown, which closes the Gateway.
"""

from __future__ import annotations

import asyncio
import gc
import logging
import multiprocessing
import signal
import socket
from collections.abc import Callable
from dataclasses import dataclass
from types import FrameType
from typing import Any

from headway.server import fdtable
from headway.server.gcpace import GcPacer
from headway.server.native_serve import KEEPALIVE_S

#: seconds in-flight requests get to finish on shutdown before they are cancelled
GRACE_S = 30


@dataclass(slots=True, frozen=True)
class ServeOptions:
    config: str | None
    host: str
    port: int
    workers: int = 1
    log_level: str = "info"
    #: "native" (headway's own server) or "uvicorn"
    http: str = "native"


def bind_socket(host: str, port: int) -> socket.socket:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError:
        sock.close()
        raise
    sock.set_inheritable(True)
    return sock


def _loop_factory() -> Callable[[], asyncio.AbstractEventLoop] | None:
    try:
        import uvloop
    except ImportError:  # uvloop does not exist on Windows
        return None
    factory: Callable[[], asyncio.AbstractEventLoop] = uvloop.new_event_loop
    return factory


def uvicorn_config(app: Any, log_level: str = "warning") -> Any:
    import uvicorn

    return uvicorn.Config(
        app,
        http="httptools",
        ws="none",
        lifespan="on",
        access_log=False,  # no per-request log formatting on the response path
        server_header=False,
        log_level=log_level,
        timeout_graceful_shutdown=GRACE_S,
        timeout_keep_alive=int(KEEPALIVE_S),  # the native server's, for the same reason
    )


def freeze_heap() -> None:
    """Called once start-up is over, inside the event loop. Moves everything alive then (config,
    routes, tokenizer tables, modules) out of the collector's reach, so a collection scans only
    what requests allocate; then collects on the loop's clock (`gcpace.GcPacer`), which keeps
    every pause short however many streams are open.

    Measured on a pass-through gateway at c=64 (GC time by `gc.callbacks`, thread CPU clock):
    without the freeze: full collections of ~38 ms each, GC ~57 us per request; frozen: full
    collections ~2.5 ms, GC ~35 us per request. With 1,000 open streams, young collections
    triggered by allocation counts took up to 40-60 ms of CPU each; paced, 5-11 ms at worst."""
    gc.collect()
    gc.freeze()
    GcPacer(asyncio.get_running_loop()).start()


async def _serve(options: ServeOptions, sock: socket.socket) -> int:
    from headway.gateway import Gateway
    from headway.server.app import App

    app = App(Gateway(options.config, ledger_default="sqlite"))

    async def after_startup() -> None:
        freeze_heap()

    if options.http == "uvicorn":
        import uvicorn

        # the last start-up hook: runs once everything else has started
        app.context.on_startup.append(after_startup)
        server = uvicorn.Server(uvicorn_config(app, "warning"))
        await server.serve(sockets=[sock])
        return 0
    from headway.server import native_serve

    return await native_serve.serve(
        app,
        sock,
        max_body_bytes=app.context.max_body_bytes,
        grace_s=GRACE_S,
        started=freeze_heap,
    )


def run_worker(options: ServeOptions, sock: socket.socket) -> int:
    """One server process: its own event loop, Gateway and app, accepting on `sock`."""
    fdtable.raise_limit()  # 1,000 streams hold 2,000 descriptors; many systems allow 1,024
    fdtable.reserve()  # first, while the process has one thread (see fdtable)
    logging.basicConfig(
        level=getattr(logging, options.log_level.upper(), logging.INFO),
        format="%(asctime)s %(levelname)s %(name)s [%(process)d]: %(message)s",
    )
    if options.http == "uvicorn":
        # uvicorn shuts down gracefully on SIGINT/SIGTERM and then re-raises the signal; by then
        # everything is closed, so the re-raised signal means a clean exit, not a crash.
        signal.signal(signal.SIGTERM, _exit_cleanly)
    code = 0
    try:
        with asyncio.Runner(loop_factory=_loop_factory()) as runner:
            code = runner.run(_serve(options, sock))
    except KeyboardInterrupt:
        pass
    return code


def _worker_main(options: ServeOptions, sock: socket.socket) -> None:
    code = run_worker(options, sock)
    if code:
        raise SystemExit(code)


def _exit_cleanly(signum: int, frame: FrameType | None) -> None:
    raise SystemExit(0)


def serve(options: ServeOptions, sock: socket.socket) -> int:
    """Serve on an already bound socket until told to stop; returns an exit code."""
    if options.workers <= 1:
        return run_worker(options, sock)
    ctx = multiprocessing.get_context("spawn")
    workers = [
        ctx.Process(target=_worker_main, args=(options, sock), name=f"headway-worker-{i}")
        for i in range(options.workers)
    ]
    for proc in workers:
        proc.start()

    def stop(signum: int, frame: FrameType | None) -> None:
        for proc in workers:
            if proc.is_alive():
                proc.terminate()  # SIGTERM: each worker shuts down gracefully

    previous = {sig: signal.signal(sig, stop) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        for proc in workers:
            proc.join()
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
        sock.close()
    return 0 if all(proc.exitcode == 0 for proc in workers) else 1
