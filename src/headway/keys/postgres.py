"""API keys in PostgreSQL, shared by every replica."""

from __future__ import annotations

from headway.keys.model import ApiKey
from headway.keys.store import COLUMNS, from_row, to_row
from headway.stores.postgres import PostgresDB

SCHEMA = """
CREATE TABLE IF NOT EXISTS headway_api_keys (
    id TEXT PRIMARY KEY,
    key_hash TEXT NOT NULL UNIQUE,
    prefix TEXT NOT NULL,
    tenant TEXT NOT NULL,
    name TEXT,
    user_id TEXT,
    team TEXT,
    allowed_models TEXT,
    limits TEXT NOT NULL,
    budgets TEXT NOT NULL,
    created_at DOUBLE PRECISION NOT NULL,
    expires_at DOUBLE PRECISION,
    revoked_at DOUBLE PRECISION
);
CREATE INDEX IF NOT EXISTS headway_api_keys_tenant ON headway_api_keys (tenant, created_at);
"""

_SELECT = f"SELECT {', '.join(COLUMNS)} FROM headway_api_keys"


class PostgresKeyStore:
    def __init__(self, dsn: str, *, db: PostgresDB | None = None) -> None:
        self.db = db or PostgresDB(dsn, what="key store")
        self.db.on_open(SCHEMA)

    async def insert(self, key: ApiKey) -> None:
        placeholders = ", ".join(f"${i + 1}" for i in range(len(COLUMNS)))
        sql = f"INSERT INTO headway_api_keys ({', '.join(COLUMNS)}) VALUES ({placeholders})"
        async with self.db.connection() as conn:
            await conn.execute(sql, *to_row(key))

    async def _one(self, where: str, arg: str) -> ApiKey | None:
        async with self.db.connection() as conn:
            row = await conn.fetchrow(f"{_SELECT} WHERE {where} = $1", arg)
        return from_row(row) if row is not None else None

    async def by_hash(self, key_hash: str) -> ApiKey | None:
        return await self._one("key_hash", key_hash)

    async def get(self, key_id: str) -> ApiKey | None:
        return await self._one("id", key_id)

    async def list(
        self, *, tenant: str | None = None, include_revoked: bool = False
    ) -> list[ApiKey]:
        clauses: list[str] = []
        args: list[str] = []
        if tenant is not None:
            args.append(tenant)
            clauses.append(f"tenant = ${len(args)}")
        if not include_revoked:
            clauses.append("revoked_at IS NULL")
        where = f" WHERE {' AND '.join(clauses)}" if clauses else ""
        async with self.db.connection() as conn:
            rows = await conn.fetch(f"{_SELECT}{where} ORDER BY created_at, id", *args)
        return [from_row(r) for r in rows]

    async def revoke(self, key_id: str, at: float) -> ApiKey | None:
        # COALESCE keeps the first revocation time, so revoking twice is harmless
        sql = (
            "UPDATE headway_api_keys SET revoked_at = COALESCE(revoked_at, $2) WHERE id = $1 "
            f"RETURNING {', '.join(COLUMNS)}"
        )
        async with self.db.connection() as conn:
            row = await conn.fetchrow(sql, key_id, at)
        return from_row(row) if row is not None else None

    async def aclose(self) -> None:
        await self.db.aclose()
