"""Many concurrent streaming calls, timing each one's first token (TTFT) and checking it completes.

wrk times whole responses only, so the 1,000-connection scenario needs its own client. It is a
raw asyncio protocol on uvloop that does no JSON work: it finds the end of the head, stamps the
first body byte (TTFB) and the first event carrying text (`"content":"` followed by a character:
TTFT), and watches for `[DONE]` and the end of the body (Content-Length or chunked).

TTFT, not TTFB, is what the comparison uses: an OpenAI stream opens with a role-only event that
carries no token, which a gateway may fold into the first token's event, so first bytes are not
the same moment on both sides.
It runs as its own process on the load core and reports the share of that core it used, which
shows whether it could have been the bottleneck.

    python -m bench.streams --url http://127.0.0.1:4100/v1/chat/completions --model bench \
        --connections 1000 --duration 5 --ramp 1
"""

from __future__ import annotations

import argparse
import asyncio
import re
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import cast
from urllib.parse import urlsplit

import orjson

#: a stream that has not ended after this long counts as failed (and the run does not hang)
STREAM_TIMEOUT_S = 60.0

_TOKEN = re.compile(rb'"content":\s*"[^"]')


@dataclass(slots=True)
class Tally:
    ttft: list[float] = field(default_factory=list)
    ttfb: list[float] = field(default_factory=list)
    total: list[float] = field(default_factory=list)
    failed: int = 0
    errors: dict[str, int] = field(default_factory=dict)
    open_now: int = 0
    open_max: int = 0

    def fail(self, why: str) -> None:
        self.failed += 1
        self.errors[why] = self.errors.get(why, 0) + 1


class StreamConn(asyncio.Protocol):
    """One keep-alive connection carrying one stream at a time."""

    def __init__(self) -> None:
        self.transport: asyncio.Transport | None = None
        self.done: asyncio.Future[tuple[bool, float, float, float, str]] | None = None
        self._reset()

    def _reset(self) -> None:
        self.head = b""
        self.in_body = False
        self.ok = False
        self.chunked = False
        self.remaining = 0
        self.tail = b""
        self.saw_done = False
        self.t0 = 0.0
        self.ttfb = 0.0
        self.ttft = 0.0

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)

    def connection_lost(self, exc: Exception | None) -> None:
        self._finish(False, "connection lost")

    def send(self, request: bytes) -> asyncio.Future[tuple[bool, float, float, float, str]]:
        self._reset()
        self.done = asyncio.get_running_loop().create_future()
        self.t0 = time.perf_counter()
        assert self.transport is not None
        self.transport.write(request)
        return self.done

    def data_received(self, data: bytes) -> None:
        now = time.perf_counter()
        if not self.in_body:
            self.head += data
            end = self.head.find(b"\r\n\r\n")
            if end < 0:
                return
            head = self.head[:end].lower()
            data = self.head[end + 4 :]
            self.in_body = True
            self.ok = head.startswith(b"http/1.1 200")
            self.chunked = b"transfer-encoding: chunked" in head
            idx = head.find(b"content-length:")
            if idx >= 0:
                line_end = head.find(b"\r\n", idx)
                self.remaining = int(head[idx + 15 : line_end if line_end > 0 else None])
        if not data:
            return
        if self.ttfb == 0.0:
            self.ttfb = now - self.t0
        window = self.tail + data
        if self.ttft == 0.0 and _TOKEN.search(window):
            self.ttft = now - self.t0
        if b"[DONE]" in window:
            self.saw_done = True
        self.tail = window[-24:]  # enough for a marker split across reads
        if self.chunked:
            finished = self.tail.endswith(b"\r\n0\r\n\r\n")
        else:
            self.remaining -= len(data)
            finished = self.remaining <= 0
        if finished:
            why = "" if self.ok and self.saw_done else ("status" if not self.ok else "no [DONE]")
            self._finish(self.ok and self.saw_done, why, now)

    def _finish(self, ok: bool, why: str, now: float | None = None) -> None:
        if self.done is not None and not self.done.done():
            end = time.perf_counter() if now is None else now
            self.done.set_result((ok, self.ttft, self.ttfb, end - self.t0, why))


def request_bytes(url: str, model: str) -> bytes:
    parts = urlsplit(url)
    body = orjson.dumps(
        {"model": model, "stream": True, "messages": [{"role": "user", "content": "hi"}]}
    )
    head = (
        f"POST {parts.path} HTTP/1.1\r\nHost: {parts.netloc}\r\n"
        f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n"
    )
    return head.encode() + body


async def _slot(
    host: str, port: int, request: bytes, start_at: float, stop_at: float, tally: Tally
) -> None:
    loop = asyncio.get_running_loop()
    await asyncio.sleep(max(0.0, start_at - loop.time()))
    try:
        _, conn = await loop.create_connection(StreamConn, host, port)
    except OSError as exc:
        tally.fail(f"connect: {exc.strerror}")
        return
    try:
        while loop.time() < stop_at:
            tally.open_now += 1
            tally.open_max = max(tally.open_max, tally.open_now)
            try:
                sent = conn.send(request)
                ok, ttft, ttfb, total, why = await asyncio.wait_for(sent, STREAM_TIMEOUT_S)
            except TimeoutError:
                ok, ttft, ttfb, total, why = False, 0.0, 0.0, 0.0, "timeout"
            tally.open_now -= 1
            if not ok:
                tally.fail(why)
                return
            tally.ttft.append(ttft)
            tally.ttfb.append(ttfb)
            tally.total.append(total)
    finally:
        if conn.transport is not None:
            conn.transport.close()


def _pct(values: list[float], p: float) -> float:
    if not values:
        return 0.0
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(p / 100.0 * len(ordered)))] * 1000.0


async def run(
    url: str, model: str, connections: int, duration: float, ramp: float
) -> dict[str, object]:
    parts = urlsplit(url)
    host, port = parts.hostname or "127.0.0.1", parts.port or 80
    request = request_bytes(url, model)
    tally = Tally()
    loop = asyncio.get_running_loop()
    t0, cpu0 = loop.time(), time.process_time()
    stop_at = t0 + ramp + duration
    await asyncio.gather(
        *(
            _slot(host, port, request, t0 + ramp * i / connections, stop_at, tally)
            for i in range(connections)
        )
    )
    wall = loop.time() - t0
    return {
        "connections": connections,
        "streams": len(tally.ttft) + tally.failed,
        "completed": len(tally.ttft),
        "failed": tally.failed,
        "errors": tally.errors,
        "open_max": tally.open_max,
        "ttft_p50_ms": _pct(tally.ttft, 50),
        "ttft_p99_ms": _pct(tally.ttft, 99),
        "ttft_max_ms": max(tally.ttft, default=0.0) * 1000.0,
        "ttfb_p50_ms": _pct(tally.ttfb, 50),
        "ttfb_p99_ms": _pct(tally.ttfb, 99),
        "total_p50_ms": _pct(tally.total, 50),
        "client_cpu_share": (time.process_time() - cpu0) / wall if wall > 0 else 0.0,
    }


def loop_factory() -> Callable[[], asyncio.AbstractEventLoop] | None:
    try:
        import uvloop
    except ImportError:
        return None
    factory: Callable[[], asyncio.AbstractEventLoop] = uvloop.new_event_loop
    return factory


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--url", required=True)
    parser.add_argument("--model", default="bench")
    parser.add_argument("--connections", type=int, default=1000)
    parser.add_argument("--duration", type=float, default=5.0)
    parser.add_argument("--ramp", type=float, default=1.0)
    args = parser.parse_args()
    with asyncio.Runner(loop_factory=loop_factory()) as runner:
        result = runner.run(run(args.url, args.model, args.connections, args.duration, args.ramp))
    print(orjson.dumps(result).decode(), flush=True)


if __name__ == "__main__":
    main()
