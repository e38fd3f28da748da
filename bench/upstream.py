"""A deliberately minimal OpenAI-shaped upstream for benchmarks.

It answers from canned bytes on a raw asyncio protocol (uvloop), so that in a benchmark the gateway,
not the fake upstream, is the thing being measured. It understands just enough HTTP/1.1: keep-alive,
Content-Length bodies, and whether the body asks for `"stream": true`. A fixed `delay_ms` models a
slow provider without costing CPU; `interval_ms` spaces a stream's events in time, so that many
streams can be open at once (the 1,000-connection scenario).

Delayed answers are timed by `--timer precise` (default: each answer `delay_ms` after its request
arrived, to ~0.1 ms) or `--timer loop` (the event loop's timers, which gather answers onto a
millisecond grid and so send them in bursts), and `--jitter-ms J` spreads each delay uniformly
over +/- J; bench/timers.py says why. `GET /bench/stats` returns how the delayed answers fell
in time since the last such request (share written within 100 us of the previous one, timer
lateness) and starts a new window. The zero-delay path uses no timer at all.

    python -m bench.upstream --port 9100 [--delay-ms 50] [--timer precise|loop] [--jitter-ms 1]
        [--chunks 24] [--interval-ms 100]

`--port 0` picks a free port; the first line printed names the one in use.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
from functools import partial
from typing import cast

import orjson

from bench.timers import TIMERS, Delayed
from headway.server import fdtable
from headway.server.gcpace import GcPacer


def _completion(chunks: int) -> bytes:
    text = " ".join(["word"] * chunks)
    body = {
        "id": "chatcmpl-bench",
        "object": "chat.completion",
        "created": 1767225600,
        "model": "bench-model",
        "choices": [
            {
                "index": 0,
                "message": {"role": "assistant", "content": text},
                "logprobs": None,
                "finish_reason": "stop",
            }
        ],
        "usage": {"prompt_tokens": 12, "completion_tokens": chunks, "total_tokens": 12 + chunks},
    }
    return orjson.dumps(body)


def _sse(chunks: int) -> list[bytes]:
    def frame(delta: dict[str, object], finish: str | None = None, usage: object = None) -> bytes:
        chunk = {
            "id": "chatcmpl-bench",
            "object": "chat.completion.chunk",
            "created": 1767225600,
            "model": "bench-model",
            "choices": [{"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish}],
        }
        return b"data: " + orjson.dumps(chunk) + b"\n\n"

    out = [frame({"role": "assistant", "content": ""})]
    out += [frame({"content": "word "}) for _ in range(chunks - 2)]
    out.append(frame({}, "stop"))
    usage = {
        "id": "chatcmpl-bench",
        "object": "chat.completion.chunk",
        "created": 1767225600,
        "model": "bench-model",
        "choices": [],
        "usage": {"prompt_tokens": 12, "completion_tokens": chunks, "total_tokens": 12 + chunks},
    }
    out.append(b"data: " + orjson.dumps(usage) + b"\n\n")
    out.append(b"data: [DONE]\n\n")
    return out


def _head(status: bytes, ctype: bytes, length: int) -> bytes:
    return (
        b"HTTP/1.1 "
        + status
        + b"\r\ncontent-type: "
        + ctype
        + b"\r\ncontent-length: "
        + str(length).encode()
        + b"\r\nx-ratelimit-remaining-requests: 100000\r\nx-ratelimit-remaining-tokens: 100000000"
        + b"\r\n\r\n"
    )


def _http(status: bytes, ctype: bytes, body: bytes) -> bytes:
    return _head(status, ctype, len(body)) + body


class Canned:
    def __init__(self, chunks: int) -> None:
        self.json = _http(b"200 OK", b"application/json", _completion(chunks))
        frames = _sse(chunks)
        self.sse = _http(b"200 OK", b"text/event-stream", b"".join(frames))
        # the same stream cut into its events, the head travelling with the first one
        body_len = sum(len(f) for f in frames)
        self.sse_frames = [_head(b"200 OK", b"text/event-stream", body_len) + frames[0]]
        self.sse_frames += frames[1:]
        self.models = _http(
            b"200 OK",
            b"application/json",
            b'{"object":"list","data":[{"id":"bench-model","object":"model","created":0,"owned_by":"bench"}]}',
        )
        self.embed = _http(
            b"200 OK",
            b"application/json",
            orjson.dumps(
                {
                    "object": "list",
                    "model": "bench-embed",
                    "data": [{"object": "embedding", "index": 0, "embedding": [0.1] * 8}],
                    "usage": {"prompt_tokens": 2, "total_tokens": 2},
                }
            ),
        )


class UpstreamProtocol(asyncio.Protocol):
    def __init__(
        self,
        canned: Canned,
        delayed: Delayed | None = None,
        interval: float = 0.0,
    ) -> None:
        self.canned = canned
        self.delayed = delayed
        self.interval = interval
        self.buf = b""
        self.transport: asyncio.Transport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)

    def data_received(self, data: bytes) -> None:
        self.buf += data
        while True:
            head_end = self.buf.find(b"\r\n\r\n")
            if head_end < 0:
                return
            head = self.buf[:head_end].lower()
            length = 0
            idx = head.find(b"content-length:")
            if idx >= 0:
                line_end = head.find(b"\r\n", idx)
                length = int(head[idx + 15 : line_end if line_end > 0 else None].strip())
            total = head_end + 4 + length
            if len(self.buf) < total:
                return
            body = self.buf[head_end + 4 : total]
            self.buf = self.buf[total:]
            self._answer(head, body)

    def _answer(self, head: bytes, body: bytes) -> None:
        if head.startswith(b"get "):
            if head.startswith(b"get /bench/stats"):
                self._stats()  # at once: the log is not part of what the delay models
                return
            payload = self.canned.models
        elif b"/embeddings" in head[:64]:
            payload = self.canned.embed
        elif b'"stream":true' in body or b'"stream": true' in body:
            if self.interval > 0 and self.transport is not None:
                self._trickle(self.transport)
                return
            payload = self.canned.sse
        else:
            payload = self.canned.json
        transport = self.transport
        if transport is None:
            return
        if self.delayed is not None:
            self.delayed.later(partial(_write, transport, payload))
        else:
            transport.write(payload)

    def _stats(self) -> None:
        """The log of delayed answers since the last read (bench.timers.AnswerLog)."""
        taken = self.delayed.log.take() if self.delayed is not None else {}
        if self.transport is not None:
            self.transport.write(_http(b"200 OK", b"application/json", orjson.dumps(taken)))

    def _trickle(self, transport: asyncio.Transport) -> None:
        # Each frame schedules the next, which keeps them in order (timers a millisecond apart
        # may fire in either order). A client sends its next request only after a stream ended,
        # so two streams on one connection never interleave. The events after the first are
        # paced by the loop's timers: 1,000 streams make ~10,000 events a second, dense enough
        # that the millisecond grid adds little, and a thread hop per event would cost the
        # load core.
        frames = self.canned.sse_frames
        loop = asyncio.get_running_loop()
        interval = self.interval

        def send(i: int) -> None:
            if transport.is_closing():
                return
            transport.write(frames[i])
            if i + 1 < len(frames):
                loop.call_later(interval, send, i + 1)

        if self.delayed is not None:
            self.delayed.later(partial(send, 0))
        else:
            send(0)


def _write(transport: asyncio.Transport, payload: bytes) -> None:
    if not transport.is_closing():
        transport.write(payload)


async def serve(
    host: str,
    port: int,
    delay_ms: float,
    chunks: int,
    interval_ms: float = 0.0,
    timer: str = "precise",
    jitter_ms: float = 0.0,
) -> None:
    canned = Canned(chunks)
    loop = asyncio.get_running_loop()
    # no timer (and no timer thread) at all when nothing is delayed
    delayed = None
    if delay_ms > 0:
        delayed = Delayed(TIMERS[timer](loop), delay_ms / 1000.0, jitter_ms / 1000.0)
    server = await loop.create_server(
        lambda: UpstreamProtocol(canned, delayed, interval_ms / 1000.0),
        host,
        port,
        backlog=4096,
    )
    port = server.sockets[0].getsockname()[1]
    # The gateway's own GC pacing: left to CPython, the oldest generation's collections grew with
    # each wave of new connections and stalled this process 10-15 ms, which landed in the
    # 1,000-stream TTFT tail of whichever side (direct or gateway) opened the connections
    gc.collect()
    gc.freeze()
    GcPacer(loop).start()
    print(
        f"bench upstream on http://{host}:{port}/v1 "
        f"(delay {delay_ms} ms, jitter {jitter_ms} ms, {timer} timer)",
        flush=True,
    )
    async with server:
        await server.serve_forever()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=9100)
    parser.add_argument("--delay-ms", type=float, default=0.0)
    parser.add_argument("--chunks", type=int, default=24)
    parser.add_argument("--interval-ms", type=float, default=0.0)
    parser.add_argument("--timer", choices=sorted(TIMERS), default="precise")
    parser.add_argument("--jitter-ms", type=float, default=0.0)
    args = parser.parse_args()
    fdtable.reserve()  # before the timer thread: see headway.server.fdtable
    try:
        import uvloop

        uvloop.install()
    except ImportError:
        pass
    asyncio.run(
        serve(
            args.host,
            args.port,
            args.delay_ms,
            args.chunks,
            args.interval_ms,
            args.timer,
            args.jitter_ms,
        )
    )


if __name__ == "__main__":
    main()
