"""The ASGI app's stream pump (App._stream): the body is pumped in the request's own task and a
client that goes away (`receive` returns) cancels it, which closes the upstream stream."""

from __future__ import annotations

import asyncio
from typing import Any

import orjson
import pytest

from headway.server.app import App
from tests.server.helpers import Scripted, scripted_gateway

BODY = orjson.dumps({"model": "m", "messages": [{"role": "user", "content": "hi"}], "stream": True})


class Client:
    """An ASGI client: sends the body, then `leave()` makes `receive` report a disconnect."""

    def __init__(self) -> None:
        self.sent: list[dict[str, Any]] = []
        self.first_body = asyncio.Event()
        self._left = asyncio.Event()
        self._body_sent = False

    def scope(self) -> dict[str, Any]:
        return {
            "type": "http",
            "method": "POST",
            "path": "/v1/chat/completions",
            "query_string": b"",
            "headers": [(b"content-type", b"application/json")],
        }

    def leave(self) -> None:
        self._left.set()

    async def receive(self) -> dict[str, Any]:
        if not self._body_sent:
            self._body_sent = True
            return {"type": "http.request", "body": BODY, "more_body": False}
        await self._left.wait()
        return {"type": "http.disconnect"}

    async def send(self, message: dict[str, Any]) -> None:
        self.sent.append(message)
        if message["type"] == "http.response.body":
            self.first_body.set()

    def bodies(self) -> list[bytes]:
        return [m["body"] for m in self.sent if m["type"] == "http.response.body"]


async def test_a_whole_stream_ends_with_the_last_body_message() -> None:
    provider = Scripted("m")
    app = App(scripted_gateway(provider))
    client = Client()
    await app(client.scope(), client.receive, client.send)
    assert client.sent[0]["status"] == 200
    assert client.bodies()[-1] == b"" and client.sent[-1]["more_body"] is False
    assert b"data: [DONE]\n\n" in b"".join(client.bodies())
    assert provider.completed
    await app.shutdown()


async def test_a_client_that_leaves_cancels_the_upstream_stream() -> None:
    provider = Scripted("m", hang=True)
    app = App(scripted_gateway(provider))
    client = Client()
    call = asyncio.ensure_future(app(client.scope(), client.receive, client.send))
    await client.first_body.wait()  # the first token went out; the provider now hangs
    client.leave()
    await asyncio.wait_for(call, timeout=10)  # the app returns normally: nobody to answer
    assert provider.closed.is_set() and not provider.completed
    assert all(m.get("more_body", True) for m in client.sent[1:])  # no end of body was sent
    task = asyncio.current_task()
    assert task is not None and task.cancelling() == 0
    await app.shutdown()


async def test_a_cancelled_request_task_stays_cancelled() -> None:
    provider = Scripted("m", hang=True)
    app = App(scripted_gateway(provider))
    client = Client()
    call = asyncio.ensure_future(app(client.scope(), client.receive, client.send))
    await client.first_body.wait()
    call.cancel()
    with pytest.raises(asyncio.CancelledError):
        await call
    assert provider.closed.is_set()
    await app.shutdown()
