"""The library path: what `Gateway.chat` adds over a raw call with the same HTTP client.

Sequential calls to the bench upstream from one process, so the figure is per-call latency with
no concurrency: raw aiohttp (post, read, orjson.loads) versus `Gateway.chat` with no policies and
with memory-backed limits, budgets and an exact-cache lookup that misses (every message differs).
Since the gateway has its own upstream client, the raw call is also made with that client
(`headway.transport.http.Transport.request`, then `orjson.loads`): `library_client_*` compare
against it, which is "the same HTTP client" whatever the gateway uses.
Each variant runs `rounds` times, alternating, and keeps its best round, which removes most of the
noise other processes on the machine add. Besides the latency (`library_*_us`, wall clock, which
includes the upstream's time and whatever else the machine runs), this process's own CPU per call
is reported (`library_cpu_*_us`, `time.process_time`): the upstream runs in another process, so
that figure is the client's and headway's work alone and barely depends on the machine's load.

    python -m bench.library --upstream-port 9100 --calls 2000
"""

from __future__ import annotations

import argparse
import asyncio
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import TYPE_CHECKING

import orjson
import yaml

from bench import configs
from bench.streams import loop_factory

if TYPE_CHECKING:
    from headway.gateway import Gateway
    from headway.transport.http import Transport

Call = Callable[[int], Awaitable[object]]
HEADERS = {"Content-Type": "application/json", "Authorization": "Bearer bench"}


def client_call(transport: Transport, port: int) -> Call:
    """A raw call with headway's own HTTP client: `Transport.request`, then `orjson.loads`."""
    from headway.providers.base import HttpCall
    from headway.wire.openai.egress import CHAT_PATH

    base_url = f"http://127.0.0.1:{port}/v1"

    async def client(i: int) -> object:
        body = {
            "model": "bench-model",
            "messages": [{"role": "user", "content": f"question {i}"}],
            "temperature": 0,
        }
        result = await transport.request(HttpCall("POST", CHAT_PATH, body), base_url, HEADERS)
        return orjson.loads(result.body)

    return client


def chat_call(gw: Gateway) -> Call:
    """A `Gateway.chat` call, a different message each time (an exact cache misses)."""

    async def call(i: int) -> object:
        messages = [{"role": "user", "content": f"question {i}"}]
        return await gw.chat(model=configs.ROUTE, messages=messages, temperature=0)

    return call


async def _time(call: Call, calls: int, offset: int) -> tuple[float, float]:
    """Mean microseconds per call over `calls` sequential calls: (wall clock, this process's CPU)."""
    start = time.perf_counter()
    cpu = time.process_time()
    for i in range(calls):
        await call(offset + i)
    cpu = time.process_time() - cpu
    return (time.perf_counter() - start) / calls * 1e6, cpu / calls * 1e6


async def run(port: int, calls: int, rounds: int, warmup: int) -> dict[str, float]:
    import aiohttp  # here: bench.instr counts `client_call` under valgrind, where imports cost

    from headway.config.load import load
    from headway.gateway import Gateway
    from headway.transport.http import Transport

    workdir = Path(tempfile.gettempdir())  # only named in configs; the ledger is off

    def gateway(kind: str) -> Gateway:
        text = yaml.safe_dump(configs.build(kind, port, workdir))
        return Gateway(load(text=text))

    url = f"http://127.0.0.1:{port}/v1/chat/completions"
    headers = HEADERS
    connector = aiohttp.TCPConnector(limit=16)
    async with (
        aiohttp.ClientSession(connector=connector) as session,
        gateway("passthrough") as plain,
        gateway("policies") as policies,
    ):

        async def raw(i: int) -> object:
            body = {
                "model": "bench-model",
                "messages": [{"role": "user", "content": f"question {i}"}],
                "temperature": 0,
            }
            async with session.post(url, data=orjson.dumps(body), headers=headers) as resp:
                return orjson.loads(await resp.read())

        transport = Transport()
        variants: dict[str, Call] = {
            "raw": raw,
            "client": client_call(transport, port),
            "gateway": chat_call(plain),
            "policies": chat_call(policies),
        }
        best = {name: float("inf") for name in variants}
        best_cpu = dict(best)
        offset = 0
        for call in variants.values():
            await _time(call, warmup, offset)
            offset += warmup
        for _ in range(rounds):
            for name, call in variants.items():
                wall, cpu = await _time(call, calls, offset)
                best[name] = min(best[name], wall)
                best_cpu[name] = min(best_cpu[name], cpu)
                offset += calls
        await transport.aclose()
    return {
        "library_raw_us": best["raw"],
        "library_gw_us": best["gateway"],
        "library_added_us": best["gateway"] - best["raw"],
        "library_policies_us": best["policies"],
        "library_policies_added_us": best["policies"] - best["raw"],
        "library_cpu_raw_us": best_cpu["raw"],
        "library_cpu_gw_us": best_cpu["gateway"],
        "library_cpu_added_us": best_cpu["gateway"] - best_cpu["raw"],
        "library_cpu_policies_us": best_cpu["policies"],
        "library_cpu_policies_added_us": best_cpu["policies"] - best_cpu["raw"],
        "library_client_us": best["client"],
        "library_client_added_us": best["gateway"] - best["client"],
        "library_client_policies_added_us": best["policies"] - best["client"],
        "library_cpu_client_us": best_cpu["client"],
        "library_cpu_client_added_us": best_cpu["gateway"] - best_cpu["client"],
        "library_cpu_client_policies_added_us": best_cpu["policies"] - best_cpu["client"],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--upstream-port", type=int, required=True)
    parser.add_argument("--calls", type=int, default=2000)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--warmup", type=int, default=200)
    args = parser.parse_args()
    with asyncio.Runner(loop_factory=loop_factory()) as runner:
        out = runner.run(run(args.upstream_port, args.calls, args.rounds, args.warmup))
    print(orjson.dumps(out).decode(), flush=True)


if __name__ == "__main__":
    main()
