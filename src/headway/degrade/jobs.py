"""Queued calls: the `JobQueue` protocol, its memory implementation, and the job value.

A job is a non-real-time call the degradation ladder (or `POST /v1/jobs`) accepted with a 202: it
is run later, retried with backoff until its deadline, and its outcome is kept for polling. A
job's life: queued -> running (claimed with a lease) -> succeeded | failed, or back to queued with
a later `next_at` after a retryable failure. A running job whose lease expired (its worker died) is
claimable again, so nothing is lost across restarts. Times are wall-clock seconds.

Requests, principals and results are stored as opaque bytes (headway.degrade.codec), so every
backend stores the same thing.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, replace
from typing import Literal, Protocol

Status = Literal["queued", "running", "succeeded", "failed"]
FINISHED: frozenset[str] = frozenset({"succeeded", "failed"})


def new_job_id() -> str:
    return f"job_{uuid.uuid4().hex}"


@dataclass(slots=True, frozen=True)
class Job:
    id: str
    tenant: str
    model: str
    ingress: str
    request: bytes
    principal: bytes
    created_at: float
    deadline: float
    next_at: float
    status: Status = "queued"
    attempts: int = 0
    lease_until: float = 0.0
    updated_at: float = 0.0
    result: bytes | None = None
    error: str | None = None
    #: degradation steps the final answer took (stale cache, substitute...)
    degraded: str = ""


class JobQueue(Protocol):
    async def submit(self, job: Job) -> None: ...

    async def get(self, job_id: str) -> Job | None: ...

    async def claim(self, now: float, lease_s: float, limit: int) -> list[Job]:
        """Atomically take up to `limit` due jobs (queued with `next_at <= now`, or running with
        an expired lease), oldest due first: they become running, leased until now + lease_s,
        with one more attempt counted."""
        ...

    async def finish(
        self,
        job_id: str,
        status: Status,
        now: float,
        *,
        result: bytes | None = None,
        error: str | None = None,
        degraded: str = "",
    ) -> None: ...

    async def reschedule(self, job_id: str, next_at: float, now: float, error: str) -> None:
        """Back to queued, due again at `next_at` (a retryable failure)."""
        ...

    async def purge(self, finished_before: float) -> int:
        """Drop finished jobs last updated before this time; returns how many."""
        ...

    async def aclose(self) -> None: ...


class MemoryJobQueue:
    """One process's jobs; gone on restart (use the SQLite queue for durability)."""

    def __init__(self) -> None:
        self._jobs: dict[str, Job] = {}

    async def submit(self, job: Job) -> None:
        self._jobs[job.id] = job

    async def get(self, job_id: str) -> Job | None:
        return self._jobs.get(job_id)

    async def claim(self, now: float, lease_s: float, limit: int) -> list[Job]:
        due = [
            j
            for j in self._jobs.values()
            if (j.status == "queued" and j.next_at <= now)
            or (j.status == "running" and j.lease_until <= now)
        ]
        due.sort(key=lambda j: (j.next_at, j.created_at))
        out: list[Job] = []
        for job in due[:limit]:
            taken = replace(
                job,
                status="running",
                attempts=job.attempts + 1,
                lease_until=now + lease_s,
                updated_at=now,
            )
            self._jobs[job.id] = taken
            out.append(taken)
        return out

    async def finish(
        self,
        job_id: str,
        status: Status,
        now: float,
        *,
        result: bytes | None = None,
        error: str | None = None,
        degraded: str = "",
    ) -> None:
        job = self._jobs.get(job_id)
        if job is not None:
            self._jobs[job_id] = replace(
                job, status=status, result=result, error=error, degraded=degraded, updated_at=now
            )

    async def reschedule(self, job_id: str, next_at: float, now: float, error: str) -> None:
        job = self._jobs.get(job_id)
        if job is not None:
            self._jobs[job_id] = replace(
                job, status="queued", next_at=next_at, error=error, updated_at=now
            )

    async def purge(self, finished_before: float) -> int:
        old = [
            k
            for k, j in self._jobs.items()
            if j.status in FINISHED and j.updated_at < finished_before
        ]
        for k in old:
            del self._jobs[k]
        return len(old)

    async def aclose(self) -> None:
        return None
