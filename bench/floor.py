"""Reference servers that bound what the gateway's own code costs, run like the gateway is.

- `canned`: uvicorn (uvloop + httptools, the gateway's settings) with an ASGI app that answers
  a canned completion: the cost of the uvicorn server layer alone.
- `native`: the same canned answer from headway's own server (`headway.server.native`, what
  `headway serve` runs by default): the cost of the native server layer alone.
- `proxy`: uvicorn forwarding the body to the upstream with one shared aiohttp session and
  relaying the answer: server layer + upstream client, no gateway code. `native-proxy`: the
  same on the native server.

The gateway's CPU per request minus the proxy's (on the same server) is what headway's own code
costs; proxy minus canned is the upstream client. Ranking optimisations starts from these.

    python -m bench.floor --mode proxy --upstream-port 9100
"""

from __future__ import annotations

import argparse
import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

import aiohttp

from bench.upstream import _completion
from headway.server.http import Answer, Headers, Response, StreamResponse

Scope = dict[str, Any]
Receive = Callable[[], Awaitable[dict[str, Any]]]
Send = Callable[[dict[str, Any]], Awaitable[None]]

_JSON = [(b"content-type", b"application/json")]


async def _body(receive: Receive) -> bytes:
    parts = []
    while True:
        message = await receive()
        parts.append(message.get("body", b""))
        if not message.get("more_body", False):
            return b"".join(parts)


class Canned:
    def __init__(self) -> None:
        self.payload = _completion(24)
        self.length = str(len(self.payload)).encode()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return
        await _body(receive)
        headers = [*_JSON, (b"content-length", self.length)]
        await send({"type": "http.response.start", "status": 200, "headers": headers})
        await send({"type": "http.response.body", "body": self.payload})


class NativeCanned:
    """`Canned` for the native server: what `headway.server.native` asks of an app."""

    def __init__(self) -> None:
        self.response = Response(_completion(24))

    async def answer(
        self,
        method: str,
        path: str,
        query_string: bytes,
        headers: dict[str, str],
        read_body: Callable[[int], Awaitable[bytes]],
    ) -> tuple[Answer, str, float]:
        await read_body(1 << 20)
        return self.response, "", 0.0

    def head(self, answer: Answer, request_id: str, received: float) -> Headers:
        return list(_JSON)

    def stream_failed(self, answer: StreamResponse, request_id: str, exc: Exception) -> bytes:
        return b""

    async def startup(self) -> None:
        pass

    async def shutdown(self) -> None:
        pass


class NativeProxy(NativeCanned):
    """`Proxy` for the native server."""

    def __init__(self, upstream_port: int) -> None:
        self.proxy = Proxy(upstream_port)

    async def answer(
        self,
        method: str,
        path: str,
        query_string: bytes,
        headers: dict[str, str],
        read_body: Callable[[int], Awaitable[bytes]],
    ) -> tuple[Answer, str, float]:
        status, data = await self.proxy.forward(await read_body(1 << 20))
        return Response(data, status), "", 0.0


class Proxy:
    def __init__(self, upstream_port: int) -> None:
        self.url = f"http://127.0.0.1:{upstream_port}/v1/chat/completions"
        self.session: aiohttp.ClientSession | None = None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return
        status, data = await self.forward(await _body(receive))
        out = [*_JSON, (b"content-length", str(len(data)).encode())]
        await send({"type": "http.response.start", "status": status, "headers": out})
        await send({"type": "http.response.body", "body": data})

    async def forward(self, body: bytes) -> tuple[int, bytes]:
        if self.session is None:
            self.session = aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=1024))
        headers = {"Content-Type": "application/json", "Authorization": "Bearer bench"}
        async with self.session.post(self.url, data=body, headers=headers) as resp:
            return resp.status, await resp.read()


async def _serve_native(app: Any) -> None:
    from headway.server import native_serve
    from headway.server.run import bind_socket

    sock = bind_socket("127.0.0.1", 0)
    print(f"listening  http://127.0.0.1:{sock.getsockname()[1]}/v1", flush=True)
    await native_serve.serve(app, sock, max_body_bytes=1 << 20, grace_s=5.0)


async def _serve(app: Any) -> None:
    import uvicorn

    from headway.server.run import bind_socket, uvicorn_config

    sock = bind_socket("127.0.0.1", 0)
    print(f"listening  http://127.0.0.1:{sock.getsockname()[1]}/v1", flush=True)
    config = uvicorn_config(app, "warning")
    config.lifespan = "off"
    await uvicorn.Server(config).serve(sockets=[sock])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--mode", choices=list(MODES), required=True)
    parser.add_argument("--upstream-port", type=int, default=0)
    args = parser.parse_args()
    app: Any = MODES[args.mode](args.upstream_port)
    serve = _serve_native if args.mode.startswith("native") else _serve
    from bench.streams import loop_factory

    with asyncio.Runner(loop_factory=loop_factory()) as runner:
        runner.run(serve(app))


#: mode -> the app answering (given the upstream port); modes starting with "native" are served
#: by headway's own server, the others by uvicorn
MODES: dict[str, Callable[[int], Any]] = {
    "canned": lambda port: Canned(),
    "native": lambda port: NativeCanned(),
    "proxy": Proxy,
    "native-proxy": NativeProxy,
}


if __name__ == "__main__":
    main()
