"""API keys in a SQLite file (the embedded default; the same file as the ledger)."""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from headway.keys.model import ApiKey
from headway.keys.sql import KeySql, SqlKeyStore
from headway.keys.store import from_row, to_row
from headway.stores.sqlite import SqliteDB

_SQL = KeySql(lambda n: "?", "REAL")
SCHEMA = _SQL.schema


def _init(conn: sqlite3.Connection) -> None:
    conn.executescript(SCHEMA)


class SqliteKeyStore(SqlKeyStore):
    sql = _SQL

    def __init__(self, path: str | Path) -> None:
        self.db = SqliteDB(path, what="key store")
        self.db.on_open(_init)

    async def insert(self, key: ApiKey) -> None:
        row = to_row(key)

        def run(conn: sqlite3.Connection) -> None:
            conn.execute(_SQL.insert, row)

        await self.db.run(run)

    async def _one(self, sql: str, args: Sequence[Any]) -> ApiKey | None:
        def run(conn: sqlite3.Connection) -> ApiKey | None:
            # fetchall steps the statement to its end, which is when SQLite commits an
            # UPDATE ... RETURNING (revoke); a lookup by key returns at most one row anyway
            rows = conn.execute(sql, args).fetchall()
            return from_row(rows[0]) if rows else None

        return await self.db.run(run)

    async def _many(self, sql: str, args: Sequence[Any]) -> list[ApiKey]:
        def run(conn: sqlite3.Connection) -> list[ApiKey]:
            return [from_row(r) for r in conn.execute(sql, args).fetchall()]

        return await self.db.run(run)

    async def aclose(self) -> None:
        await self.db.aclose()
