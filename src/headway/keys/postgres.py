"""API keys in PostgreSQL, shared by every replica."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from headway.keys.model import ApiKey
from headway.keys.sql import KeySql, SqlKeyStore
from headway.keys.store import from_row, to_row
from headway.stores.postgres import PostgresDB

_SQL = KeySql(lambda n: f"${n}", "DOUBLE PRECISION")
SCHEMA = _SQL.schema


class PostgresKeyStore(SqlKeyStore):
    sql = _SQL

    def __init__(self, dsn: str, *, db: PostgresDB | None = None) -> None:
        self.db = db or PostgresDB(dsn, what="key store")
        self.db.on_open(SCHEMA)

    async def insert(self, key: ApiKey) -> None:
        async with self.db.connection() as conn:
            await conn.execute(_SQL.insert, *to_row(key))

    async def _one(self, sql: str, args: Sequence[Any]) -> ApiKey | None:
        async with self.db.connection() as conn:
            row = await conn.fetchrow(sql, *args)
        return from_row(row) if row is not None else None

    async def _many(self, sql: str, args: Sequence[Any]) -> list[ApiKey]:
        async with self.db.connection() as conn:
            rows = await conn.fetch(sql, *args)
        return [from_row(r) for r in rows]

    async def aclose(self) -> None:
        await self.db.aclose()
