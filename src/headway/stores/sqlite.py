"""One SQLite connection on one dedicated thread, used from asyncio.

sqlite3 blocks, so every statement runs on a single worker thread that owns the connection; the
event loop only awaits a future. One thread per database keeps statements ordered and needs no
locking of our own. WAL mode lets several processes (server workers, the CLI) share the file.
"""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import TypeVar

from headway.errors import Unavailable

T = TypeVar("T")

#: a writer waits this long for another process's lock before the statement fails
BUSY_TIMEOUT_MS = 5000


class SqliteDB:
    """Runs functions of a `sqlite3.Connection` on the connection's own thread."""

    def __init__(self, path: str | Path, *, what: str = "database") -> None:
        self.path = str(path)
        self._what = what
        self._executor: ThreadPoolExecutor | None = None
        self._conn: sqlite3.Connection | None = None
        self._initialisers: list[Callable[[sqlite3.Connection], None]] = []

    def on_open(self, init: Callable[[sqlite3.Connection], None]) -> None:
        """Run `init` once on the connection when it opens (schema creation)."""
        self._initialisers.append(init)
        if self._conn is not None:
            init(self._conn)

    def _connection(self) -> sqlite3.Connection:
        if self._conn is None:
            if self.path != ":memory:":
                Path(self.path).parent.mkdir(parents=True, exist_ok=True)
            # check_same_thread is off: the connection opens inside a call on the worker
            # thread, but closing may happen on the caller's thread when no call ever ran
            conn = sqlite3.connect(
                self.path,
                timeout=BUSY_TIMEOUT_MS / 1000,
                isolation_level=None,
                check_same_thread=False,
            )
            conn.execute("PRAGMA journal_mode=WAL")
            conn.execute("PRAGMA synchronous=NORMAL")
            conn.execute(f"PRAGMA busy_timeout={BUSY_TIMEOUT_MS}")
            for init in self._initialisers:
                init(conn)
            self._conn = conn
        return self._conn

    def _run_sync(self, fn: Callable[[sqlite3.Connection], T]) -> T:
        try:
            return fn(self._connection())
        except sqlite3.Error as exc:
            raise Unavailable(f"{self._what} ({self.path}) failed: {exc}") from exc

    async def run(self, fn: Callable[[sqlite3.Connection], T]) -> T:
        """Run `fn(conn)` on the database thread. sqlite errors become `Unavailable`."""
        if self._executor is None:
            self._executor = ThreadPoolExecutor(1, thread_name_prefix="headway-sqlite")
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._executor, self._run_sync, fn)

    def _close_sync(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None

    async def aclose(self) -> None:
        if self._executor is None:
            self._close_sync()
            return
        executor, self._executor = self._executor, None
        loop = asyncio.get_running_loop()
        await loop.run_in_executor(executor, self._close_sync)
        executor.shutdown(wait=True)


def transaction(conn: sqlite3.Connection, fn: Callable[[sqlite3.Connection], T]) -> T:
    """Run `fn` inside BEGIN IMMEDIATE ... COMMIT (the connection is in autocommit mode)."""
    conn.execute("BEGIN IMMEDIATE")
    try:
        result = fn(conn)
    except BaseException:
        conn.execute("ROLLBACK")
        raise
    conn.execute("COMMIT")
    return result
