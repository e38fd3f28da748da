"""Reference servers that bound what the gateway's own code costs, run like the gateway is.

- `canned`: uvicorn (uvloop + httptools, the gateway's settings) with an ASGI app that answers
  a canned completion: the cost of the server layer alone.
- `proxy`: the same app forwarding the body to the upstream with one shared aiohttp session and
  relaying the answer: server layer + upstream client, no gateway code.

The gateway's CPU per request minus `proxy`'s is what headway's own code costs; `proxy` minus
`canned` is the upstream client. Ranking optimisations starts from these three numbers.

    python -m bench.floor --mode proxy --upstream-port 9100
"""

from __future__ import annotations

import argparse
import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

import aiohttp

from bench.upstream import _completion

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


class Proxy:
    def __init__(self, upstream_port: int) -> None:
        self.url = f"http://127.0.0.1:{upstream_port}/v1/chat/completions"
        self.session: aiohttp.ClientSession | None = None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return
        body = await _body(receive)
        if self.session is None:
            self.session = aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=1024))
        headers = {"Content-Type": "application/json", "Authorization": "Bearer bench"}
        async with self.session.post(self.url, data=body, headers=headers) as resp:
            data = await resp.read()
            status = resp.status
        out = [*_JSON, (b"content-length", str(len(data)).encode())]
        await send({"type": "http.response.start", "status": status, "headers": out})
        await send({"type": "http.response.body", "body": data})


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
    parser.add_argument("--mode", choices=["canned", "proxy"], required=True)
    parser.add_argument("--upstream-port", type=int, default=0)
    args = parser.parse_args()
    app: Any = Canned() if args.mode == "canned" else Proxy(args.upstream_port)
    from bench.streams import loop_factory

    with asyncio.Runner(loop_factory=loop_factory()) as runner:
        runner.run(_serve(app))


if __name__ == "__main__":
    main()
