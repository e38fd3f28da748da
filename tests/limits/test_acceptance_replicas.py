"""Acceptance: limits and budgets hold across three gateway processes sharing one Redis.

Real `headway serve` processes, real HTTP over loopback, the fake OpenAI provider in this
process. Each test prints its figures (run with `-s` to see them).
"""

from __future__ import annotations

import asyncio
import math
import os
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from headway.providers.fake.harness import RunningFake, running_fake
from tests.conftest import free_port

PROMPT = "Say something about rate limits."


def write_config(tmp: Path, fake: RunningFake, redis_url: str, body: str) -> Path:
    path = tmp / "headway.yaml"
    path.write_text(
        f"""
providers:
  fake: {{kind: openai, base_url: "{fake.url}", api_key: x}}
models:
  m: {{provider: fake, model: gpt-4o-mini, input_price: 1.0, output_price: 1.0}}
state: {{backend: redis, redis_url: "{redis_url}"}}
ledger: {{enabled: false}}
{body}
"""
    )
    return path


@contextmanager
def gateways(config: Path, n: int, tmp: Path) -> Iterator[list[str]]:
    """`n` separate `headway serve` processes on their own ports."""
    env = {k: v for k, v in os.environ.items() if k != "HEADWAY_MASTER_KEY"}
    procs: list[subprocess.Popen[bytes]] = []
    urls: list[str] = []
    try:
        for i in range(n):
            port = free_port()
            log = (tmp / f"gateway{i}.log").open("wb")
            cmd = [sys.executable, "-m", "headway", "serve", "--config", str(config)]
            cmd += ["--port", str(port), "--log-level", "warning"]
            procs.append(subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, env=env))
            urls.append(f"http://127.0.0.1:{port}")
        yield urls
    finally:
        for p in procs:
            p.terminate()
        for p in procs:
            try:
                p.wait(timeout=20)
            except subprocess.TimeoutExpired:
                p.kill()


async def wait_ready(session: aiohttp.ClientSession, urls: list[str]) -> None:
    deadline = time.monotonic() + 60
    for url in urls:
        while True:
            try:
                async with session.get(url + "/health") as resp:
                    if resp.status == 200:
                        break
            except aiohttp.ClientError:
                pass
            if time.monotonic() > deadline:
                pytest.fail(f"gateway at {url} did not start")
            await asyncio.sleep(0.1)  # waiting for a child process to listen, not a timer


@asynccontextmanager
async def cluster(
    tmp: Path, fake: RunningFake, redis_url: str, body: str
) -> AsyncIterator[tuple[aiohttp.ClientSession, list[str]]]:
    import redis.asyncio as aioredis

    client = aioredis.from_url(redis_url)
    await client.flushdb()
    await client.aclose()
    config = write_config(tmp, fake, redis_url, body)
    connector = aiohttp.TCPConnector(limit=400)
    async with aiohttp.ClientSession(connector=connector) as session:
        with gateways(config, 3, tmp) as urls:
            await wait_ready(session, urls)
            yield session, urls


async def post(
    session: aiohttp.ClientSession, url: str, user: str, max_tokens: int
) -> tuple[int, dict[str, Any], dict[str, str]]:
    body = {
        "model": "m",
        "messages": [{"role": "user", "content": PROMPT}],
        "max_tokens": max_tokens,
        "user": user,
    }
    async with session.post(url + "/v1/chat/completions", json=body) as resp:
        return resp.status, await resp.json(), {k.lower(): v for k, v in resp.headers.items()}


async def test_two_hundred_concurrent_calls_across_three_replicas(
    tmp_path: Path, redis_url: str
) -> None:
    body = """
limits: {enabled: true, user: {rpm: 100}, wait: {enabled: false}}
budgets: {enabled: true, user: [{period: day, usd: 0.01}]}
"""
    async with (
        running_fake("openai") as fake,
        cluster(tmp_path, fake, redis_url, body) as (
            session,
            urls,
        ),
    ):
        # 1. a shared rate limit: alice may make 100 requests a minute, whichever replica she hits
        started = time.monotonic()
        results = await asyncio.gather(
            *(post(session, urls[i % 3], "alice", 10) for i in range(200))
        )
        elapsed = time.monotonic() - started
        ok = [r for r in results if r[0] == 200]
        refused = [r for r in results if r[0] == 429]
        refill = math.ceil(elapsed * 100 / 60)
        upstream = (await fake.stats())["requests"]
        print(
            f"\n[rate] 200 concurrent calls over 3 replicas in {elapsed:.2f}s: {len(ok)} served, "
            f"{len(refused)} refused with 429 (limit 100/min + {refill} refilled meanwhile); "
            f"{upstream} reached the provider"
        )
        assert len(ok) + len(refused) == 200
        assert 100 <= len(ok) <= 100 + refill
        assert upstream == len(ok)
        for _status, err, headers in refused:
            assert err["error"]["code"] == "rate_limit_exceeded"
            assert "user tier" in err["error"]["message"]
            assert int(headers["retry-after"]) >= 1
        assert all("x-ratelimit-remaining-requests" in h for _s, _b, h in ok)

        # 2. a shared budget: bob may spend $0.01 a day; each call reserves its worst case
        await fake.reset()
        results = await asyncio.gather(*(post(session, urls[i % 3], "bob", 200) for i in range(90)))
        served = [b for s, b, _h in results if s == 200]
        spent_micro = sum(
            b["usage"]["prompt_tokens"] + b["usage"]["completion_tokens"] for b in served
        )
        codes = {b["error"]["code"] for s, b, _h in results if s != 200}
        print(
            f"[budget] 90 concurrent calls, $0.01 budget: {len(served)} served, spent "
            f"${spent_micro / 1e6:.6f} ({spent_micro / 100:.1f}% of the budget); refusals: {codes}"
        )
        assert served and spent_micro <= 10_000
        assert codes == {"budget_exceeded"}


@pytest.mark.slow
async def test_sixty_seconds_at_the_providers_tpm_without_a_single_upstream_429(
    tmp_path: Path, redis_url: str
) -> None:
    tpm = 60_000
    body = f"""
limits:
  enabled: true
  deployments: {{m: {{tpm: {tpm}}}}}
  wait: {{max_wait_s: 30}}
"""
    duration = 60.0
    async with (
        running_fake("openai", tpm=tpm) as fake,
        cluster(tmp_path, fake, redis_url, body) as (session, urls),
    ):
        await fake.reset()
        charged = 0  # the provider charges prompt + max_tokens up front
        refused = 0
        started = time.monotonic()

        async def worker(i: int) -> None:
            nonlocal charged, refused
            n = 0
            while time.monotonic() - started < duration:
                n += 1
                status, answer, _ = await post(session, urls[(i + n) % 3], f"u{i}", 200)
                if status == 200:
                    charged += answer["usage"]["prompt_tokens"] + 200
                else:
                    refused += 1

        await asyncio.gather(*(worker(i) for i in range(24)))
        elapsed = time.monotonic() - started
        stats = await fake.stats()
        allowed = tpm + tpm * elapsed / 60
        share = charged / allowed
        upstream_429 = stats["by_status"].get("429", 0)
        print(
            f"\n[tpm] {elapsed:.1f}s at {tpm} TPM through 3 replicas: {charged} tokens served of "
            f"{allowed:.0f} allowed ({share:.1%}); upstream 429s: {upstream_429}; "
            f"calls refused by headway after waiting: {refused}"
        )
        assert upstream_429 == 0
        assert share >= 0.9
