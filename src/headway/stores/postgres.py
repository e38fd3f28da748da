"""A lazily created asyncpg pool, shared by the PostgreSQL stores (keys, ledger).

The pool is created on first use inside the running event loop, and created again after a failure,
so a PostgreSQL outage at start-up or later only fails the calls made while it lasts. Schema
statements run once per pool under an advisory lock, so replicas starting together do not race on
`CREATE TABLE IF NOT EXISTS`.
"""

from __future__ import annotations

import asyncio
import zlib
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import asyncpg

from headway.errors import Unavailable

#: errors that mean "the database cannot answer now", as opposed to a bug in a statement
DB_ERRORS: tuple[type[BaseException], ...] = (
    asyncpg.PostgresError,
    asyncpg.InterfaceError,
    OSError,
    asyncio.TimeoutError,
)


class PostgresDB:
    def __init__(
        self,
        dsn: str,
        *,
        what: str = "database",
        min_size: int = 1,
        max_size: int = 4,
        connect_timeout: float = 5.0,
    ) -> None:
        self.dsn = dsn
        self._what = what
        self._min = min_size
        self._max = max_size
        self._timeout = connect_timeout
        self._ddl: list[str] = []
        self._pool: Any = None
        self._lock = asyncio.Lock()

    def on_open(self, ddl: str) -> None:
        """Schema statements to run (idempotently) when the pool is created."""
        self._ddl.append(ddl)

    async def _create_pool(self) -> Any:
        pool = await asyncpg.create_pool(
            self.dsn, min_size=self._min, max_size=self._max, timeout=self._timeout
        )
        try:
            if self._ddl:
                async with pool.acquire() as conn, conn.transaction():
                    lock_id = zlib.crc32(self._what.encode())
                    await conn.execute("SELECT pg_advisory_xact_lock($1)", lock_id)
                    for ddl in self._ddl:
                        await conn.execute(ddl)
        except BaseException:
            await pool.close()
            raise
        return pool

    async def pool(self) -> Any:
        if self._pool is None:
            async with self._lock:
                if self._pool is None:
                    try:
                        self._pool = await self._create_pool()
                    except DB_ERRORS as exc:
                        raise Unavailable(f"{self._what} is unreachable: {exc}") from exc
        return self._pool

    @asynccontextmanager
    async def connection(self) -> AsyncIterator[Any]:
        """A pooled connection; database failures inside the block become `Unavailable`."""
        pool = await self.pool()
        try:
            async with pool.acquire(timeout=self._timeout) as conn:
                yield conn
        except DB_ERRORS as exc:
            raise Unavailable(f"{self._what} failed: {exc}") from exc

    async def aclose(self) -> None:
        pool, self._pool = self._pool, None
        if pool is not None:
            await pool.close()
