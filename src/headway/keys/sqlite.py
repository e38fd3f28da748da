"""API keys in a SQLite file (the embedded default; the same file as the ledger)."""

from __future__ import annotations

import sqlite3
from pathlib import Path

from headway.keys.model import ApiKey
from headway.keys.store import COLUMNS, from_row, to_row
from headway.stores.sqlite import SqliteDB

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
    created_at REAL NOT NULL,
    expires_at REAL,
    revoked_at REAL
);
CREATE INDEX IF NOT EXISTS headway_api_keys_tenant ON headway_api_keys (tenant, created_at);
"""

_SELECT = f"SELECT {', '.join(COLUMNS)} FROM headway_api_keys"


def _init(conn: sqlite3.Connection) -> None:
    conn.executescript(SCHEMA)


class SqliteKeyStore:
    def __init__(self, path: str | Path) -> None:
        self.db = SqliteDB(path, what="key store")
        self.db.on_open(_init)

    async def insert(self, key: ApiKey) -> None:
        placeholders = ", ".join("?" for _ in COLUMNS)
        sql = f"INSERT INTO headway_api_keys ({', '.join(COLUMNS)}) VALUES ({placeholders})"
        row = to_row(key)

        def run(conn: sqlite3.Connection) -> None:
            conn.execute(sql, row)

        await self.db.run(run)

    async def _one(self, where: str, arg: str) -> ApiKey | None:
        def run(conn: sqlite3.Connection) -> ApiKey | None:
            row = conn.execute(f"{_SELECT} WHERE {where} = ?", (arg,)).fetchone()
            return from_row(row) if row is not None else None

        return await self.db.run(run)

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
            clauses.append("tenant = ?")
            args.append(tenant)
        if not include_revoked:
            clauses.append("revoked_at IS NULL")
        where = f" WHERE {' AND '.join(clauses)}" if clauses else ""
        sql = f"{_SELECT}{where} ORDER BY created_at, id"

        def run(conn: sqlite3.Connection) -> list[ApiKey]:
            return [from_row(r) for r in conn.execute(sql, args).fetchall()]

        return await self.db.run(run)

    async def revoke(self, key_id: str, at: float) -> ApiKey | None:
        # COALESCE keeps the first revocation time, so revoking twice is harmless
        sql = (
            "UPDATE headway_api_keys SET revoked_at = COALESCE(revoked_at, ?) WHERE id = ? "
            f"RETURNING {', '.join(COLUMNS)}"
        )

        def run(conn: sqlite3.Connection) -> ApiKey | None:
            # fetchall steps the statement to its end, which is when SQLite commits it
            rows = conn.execute(sql, (at, key_id)).fetchall()
            return from_row(rows[0]) if rows else None

        return await self.db.run(run)

    async def aclose(self) -> None:
        await self.db.aclose()
