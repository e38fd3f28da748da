"""The job queue: one contract suite over memory and SQLite, durability across restarts, and the
worker's retries (backoff until the deadline) on a fake clock."""

from __future__ import annotations

import asyncio
import random
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from headway.clock import FakeClock
from headway.context import Call, Principal
from headway.degrade.codec import (
    decode_principal,
    decode_request,
    decode_response,
    encode_principal,
    encode_request,
)
from headway.degrade.config import QueueConfig
from headway.degrade.jobs import Job, JobQueue, MemoryJobQueue, new_job_id
from headway.degrade.jobs_sqlite import SqliteJobQueue
from headway.degrade.worker import JOB_HEADER, Jobs
from headway.errors import ContentFiltered, HeadwayError, UpstreamError, UpstreamRateLimited
from headway.observe.events import EventBus
from headway.types import (
    ChatRequest,
    ChatResponse,
    FinishReason,
    ImagePart,
    Message,
    TextPart,
    ToolCall,
    ToolSpec,
    Usage,
)
from tests.routing.helpers import Recorder

REQUEST = ChatRequest(
    model="default",
    messages=(
        Message("system", "be brief"),
        Message("user", (TextPart("look"), ImagePart("https://x/y.png", detail="low"))),
        Message("assistant", None, (ToolCall("c1", "f", '{"a":1}'),)),
        Message("tool", "42", tool_call_id="c1", is_error=True),
    ),
    max_tokens=50,
    temperature=0.2,
    stop=("END",),
    tools=(ToolSpec("f", "does f", {"type": "object"}, True),),
    tool_choice="auto",
    metadata={"k": "v"},
    extra={"top_k": 3},
)


def job(now: float, **kw: object) -> Job:
    values: dict[str, object] = {
        "id": new_job_id(),
        "tenant": "t1",
        "model": "default",
        "ingress": "openai",
        "request": encode_request(REQUEST),
        "principal": encode_principal(Principal("t1", key_id="k1")),
        "created_at": now,
        "deadline": now + 100,
        "next_at": now,
    }
    values.update(kw)
    return Job(**values)  # type: ignore[arg-type]


@pytest.fixture(params=["memory", "sqlite"])
async def queue(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[JobQueue]:
    q: JobQueue = (
        MemoryJobQueue() if request.param == "memory" else SqliteJobQueue(tmp_path / "j.db")
    )
    yield q
    await q.aclose()


def test_codec_round_trips_requests_and_principals() -> None:
    assert decode_request(encode_request(REQUEST)) == REQUEST
    p = Principal("t", "u", "team", "k", frozenset({"a", "b"}), True)
    assert decode_principal(encode_principal(p)) == p


async def test_submit_get_claim_finish(queue: JobQueue) -> None:
    a = job(10.0)
    b = job(10.0, next_at=20.0)
    await queue.submit(a)
    await queue.submit(b)
    assert await queue.get(a.id) == a
    assert await queue.get("job_missing") is None
    claimed = await queue.claim(15.0, lease_s=60.0, limit=10)
    assert [j.id for j in claimed] == [a.id]  # b is not due yet
    assert claimed[0].status == "running" and claimed[0].attempts == 1
    assert await queue.claim(15.0, 60.0, 10) == []  # taken: nobody else gets it
    await queue.finish(a.id, "succeeded", 16.0, result=b"r", degraded="static")
    done = await queue.get(a.id)
    assert done is not None and (done.status, done.result, done.degraded) == (
        "succeeded",
        b"r",
        "static",
    )


async def test_reschedule_and_lease_expiry(queue: JobQueue) -> None:
    a = job(0.0)
    await queue.submit(a)
    await queue.claim(0.0, 60.0, 1)
    await queue.reschedule(a.id, 30.0, 1.0, "429")
    assert await queue.claim(29.0, 60.0, 1) == []
    again = await queue.claim(30.0, 60.0, 1)
    assert again[0].attempts == 2 and again[0].error == "429"
    # its worker dies: once the lease runs out, the job is due again
    assert await queue.claim(89.0, 60.0, 1) == []
    assert (await queue.claim(90.0, 60.0, 1))[0].attempts == 3


async def test_claim_respects_the_limit_and_order(queue: JobQueue) -> None:
    jobs = [job(float(i), next_at=float(10 - i)) for i in range(5)]
    for j in jobs:
        await queue.submit(j)
    first = await queue.claim(100.0, 60.0, 2)
    assert [j.id for j in first] == [jobs[4].id, jobs[3].id]  # earliest due first


async def test_purge_drops_old_finished_jobs(queue: JobQueue) -> None:
    a, b = job(0.0), job(0.0)
    await queue.submit(a)
    await queue.submit(b)
    await queue.finish(a.id, "failed", 5.0, error="x")
    assert await queue.purge(10.0) == 1
    assert await queue.get(a.id) is None and await queue.get(b.id) is not None


async def test_sqlite_jobs_survive_a_restart(tmp_path: Path) -> None:
    path = tmp_path / "jobs.db"
    first = SqliteJobQueue(path)
    a = job(0.0)
    await first.submit(a)
    await first.claim(0.0, 60.0, 1)  # running when the process "dies"
    await first.aclose()
    second = SqliteJobQueue(path)
    try:
        assert (await second.get(a.id)) is not None
        revived = await second.claim(61.0, 60.0, 1)
        assert [j.id for j in revived] == [a.id] and revived[0].attempts == 2
    finally:
        await second.aclose()


class Runner:
    def __init__(self, outcomes: list[HeadwayError | None]) -> None:
        self.outcomes = outcomes
        self.calls: list[Call] = []

    async def __call__(self, call: Call) -> ChatResponse:
        self.calls.append(call)
        err = self.outcomes[min(len(self.calls) - 1, len(self.outcomes) - 1)]
        if err is not None:
            raise err
        return ChatResponse("r", call.request.model, "done", FinishReason.STOP, Usage(1, 1))


def jobs_for(clock: FakeClock, runner: Runner, **cfg: object) -> tuple[Jobs, Recorder]:
    bus = EventBus()
    rec = Recorder(bus)
    config = QueueConfig(backend="memory", retry_base_s=1.0, retry_max_s=8.0, **cfg)  # type: ignore[arg-type]
    jobs = Jobs(MemoryJobQueue(), config, clock, bus, random.Random(3))
    jobs.bind(runner)
    return jobs, rec


async def test_worker_retries_with_backoff_then_succeeds(fake_clock: FakeClock) -> None:
    runner = Runner([UpstreamError("down"), UpstreamRateLimited("429", retry_after=5.0), None])
    jobs, rec = jobs_for(fake_clock, runner)
    call = Call(REQUEST, principal=Principal("t1"), priority="batch")
    submitted = await jobs.submit(call)
    assert await jobs.run_due() == 1
    after_first = await jobs.queue.get(submitted.id)
    assert after_first is not None and after_first.status == "queued"
    assert 0.0 <= after_first.next_at - fake_clock.time() <= 1.0  # full jitter under base 1s
    await fake_clock.advance(1.0)
    assert await jobs.run_due() == 1
    second = await jobs.queue.get(submitted.id)
    assert second is not None and second.next_at - fake_clock.time() >= 5.0  # retry-after
    await fake_clock.advance(5.0)
    assert await jobs.run_due() == 1
    done = await jobs.queue.get(submitted.id)
    assert done is not None and done.status == "succeeded" and done.attempts == 3
    assert done.result is not None and decode_response(done.result).content == "done"
    assert rec.kinds("job.") == ["job.queued", "job.retry", "job.retry", "job.succeeded"]
    assert all(c.headers[JOB_HEADER] == submitted.id for c in runner.calls)
    assert runner.calls[0].request == REQUEST and runner.calls[0].principal.tenant == "t1"


async def test_worker_gives_up_at_the_deadline(fake_clock: FakeClock) -> None:
    runner = Runner([UpstreamError("down")])
    jobs, rec = jobs_for(fake_clock, runner, job_deadline_s=30.0)
    submitted = await jobs.submit(Call(REQUEST, priority="batch"))
    while True:
        await jobs.run_due()
        got = await jobs.queue.get(submitted.id)
        assert got is not None
        if got.status == "failed":
            break
        await fake_clock.advance(1.0)
    print(
        f"\njob deadline 30s: {len(runner.calls)} runs, failed at +{got.updated_at - got.created_at:.0f}s"
    )
    assert got.updated_at - got.created_at <= 30.0
    assert got.error is not None and "deadline" in got.error
    assert 3 <= len(runner.calls) <= 12  # backed off, not hammered every second
    assert rec.count("job.failed") == 1


async def test_a_job_that_cannot_succeed_fails_at_once(fake_clock: FakeClock) -> None:
    runner = Runner([ContentFiltered("blocked")])
    jobs, _ = jobs_for(fake_clock, runner)
    submitted = await jobs.submit(Call(REQUEST, priority="batch"))
    await jobs.run_due()
    got = await jobs.queue.get(submitted.id)
    assert got is not None and got.status == "failed" and got.error == "blocked"
    assert len(runner.calls) == 1


async def test_the_background_worker_runs_queued_jobs(fake_clock: FakeClock) -> None:
    runner = Runner([None])
    jobs, _ = jobs_for(fake_clock, runner, poll_s=1.0)
    jobs.start()
    try:
        submitted = await jobs.submit(Call(REQUEST, priority="batch"))
        for _ in range(20):
            await fake_clock.advance(0.5)
            got = await jobs.queue.get(submitted.id)
            if got is not None and got.status == "succeeded":
                break
        assert got is not None and got.status == "succeeded"
    finally:
        await jobs.aclose()
    assert not jobs.running


async def test_a_reload_that_changes_the_queue_carries_the_worker_over(
    fake_clock: FakeClock,
) -> None:
    runner = Runner([None])
    old, _ = jobs_for(fake_clock, runner)
    old.start()
    new, _ = jobs_for(fake_clock, Runner([None]))
    new.bind(runner)
    new.take_over(old)
    await asyncio.sleep(0)
    await asyncio.sleep(0)
    assert new.running and not old.running
    submitted = await new.submit(Call(REQUEST, priority="batch"))
    for _ in range(10):
        await fake_clock.advance(0.5)
    got = await new.queue.get(submitted.id)
    assert got is not None and got.status == "succeeded"
    await new.aclose()
