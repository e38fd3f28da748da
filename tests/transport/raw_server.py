"""A raw HTTP/1.1 server on loopback whose answers are bytes chosen by the test.

The client under test is the gateway's own HTTP client, so its server must be able to do what a
well-behaved framework never does: cut a body short, close a kept-alive connection without a
word, answer without a length. Each test passes `answer(request, writer)`; the server records
every request with the number of its connection, so tests count connections and reuse.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass


@dataclass
class RawRequest:
    method: str
    path: str
    headers: dict[str, str]
    body: bytes
    conn: int  # which connection (0, 1, ...) it came on
    nth: int  # its position on that connection (0: the connection's first request)


Answer = Callable[[RawRequest, asyncio.StreamWriter], Awaitable[None]]


def response(
    body: bytes = b"ok", status: str = "200 OK", headers: dict[str, str] | None = None
) -> bytes:
    fields = {"Content-Type": "text/plain", "Content-Length": str(len(body)), **(headers or {})}
    head = "".join(f"{k}: {v}\r\n" for k, v in fields.items())
    return f"HTTP/1.1 {status}\r\n{head}\r\n".encode() + body


async def ok(request: RawRequest, writer: asyncio.StreamWriter) -> None:
    writer.write(response(request.path.encode()))


class RawServer:
    def __init__(self, answer: Answer = ok, host: str = "127.0.0.1") -> None:
        self.answer = answer
        self.host = host
        self.requests: list[RawRequest] = []
        self.connections = 0
        self.closed = 0  # connections that ended
        self.changed = asyncio.Event()  # set on every request and every closed connection
        self.release = asyncio.Event()  # answers that hang wait on this; set at teardown
        self._server: asyncio.Server | None = None
        self._writers: list[asyncio.StreamWriter] = []
        self.port = 0

    @property
    def url(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}"

    async def start(self, **kwargs: object) -> RawServer:
        self._server = await asyncio.start_server(self._serve, self.host, 0, **kwargs)  # type: ignore[arg-type]
        self.port = self._server.sockets[0].getsockname()[1]
        return self

    async def stop(self) -> None:
        self.release.set()
        for writer in self._writers:
            writer.transport.abort()
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()

    async def wait_for(self, condition: Callable[[], bool]) -> None:
        """Until `condition()` holds; events drive it, and pytest-timeout bounds it."""
        while not condition():
            self.changed.clear()
            await self.changed.wait()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        conn = self.connections
        self.connections += 1
        self._writers.append(writer)
        nth = 0
        try:
            while True:
                try:
                    head = await reader.readuntil(b"\r\n\r\n")
                except (asyncio.IncompleteReadError, ConnectionError):
                    return
                lines = head.decode("latin-1").split("\r\n")
                method, path, _ = lines[0].split(" ", 2)
                headers = {}
                for line in lines[1:]:
                    if line:
                        name, _, value = line.partition(":")
                        headers[name.strip().lower()] = value.strip()
                body = await reader.readexactly(int(headers.get("content-length", "0")))
                request = RawRequest(method, path, headers, body, conn, nth)
                nth += 1
                self.requests.append(request)
                self.changed.set()
                await self.answer(request, writer)
                if writer.is_closing():
                    return
                await writer.drain()
        except ConnectionError:
            return
        finally:
            writer.close()
            self.closed += 1
            self.changed.set()
