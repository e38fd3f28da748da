"""Running queued calls: claim due jobs, run each through the gateway, keep the outcome.

A failed run is retried with exponential backoff and full jitter (the server's `retry-after` when
longer) until the job's deadline; a failure no retry can fix (a bad request, a spent budget) ends
the job at once. Jobs run through the whole pipeline (`Gateway.chat`), so limits, budgets and the
cache apply to them as to any call; the job header keeps the ladder from queueing them again.

`Jobs` bundles a queue with its worker and is kept in `services.extras["jobs"]`, so it outlives
config reloads and is closed with the gateway.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
from collections.abc import Awaitable, Callable

from headway.clock import Clock
from headway.context import Call
from headway.degrade.codec import (
    decode_principal,
    decode_request,
    encode_principal,
    encode_request,
    encode_response,
)
from headway.degrade.config import QueueConfig
from headway.degrade.jobs import Job, JobQueue, MemoryJobQueue, new_job_id
from headway.errors import BudgetExceeded, HeadwayError, RateLimited, Unavailable, UpstreamError
from headway.observe.events import EventBus
from headway.routing.retry import RetryPolicy, backoff
from headway.types import ChatResponse

log = logging.getLogger("headway.degrade")

#: set on calls a worker runs, so the ladder never queues a job again
JOB_HEADER = "x-headway-job-id"

Runner = Callable[[Call], Awaitable[ChatResponse]]


def transient(exc: HeadwayError) -> bool:
    """May running the job again later succeed? Upstream trouble (even every deployment down),
    a caller limit or headway's own backends being down pass; a bad request or a spent budget
    does not."""
    if isinstance(exc, BudgetExceeded):
        return False
    return isinstance(exc, UpstreamError | RateLimited | Unavailable)


class Jobs:
    def __init__(
        self,
        queue: JobQueue,
        cfg: QueueConfig,
        clock: Clock,
        events: EventBus,
        rng: random.Random | None = None,
    ) -> None:
        self.queue = queue
        self.cfg = cfg
        self._clock = clock
        self._events = events
        self._rng = rng or random.Random()
        self._backoff = RetryPolicy(backoff_base_s=cfg.retry_base_s, backoff_max_s=cfg.retry_max_s)
        self._runner: Runner | None = None
        self._task: asyncio.Task[None] | None = None
        self._wake = asyncio.Event()
        self._closed = False
        self._retired: asyncio.Future[None] | None = None

    # ---- submitting -------------------------------------------------------------------------

    async def submit(self, call: Call) -> Job:
        now = self._clock.time()
        job = Job(
            id=new_job_id(),
            tenant=call.principal.tenant,
            model=call.request.model,
            ingress=call.ingress,
            request=encode_request(call.request),
            principal=encode_principal(call.principal),
            created_at=now,
            deadline=now + self.cfg.job_deadline_s,
            next_at=now,
            updated_at=now,
        )
        await self.queue.submit(job)
        self._events.emit("job.queued", job=job.id, model=job.model, tenant=job.tenant)
        self._wake.set()
        return job

    # ---- running ----------------------------------------------------------------------------

    def bind(self, runner: Runner) -> None:
        """What runs a job's call: normally `Gateway.chat` (the whole pipeline)."""
        self._runner = runner

    async def run_due(self) -> int:
        """Claim and run the jobs due now; returns how many ran."""
        if self._runner is None:
            raise RuntimeError("no runner bound: call Jobs.bind(gateway.chat) first")
        now = self._clock.time()
        jobs = await self.queue.claim(now, self.cfg.lease_s, self.cfg.concurrency)
        if jobs:
            await asyncio.gather(*(self._run(job) for job in jobs))
        return len(jobs)

    async def _run(self, job: Job) -> None:
        assert self._runner is not None
        call = Call(
            request=decode_request(job.request),
            principal=decode_principal(job.principal),
            request_id=job.id,
            ingress="library",
            priority="batch",
            started=self._clock.monotonic(),
            headers={JOB_HEADER: job.id},
        )
        try:
            response = await self._runner(call)
        except HeadwayError as exc:
            await self._failed(job, exc)
            return
        await self.queue.finish(
            job.id,
            "succeeded",
            self._clock.time(),
            result=encode_response(response),
            degraded=",".join(call.served.degraded),
        )
        self._events.emit("job.succeeded", job=job.id, attempts=job.attempts)

    async def _failed(self, job: Job, exc: HeadwayError) -> None:
        now = self._clock.time()
        delay = backoff(self._backoff, job.attempts - 1, self._rng.random())
        if exc.retry_after is not None:
            delay = max(delay, exc.retry_after)
        if not transient(exc) or now + delay >= job.deadline:
            reason = exc.message if not transient(exc) else f"deadline passed; last: {exc.message}"
            await self.queue.finish(job.id, "failed", now, error=reason)
            self._events.emit("job.failed", job=job.id, attempts=job.attempts, error=exc.message)
            return
        await self.queue.reschedule(job.id, now + delay, now, exc.message)
        self._events.emit("job.retry", job=job.id, attempts=job.attempts, delay_s=delay)

    async def _loop(self) -> None:
        while not self._closed:
            try:
                ran = await self.run_due()
                if not ran:
                    await self.queue.purge(self._clock.time() - self.cfg.keep_s)
            except Unavailable as exc:  # the queue's database is down: keep trying
                log.warning("job queue unavailable: %s", exc)
                ran = 0
            if not ran:
                self._wake.clear()
                with contextlib.suppress(TimeoutError):
                    await _wait(self._clock, self._wake, self.cfg.poll_s)

    def take_over(self, old: Jobs) -> None:
        """Replace `old` (a reload changed the queue settings): run with its runner if its
        worker was running, and close it in the background."""
        if old._runner is not None:
            self.bind(old._runner)
            if old.running:
                self.start()
        self._retired = asyncio.ensure_future(old.aclose())

    def start(self, runner: Runner | None = None) -> None:
        """Start the background worker (idempotent)."""
        if runner is not None:
            self.bind(runner)
        if self._task is None or self._task.done():
            self._task = asyncio.ensure_future(self._loop())

    @property
    def running(self) -> bool:
        return self._task is not None and not self._task.done()

    async def stop(self) -> None:
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

    async def aclose(self) -> None:
        if self._closed:
            return
        self._closed = True
        await self.stop()
        await self.queue.aclose()


async def _wait(clock: Clock, event: asyncio.Event, seconds: float) -> None:
    """Until `event` is set or `seconds` pass on the clock (a new job wakes the worker early)."""
    sleeper = asyncio.ensure_future(clock.sleep(seconds))
    waiter = asyncio.ensure_future(event.wait())
    try:
        await asyncio.wait({sleeper, waiter}, return_when=asyncio.FIRST_COMPLETED)
    finally:
        sleeper.cancel()
        waiter.cancel()


def build_queue(cfg: QueueConfig) -> JobQueue:
    if cfg.backend == "memory":
        return MemoryJobQueue()
    from headway.degrade.jobs_sqlite import SqliteJobQueue

    return SqliteJobQueue(cfg.sqlite_path)
