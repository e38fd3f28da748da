"""A tiny scripted OpenAI-shaped HTTP server for provider tests (real HTTP over loopback).

Each request takes the next scripted `Reply` (or the default one) and is recorded. Payload shapes
follow providers.md (2.6, 2.7, 2.8, 3, 7). Handlers that must hang wait on `release`, which the
fixture sets at teardown, so no test waits on a timer to shut the server down.
"""

from __future__ import annotations

import asyncio
from collections import deque
from dataclasses import dataclass, field
from typing import Any

import orjson
from aiohttp import web
from aiohttp.test_utils import TestServer


@dataclass
class Reply:
    status: int = 200
    json: Any = None
    #: SSE frames, written one write() each; None: a JSON answer
    frames: list[bytes] | None = None
    headers: dict[str, str] = field(default_factory=dict)
    #: wait (until teardown) before sending anything
    hang: bool = False
    #: after the frames, wait (until teardown) instead of ending the body
    hang_after: bool = False
    #: after the frames, drop the connection without ending the chunked body
    reset_after: bool = False
    #: after the frames, repeat this frame every `gap_s` until teardown (keep-alive pings)
    repeat: bytes | None = None
    gap_s: float = 0.02
    #: a body sent as is instead of `json` (non-JSON error pages)
    raw: bytes | None = None


@dataclass
class Seen:
    method: str
    path: str
    query: dict[str, str]
    headers: dict[str, str]
    body: Any
    peer_port: int


class ScriptedServer:
    def __init__(self) -> None:
        self.replies: deque[Reply] = deque()
        self.default = Reply(json=completion("hi"))
        self.seen: list[Seen] = []
        self.release = asyncio.Event()
        self.in_flight = 0
        self.max_in_flight = 0
        app = web.Application()
        app.router.add_route("*", "/{tail:.*}", self._handle)
        self.server = TestServer(app, host="127.0.0.1")

    @property
    def url(self) -> str:
        return str(self.server.make_url("")).rstrip("/")

    def script(self, *replies: Reply) -> None:
        self.replies.extend(replies)

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        raw = await request.read()
        peer = request.transport.get_extra_info("peername") if request.transport else None
        self.seen.append(
            Seen(
                request.method,
                request.path,
                dict(request.query),
                {k.lower(): v for k, v in request.headers.items()},
                orjson.loads(raw) if raw else None,
                peer[1] if peer else 0,
            )
        )
        reply = self.replies.popleft() if self.replies else self.default
        self.in_flight += 1
        self.max_in_flight = max(self.max_in_flight, self.in_flight)
        try:
            return await self._answer(request, reply)
        finally:
            self.in_flight -= 1

    async def _answer(self, request: web.Request, reply: Reply) -> web.StreamResponse:
        if reply.hang:
            await self.release.wait()
        if reply.frames is None:
            body = reply.raw if reply.raw is not None else orjson.dumps(reply.json)
            return web.Response(
                status=reply.status,
                body=body,
                headers={"Content-Type": "application/json", **reply.headers},
            )
        resp = web.StreamResponse(
            status=reply.status, headers={"Content-Type": "text/event-stream", **reply.headers}
        )
        await resp.prepare(request)
        for frame in reply.frames:
            await resp.write(frame)
        if reply.repeat is not None:
            while not self.release.is_set():
                await resp.write(reply.repeat)
                # pacing a simulated upstream, not waiting for a timer under test
                await asyncio.sleep(reply.gap_s)
        if reply.hang_after:
            await self.release.wait()
        if reply.reset_after and request.transport is not None:
            request.transport.abort()
            return resp
        await resp.write_eof()
        return resp


# ---- recorded-shape payloads (providers.md) ------------------------------------------------------


def usage(
    prompt: int = 19, completion: int = 3, cached: int = 0, reasoning: int = 0
) -> dict[str, Any]:
    return {
        "prompt_tokens": prompt,
        "completion_tokens": completion,
        "total_tokens": prompt + completion,
        "prompt_tokens_details": {"cached_tokens": cached, "audio_tokens": 0},
        "completion_tokens_details": {"reasoning_tokens": reasoning, "audio_tokens": 0},
    }


def completion(
    content: str | None,
    *,
    finish: str | None = "stop",
    tool_calls: list[Any] | None = None,
    usage_body: dict[str, Any] | None = None,
) -> dict[str, Any]:
    message: dict[str, Any] = {"role": "assistant", "content": content, "refusal": None}
    if tool_calls is not None:
        message["tool_calls"] = tool_calls
    return {
        "id": "chatcmpl-9xYz",
        "object": "chat.completion",
        "created": 1767225600,
        "model": "gpt-4o-mini-2024-07-18",
        "system_fingerprint": "fp_0123abcd",
        "choices": [{"index": 0, "message": message, "logprobs": None, "finish_reason": finish}],
        "usage": usage_body if usage_body is not None else usage(),
    }


def frame(obj: Any) -> bytes:
    return b"data: " + orjson.dumps(obj) + b"\n\n"


DONE = b"data: [DONE]\n\n"


def chunk(delta: dict[str, Any], finish: str | None = None, **extra: Any) -> bytes:
    body = {
        "id": "chatcmpl-1",
        "object": "chat.completion.chunk",
        "created": 1767225600,
        "model": "gpt-4o-mini-2024-07-18",
        "system_fingerprint": "fp_1",
        "choices": [{"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish}],
        "usage": None,
        **extra,
    }
    return frame(body)


def usage_chunk(prompt: int = 9, completion: int = 2) -> bytes:
    return frame(
        {
            "id": "chatcmpl-1",
            "object": "chat.completion.chunk",
            "created": 1767225600,
            "model": "gpt-4o-mini-2024-07-18",
            "choices": [],
            "usage": usage(prompt, completion),
        }
    )


def text_stream(*parts: str, with_usage: bool = True, done: bool = True) -> list[bytes]:
    frames = [chunk({"role": "assistant", "content": "", "refusal": None})]
    frames += [chunk({"content": p}) for p in parts]
    frames.append(chunk({}, "stop"))
    if with_usage:
        frames.append(usage_chunk())
    if done:
        frames.append(DONE)
    return frames


def error_body(
    message: str, type_: str | None, code: Any, param: str | None = None
) -> dict[str, Any]:
    return {"error": {"message": message, "type": type_, "param": param, "code": code}}
