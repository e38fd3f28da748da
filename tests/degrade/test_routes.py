"""Jobs over real HTTP: the ladder's 202, `POST /v1/jobs`, polling `GET /v1/jobs/{id}`, tenant
isolation, and durability across a server restart."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import aiohttp
import openai
import orjson

from headway.config.load import load
from headway.context import Call, Principal
from headway.errors import UpstreamError
from headway.gateway import Gateway
from headway.types import ChatRequest, Message
from tests.server.helpers import Scripted, running

CONFIG = """
providers: {{p: {{kind: sim}}}}
models:
  m: {{provider: p, model: m}}
  m2: {{provider: p, model: m2}}
routes:
  both: {{chain: [m, m2], breaker: {{enabled: false}}}}
ledger: {{sqlite_path: {tmp}/headway.db}}
degrade:
  enabled: true
  routes:
    both: {{steps: [static, queue], static_answers: {{ping: pong}}}}
  queue: {{backend: sqlite, sqlite_path: {tmp}/jobs.db, poll_s: 0.05, retry_base_s: 0.01}}
"""

BODY = {"model": "both", "messages": [{"role": "user", "content": "summarise this"}]}


def gateway(tmp_path: Path, *, down: bool) -> Gateway:
    err = UpstreamError("down") if down else None
    providers = {"m": Scripted("m", fail_before=err), "m2": Scripted("m2", fail_before=err)}
    return Gateway(load(text=CONFIG.format(tmp=tmp_path), env={}), providers=providers)


async def poll(http: aiohttp.ClientSession, url: str, until: str) -> dict[str, Any]:
    for _ in range(400):  # waiting for the real worker task over real HTTP, bounded
        async with http.get(url) as r:
            assert r.status == 200
            job: dict[str, Any] = await r.json()
        if job["status"] == until:
            return job
        await asyncio.sleep(0.01)
    raise AssertionError(f"job never reached {until}: {job}")


async def test_the_ladder_queues_a_batch_call_and_the_job_runs_later(tmp_path: Path) -> None:
    gw = gateway(tmp_path, down=True)
    async with running(gw) as base, aiohttp.ClientSession() as http:
        headers = {"x-headway-priority": "batch"}
        async with http.post(f"{base}/v1/chat/completions", json=BODY, headers=headers) as r:
            assert r.status == 202
            location = r.headers["location"]
            assert r.headers["x-headway-degraded"] == "queued"
            body = await r.json()
        assert location.startswith("/v1/jobs/job_") and location.split("/")[-1] in str(body)
        # an interactive call is answered with the error, not queued
        async with http.post(f"{base}/v1/chat/completions", json=BODY) as r:
            assert r.status == 502
        # static answers come before the queue
        ping = {**BODY, "messages": [{"role": "user", "content": "Ping!"}]}
        async with http.post(f"{base}/v1/chat/completions", json=ping, headers=headers) as r:
            assert r.status == 200 and r.headers["x-headway-degraded"] == "static"
            assert (await r.json())["choices"][0]["message"]["content"] == "pong"
        # the upstream recovers: the worker's retry succeeds
        gw.providers["m"].fail_before = None  # type: ignore[attr-defined]
        job = await poll(http, base + location, "succeeded")
    assert job["result"]["object"] == "chat.completion"
    assert job["result"]["choices"][0]["message"]["content"] == "Hello there!"
    assert job["attempts"] >= 1


async def test_post_jobs_returns_202_and_jobs_survive_a_restart(tmp_path: Path) -> None:
    first = gateway(tmp_path, down=True)
    jobs = first.services.extras["jobs"]
    async with running(first) as base, aiohttp.ClientSession() as http:
        async with http.post(f"{base}/v1/jobs", json=BODY) as r:
            assert r.status == 202
            job = await r.json()
            location = r.headers["location"]
        assert job["status"] == "queued" and location == f"/v1/jobs/{job['id']}"
        async with http.post(f"{base}/v1/jobs", json={**BODY, "stream": True}) as r:
            assert r.status == 400
        async with http.post(f"{base}/v1/jobs", json={**BODY, "model": "nope"}) as r:
            assert r.status == 404
        await poll(http, base + location, "queued")  # failing upstream: waiting for a retry
    await jobs.stop()
    await first.aclose()
    # a new process on the same files picks the job up and finishes it
    second = gateway(tmp_path, down=False)
    async with running(second) as base, aiohttp.ClientSession() as http:
        done = await poll(http, base + location, "succeeded")
    await second.aclose()
    assert done["id"] == job["id"]


async def test_jobs_are_private_to_their_tenant(tmp_path: Path) -> None:
    gw = gateway(tmp_path, down=True)
    jobs = gw.services.extras["jobs"]
    call = Call(ChatRequest("both", (Message("user", "x"),)), principal=Principal("other-tenant"))
    job = await jobs.submit(call)
    async with running(gw) as base, aiohttp.ClientSession() as http:
        async with http.get(f"{base}/v1/jobs/{job.id}") as r:
            assert r.status == 404  # the anonymous caller is tenant "default"
        async with http.get(f"{base}/v1/jobs/job_nope") as r:
            assert r.status == 404
    await gw.aclose()


async def test_a_queued_chat_call_answers_202_with_the_job_object(tmp_path: Path) -> None:
    gw = gateway(tmp_path, down=True)
    batch = {"x-headway-priority": "batch"}
    async with running(gw) as base, aiohttp.ClientSession() as http:
        client = openai.AsyncOpenAI(base_url=f"{base}/v1", api_key="none", max_retries=0)
        async with client as c:
            raw = await c.chat.completions.with_raw_response.create(
                model="both",
                messages=[{"role": "user", "content": "summarise this"}],
                extra_headers=batch,
            )
        assert raw.status_code == 202
        job = orjson.loads(raw.content)
        job_id = raw.headers["x-headway-job-id"]
        assert raw.headers["location"] == f"/v1/jobs/{job_id}"
        assert (job["object"], job["id"], job["status"], job["model"]) == (
            "headway.job",
            job_id,
            "queued",
            "both",
        )
        assert "error" not in raw.headers.get("content-type", "") and job["error"] is None
        # the Anthropic route answers the same job object
        anthropic_body = {**BODY, "max_tokens": 10}
        async with http.post(f"{base}/v1/messages", json=anthropic_body, headers=batch) as r:
            assert r.status == 202
            other = await r.json()
            assert other["object"] == "headway.job" and other["id"] == r.headers["x-headway-job-id"]
        async with http.get(f"{base}/metrics") as r:
            metrics = await r.text()
    await gw.aclose()
    queued = [line for line in metrics.splitlines() if 'outcome="queued"' in line]
    assert queued and not any('outcome="error_202"' in line for line in metrics.splitlines())
    assert queued[0].startswith("headway_requests_total") and queued[0].endswith(" 2.0")
