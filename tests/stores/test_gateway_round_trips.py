"""What one request costs in Redis commands when limits, budgets, breakers and the exact cache
all live in Redis: the commands a replica sends, counted on the client and on the server."""

from __future__ import annotations

from typing import Any

import redis.asyncio as aioredis

from headway.clock import FakeClock
from headway.config.load import load
from headway.gateway import Gateway
from headway.stores.redis import RedisClient
from tests.limits.test_redis_store import Counting

CONFIG = """
providers:
  p:
    kind: sim
    sim: {latency_p50_ms: 0, latency_p99_ms: 0, ttft_p50_ms: 0, ms_per_token: 0}
models: {m: {provider: p, model: m, input_price: 1.0, output_price: 1.0}}
routes: {r: {chain: [m], breaker: {consecutive_failures: 5}}}
state: {backend: redis, redis_url: '%s'}
limits: {enabled: true, global: {rpm: 1000000, tpm: 1000000000}, user: {rpm: 1000000}}
budgets: {enabled: true, global: [{period: day, usd: 1000000}]}
cache: {enabled: true, backend: redis, semantic: {enabled: false}}
ledger: {enabled: false}
"""


async def test_a_request_sends_four_commands_and_no_breaker_write(
    redis_url: str, fake_clock: FakeClock
) -> None:
    admin: Any = aioredis.from_url(redis_url)
    await admin.flushdb()
    gw = Gateway(load(text=CONFIG % redis_url, env={}), clock=fake_clock)
    try:
        shared = gw.services.extras["redis"]
        assert isinstance(shared, RedisClient)  # the limits stage made headway's own client
        for i in range(3):  # scripts loaded, breaker state read once
            await gw.chat(model="r", messages=[{"role": "user", "content": f"warm {i}"}])
        await admin.config_resetstat()
        limits = Counting(shared)
        for i in range(10):  # every body differs: ten cache misses
            await gw.chat(model="r", messages=[{"role": "user", "content": f"q {i}"}], user="u")
        stats = await admin.info("commandstats")
        reads = (await admin.info("stats"))["total_reads_processed"]
    finally:
        await gw.aclose()
        await admin.aclose()
    # reserve + settle for every limit and budget on the shared client, which the breakers use
    # too: their successes are not written, and their state is not read again within 0.25 s
    # the cache's GET too: one client, one connection; its SET is written without awaiting
    # its reply, in the same socket write as the settlement after it
    assert limits.sent == ["EVALSHA", "GET", "EVALSHA"] * 10
    assert reads == 3 * 10 + 2  # Redis read each request's commands in three reads (+ 2 INFO)
    calls = {k.removeprefix("cmdstat_"): v["calls"] for k, v in stats.items()}
    assert calls["evalsha"] == 20 and calls["get"] == 10 and calls["set"] == 10
    assert "eval" not in calls and "script|exists" not in calls and "hello" not in calls
    assert not any(k.startswith("client") for k in calls)  # no per-connection set-up
