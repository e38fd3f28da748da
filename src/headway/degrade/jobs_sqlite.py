"""The durable job queue: one SQLite table, shared by every worker process through WAL.

A claim is one `UPDATE ... WHERE id IN (SELECT ... LIMIT n) RETURNING *` statement, so two
processes never take the same job; a running job whose lease expired (its process died) is due
again, which is what makes queued calls survive restarts.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import Any

from headway.degrade.jobs import Job, Status
from headway.stores.sqlite import SqliteDB

_SCHEMA = """
CREATE TABLE IF NOT EXISTS headway_jobs_v1 (
  id TEXT PRIMARY KEY,
  tenant TEXT NOT NULL,
  model TEXT NOT NULL,
  ingress TEXT NOT NULL,
  request BLOB NOT NULL,
  principal BLOB NOT NULL,
  created_at REAL NOT NULL,
  deadline REAL NOT NULL,
  next_at REAL NOT NULL,
  status TEXT NOT NULL,
  attempts INTEGER NOT NULL,
  lease_until REAL NOT NULL,
  updated_at REAL NOT NULL,
  result BLOB,
  error TEXT,
  degraded TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS headway_jobs_v1_due ON headway_jobs_v1 (status, next_at);
"""

_COLUMNS = (
    "id, tenant, model, ingress, request, principal, created_at, deadline, next_at, status, "
    "attempts, lease_until, updated_at, result, error, degraded"
)


def _row(r: Any) -> Job:
    return Job(
        id=str(r[0]),
        tenant=str(r[1]),
        model=str(r[2]),
        ingress=str(r[3]),
        request=bytes(r[4]),
        principal=bytes(r[5]),
        created_at=float(r[6]),
        deadline=float(r[7]),
        next_at=float(r[8]),
        status=r[9],
        attempts=int(r[10]),
        lease_until=float(r[11]),
        updated_at=float(r[12]),
        result=None if r[13] is None else bytes(r[13]),
        error=None if r[14] is None else str(r[14]),
        degraded=str(r[15]),
    )


def _init(conn: sqlite3.Connection) -> None:
    conn.executescript(_SCHEMA)


class SqliteJobQueue:
    def __init__(self, path: str | Path) -> None:
        self._db = SqliteDB(path, what="job queue")
        self._db.on_open(_init)

    async def submit(self, job: Job) -> None:
        values = (
            job.id,
            job.tenant,
            job.model,
            job.ingress,
            job.request,
            job.principal,
            job.created_at,
            job.deadline,
            job.next_at,
            job.status,
            job.attempts,
            job.lease_until,
            job.updated_at,
            job.result,
            job.error,
            job.degraded,
        )

        def run(conn: sqlite3.Connection) -> None:
            conn.execute(
                f"INSERT INTO headway_jobs_v1 ({_COLUMNS}) VALUES "
                "(?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                values,
            )

        await self._db.run(run)

    async def get(self, job_id: str) -> Job | None:
        def run(conn: sqlite3.Connection) -> Job | None:
            row = conn.execute(
                f"SELECT {_COLUMNS} FROM headway_jobs_v1 WHERE id = ?", (job_id,)
            ).fetchone()
            return None if row is None else _row(row)

        return await self._db.run(run)

    async def claim(self, now: float, lease_s: float, limit: int) -> list[Job]:
        def run(conn: sqlite3.Connection) -> list[Job]:
            rows = conn.execute(
                f"""UPDATE headway_jobs_v1
                   SET status = 'running', attempts = attempts + 1,
                       lease_until = ?, updated_at = ?
                   WHERE id IN (
                     SELECT id FROM headway_jobs_v1
                     WHERE (status = 'queued' AND next_at <= ?)
                        OR (status = 'running' AND lease_until <= ?)
                     ORDER BY next_at, created_at LIMIT ?)
                   RETURNING {_COLUMNS}""",
                (now + lease_s, now, now, now, limit),
            ).fetchall()
            return sorted((_row(r) for r in rows), key=lambda j: (j.next_at, j.created_at))

        return await self._db.run(run)

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
        def run(conn: sqlite3.Connection) -> None:
            conn.execute(
                "UPDATE headway_jobs_v1 SET status = ?, result = ?, error = ?, degraded = ?, "
                "updated_at = ? WHERE id = ?",
                (status, result, error, degraded, now, job_id),
            )

        await self._db.run(run)

    async def reschedule(self, job_id: str, next_at: float, now: float, error: str) -> None:
        def run(conn: sqlite3.Connection) -> None:
            conn.execute(
                "UPDATE headway_jobs_v1 SET status = 'queued', next_at = ?, error = ?, "
                "updated_at = ? WHERE id = ?",
                (next_at, error, now, job_id),
            )

        await self._db.run(run)

    async def purge(self, finished_before: float) -> int:
        def run(conn: sqlite3.Connection) -> int:
            cur = conn.execute(
                "DELETE FROM headway_jobs_v1 WHERE status IN ('succeeded', 'failed') "
                "AND updated_at < ?",
                (finished_before,),
            )
            return cur.rowcount

        return await self._db.run(run)

    async def aclose(self) -> None:
        await self._db.aclose()
