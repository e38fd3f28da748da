"""headway's own code per request, without sockets, uvicorn or aiohttp.

The real ASGI app and the real pipeline (server, wire parsing and encoding, stages, routing, the
HTTP provider) are driven in one process: requests go in as ASGI scopes, and the shared
transport is replaced by one that answers the bench upstream's canned bytes at once. What is
left is exactly the CPU the gateway's own code spends on a request, which is what optimising
headway can change. It is measured with the CPU clock, one request after another, so it barely
depends on how busy the machine is, and `--cprofile` ranks the functions that spend it.

    python -m bench.inproc [--requests 5000] [--cprofile passthrough]

The `redis` variant keeps limits, budgets and the exact cache in a redis-server it starts on a
free port: its figure includes the client's socket writes and reads (and the wait for Redis's
answers, which the CPU clock does not count).
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import io
import pstats
import shutil
import tempfile
import time
from collections.abc import Awaitable, Callable, Mapping
from pathlib import Path
from types import TracebackType
from typing import Any

import orjson
import yaml
from multidict import CIMultiDict

from bench import configs
from bench.procs import Cores, Procs
from bench.streams import loop_factory
from bench.upstream import _completion, _sse
from headway.providers.base import HttpCall
from headway.transport.http import HttpResult, Transport

_HEADERS = {
    "x-ratelimit-remaining-requests": "100000",
    "x-ratelimit-remaining-tokens": "100000000",
}


class _CannedStream:
    """What `Transport.stream` yields: one SSE event per read, as a paced upstream sends them."""

    def __init__(self, frames: list[bytes]) -> None:
        self.status = 200
        self.headers: Mapping[str, str] = CIMultiDict(
            {"content-type": "text/event-stream", **_HEADERS}
        )
        self._frames = iter(frames)

    async def __aenter__(self) -> _CannedStream:
        return self

    async def __aexit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        return None

    async def read(self, timeout: float | None = None) -> bytes:
        return b"".join(self._frames)

    async def next_chunk(self, timeout: float | None = None) -> bytes:
        return next(self._frames, b"")

    async def drain(self, timeout: float) -> None:
        return None

    def close(self) -> None:
        return None


class CannedTransport(Transport):
    """The shared transport, answering from the bench upstream's canned bytes."""

    def __init__(self, chunks: int = 24) -> None:
        super().__init__()
        self._json = _completion(chunks)
        self._frames = _sse(chunks)
        self._headers: Mapping[str, str] = CIMultiDict(
            {"content-type": "application/json", **_HEADERS}
        )

    async def request(
        self,
        call: HttpCall,
        base_url: str,
        headers: Mapping[str, str],
        *,
        timeout: float | None = None,
        max_connections: int | None = None,
    ) -> HttpResult:
        return HttpResult(200, self._headers, self._json)

    def stream(  # type: ignore[override]
        self,
        call: HttpCall,
        base_url: str,
        headers: Mapping[str, str],
        *,
        timeout: float | None = None,
        max_connections: int | None = None,
    ) -> _CannedStream:
        return _CannedStream(self._frames)


class Driver:
    """Sends requests into an ASGI app the way uvicorn does and collects the answer."""

    def __init__(self, app: Any) -> None:
        self.app = app
        self.never: asyncio.Future[None] = asyncio.get_running_loop().create_future()

    async def post(self, body: bytes) -> tuple[int, bytes]:
        scope = {
            "type": "http",
            "asgi": {"version": "3.0"},
            "http_version": "1.1",
            "method": "POST",
            "scheme": "http",
            "path": "/v1/chat/completions",
            "raw_path": b"/v1/chat/completions",
            "query_string": b"",
            "headers": [
                (b"host", b"127.0.0.1"),
                (b"content-type", b"application/json"),
                (b"content-length", str(len(body)).encode()),
            ],
            "client": ("127.0.0.1", 1),
            "server": ("127.0.0.1", 2),
        }
        sent = False
        status = 0
        parts: list[bytes] = []

        async def receive() -> dict[str, Any]:
            nonlocal sent
            if not sent:
                sent = True
                return {"type": "http.request", "body": body, "more_body": False}
            await self.never  # the client never goes away
            return {"type": "http.disconnect"}

        async def send(message: dict[str, Any]) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            else:
                parts.append(message.get("body", b""))

        await self.app(scope, receive, send)
        return status, b"".join(parts)


def _body(i: int | None, stream: bool = False) -> bytes:
    text = "hi" if i is None else f"question {i}"
    payload: dict[str, Any] = {
        "model": configs.ROUTE,
        "messages": [{"role": "user", "content": text}],
        "temperature": 0,
        "user": "bench-user",
    }
    if stream:
        payload["stream"] = True
    return orjson.dumps(payload)


async def _app(kind: str, workdir: Path, redis_url: str | None = None) -> Any:
    from headway.config.load import load
    from headway.gateway import Gateway
    from headway.server.app import App
    from headway.services import Services

    runtime = load(text=yaml.safe_dump(configs.build(kind, 9, workdir, redis_url)))
    gateway = Gateway(runtime, services=Services(transport=CannedTransport()))
    app = App(gateway)
    await app.startup()
    return app


#: variant -> (config kind, stream, vary the body)
VARIANTS: dict[str, tuple[str, bool, bool]] = {
    "passthrough": ("passthrough", False, False),
    "stream": ("passthrough", True, False),
    "policies": ("policies", False, True),
    "cache_hit": ("cache", False, False),
    # limits, budgets and the exact cache in a redis-server of its own (started and stopped
    # with the app, outside the measured process: under callgrind only Python is counted)
    "redis": ("redis", False, True),
}


class _WithRedis:
    """An app whose redis-server stops with it."""

    def __init__(self, app: Any, procs: Procs) -> None:
        self.app = app
        self._procs = procs

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        await self.app(scope, receive, send)

    async def shutdown(self) -> None:
        try:
            await self.app.shutdown()
        finally:
            self._procs.stop_all()
            shutil.rmtree(self._procs.workdir, ignore_errors=True)


def _caller(
    driver: Driver, stream: bool, vary: bool
) -> Callable[[int], Awaitable[tuple[int, bytes]]]:
    def call(i: int) -> Awaitable[tuple[int, bytes]]:
        return driver.post(_body(i if vary else None, stream))

    return call


async def variant(
    name: str, workdir: Path
) -> tuple[Any, Callable[[int], Awaitable[tuple[int, bytes]]]]:
    """The started app of a variant (shut it down when done) and the call that sends it one
    request, numbered (a numbered request differs from every other where the variant varies)."""
    kind, stream, vary = VARIANTS[name]
    if kind != "redis":
        app = await _app(kind, workdir)
        return app, _caller(Driver(app), stream, vary)
    procs = Procs(Path(tempfile.mkdtemp(prefix="headway-inproc-")), Cores(None, None))
    try:
        server = procs.redis()
        app = _WithRedis(await _app(kind, workdir, f"redis://127.0.0.1:{server.port}/0"), procs)
    except BaseException:
        procs.stop_all()
        raise
    return app, _caller(Driver(app.app), stream, vary)


async def run(
    requests: int, variants: list[str], profile: str | None = None, rounds: int = 3
) -> tuple[dict[str, float], str]:
    """CPU microseconds per request for each variant (best of `rounds`, alternating, which
    removes most of what other processes add), and the profile text if one was asked for."""
    workdir = Path(tempfile.gettempdir())  # only named in configs; the ledger is off
    calls: dict[str, Callable[[int], Awaitable[tuple[int, bytes]]]] = {}
    apps = []
    for name in variants:
        app, calls[name] = await variant(name, workdir)
        apps.append(app)
        for i in range(max(50, requests // 10)):  # warm-up: imports, caches, the first entry
            status, data = await calls[name](-1 - i)
            if status != 200:
                raise RuntimeError(f"{name}: {status} {data[:300]!r}")
    best = {name: float("inf") for name in variants}
    offset = 0
    for _ in range(rounds):
        for name, send in calls.items():
            start = time.process_time()
            for i in range(requests):
                await send(offset + i)
            offset += requests
            best[name] = min(best[name], (time.process_time() - start) / requests * 1e6)
    report = ""
    if profile is not None:
        prof = cProfile.Profile()
        prof.enable()
        for i in range(requests):
            await calls[profile](offset + i)
        prof.disable()
        report = _ranking(prof)
    for app in apps:
        await app.shutdown()
    return {f"inproc_{name}_us": us for name, us in best.items()}, report


def _ranking(prof: cProfile.Profile, top: int = 40) -> str:
    buf = io.StringIO()
    stats = pstats.Stats(prof, stream=buf)
    stats.sort_stats("tottime").print_stats(top)
    stats.sort_stats("cumulative").print_stats(top)
    return buf.getvalue()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--requests", type=int, default=5000)
    parser.add_argument("--variants", default=",".join(VARIANTS))
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--cprofile", default=None, choices=list(VARIANTS))
    args = parser.parse_args()
    variants = [v for v in args.variants.split(",") if v]
    with asyncio.Runner(loop_factory=loop_factory()) as runner:
        out, report = runner.run(run(args.requests, variants, args.cprofile, args.rounds))
    if report:
        print(report)
    print(orjson.dumps(out).decode(), flush=True)


if __name__ == "__main__":
    main()
