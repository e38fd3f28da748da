"""Running the native server in-process, and a raw HTTP/1.1 client that reads answers exactly."""

from __future__ import annotations

import asyncio
import socket
from collections import deque
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, field

import httptools

from headway.gateway import Gateway
from headway.server.app import App
from headway.server.native_serve import NativeServer
from headway.server.routes import MOUNTS


@dataclass(slots=True)
class Native:
    base: str
    port: int
    server: NativeServer
    app: App


@asynccontextmanager
async def serving(
    gateway: Gateway,
    *,
    mounts: Sequence[str] = MOUNTS,
    max_body_bytes: int | None = None,
    keepalive_s: float = 5.0,
) -> AsyncIterator[Native]:
    """Serve `gateway` with the native server on a free loopback port."""
    app = App(gateway, mounts=mounts, max_body_bytes=max_body_bytes)
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    server = NativeServer(app, max_body_bytes=app.context.max_body_bytes, keepalive_s=keepalive_s)
    await server.start(sock)
    stopped = False
    try:
        yield Native(f"http://127.0.0.1:{port}", port, server, app)
        await server.stop()
        stopped = True
    finally:
        if not stopped:
            await server.stop()
        sock.close()


@dataclass(slots=True)
class Answer:
    status: int = 0
    headers: dict[str, str] = field(default_factory=dict)
    body: bytes = b""


class Raw:
    """One client connection; `answer()` returns the next complete response, in order."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader, self.writer = reader, writer
        self.parser = httptools.HttpResponseParser(self)
        self.done: deque[Answer] = deque()
        self.current = Answer()
        self.received = b""  # every byte, for byte-level checks

    # httptools callbacks
    def on_message_begin(self) -> None:
        self.current = Answer()

    def on_header(self, name: bytes, value: bytes) -> None:
        self.current.headers[name.decode().lower()] = value.decode()

    def on_body(self, body: bytes) -> None:
        self.current.body += body

    def on_message_complete(self) -> None:
        self.current.status = self.parser.get_status_code()
        self.done.append(self.current)

    async def send(self, data: bytes) -> None:
        self.writer.write(data)
        await self.writer.drain()

    async def answer(self) -> Answer:
        while not self.done:
            data = await asyncio.wait_for(self.reader.read(65536), 10)
            if not data:
                raise EOFError("the server closed the connection")
            self.received += data
            self.parser.feed_data(data)
        return self.done.popleft()

    async def at_eof(self) -> bool:
        """True once the server closed the connection (after any bytes still on the way)."""
        while True:
            data = await asyncio.wait_for(self.reader.read(65536), 10)
            if not data:
                return True
            self.received += data

    def close(self) -> None:
        self.writer.close()


@asynccontextmanager
async def connect(port: int) -> AsyncIterator[Raw]:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    raw = Raw(reader, writer)
    try:
        yield raw
    finally:
        raw.close()


def post(path: str, body: bytes, *extra: str, version: str = "1.1") -> bytes:
    head = [f"POST {path} HTTP/{version}", "host: x", "content-type: application/json"]
    head += [f"content-length: {len(body)}", *extra]
    return ("\r\n".join(head) + "\r\n\r\n").encode() + body


def get(path: str, *extra: str, version: str = "1.1") -> bytes:
    return ("\r\n".join([f"GET {path} HTTP/{version}", "host: x", *extra]) + "\r\n\r\n").encode()
