"""What the SQLite and PostgreSQL key stores share: their SQL, spelled in either dialect, and
the store methods that only choose a statement. A backend supplies the I/O (`insert`, `_one`,
`_many`, `aclose`); the row codec is `headway.keys.store.to_row`/`from_row`."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from headway.keys.model import ApiKey
from headway.keys.store import COLUMNS

_SCHEMA = """
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
    created_at {real} NOT NULL,
    expires_at {real},
    revoked_at {real}
);
CREATE INDEX IF NOT EXISTS headway_api_keys_tenant ON headway_api_keys (tenant, created_at);
"""

_COLUMNS = ", ".join(COLUMNS)
_SELECT = f"SELECT {_COLUMNS} FROM headway_api_keys"


class KeySql:
    """The statements in one dialect: `placeholder(n)` spells the n-th (1-based) parameter
    (`?` or `$n`) and `real` a float column (`REAL` or `DOUBLE PRECISION`)."""

    __slots__ = ("_placeholder", "by_hash", "by_id", "insert", "revoke", "schema")

    def __init__(self, placeholder: Callable[[int], str], real: str) -> None:
        self._placeholder = placeholder
        self.schema = _SCHEMA.format(real=real)
        values = ", ".join(placeholder(i + 1) for i in range(len(COLUMNS)))
        self.insert = f"INSERT INTO headway_api_keys ({_COLUMNS}) VALUES ({values})"
        self.by_hash = f"{_SELECT} WHERE key_hash = {placeholder(1)}"
        self.by_id = f"{_SELECT} WHERE id = {placeholder(1)}"
        # parameters (revoked_at, id); COALESCE keeps the first revocation time, so revoking
        # twice is harmless
        self.revoke = (
            f"UPDATE headway_api_keys SET revoked_at = COALESCE(revoked_at, {placeholder(1)}) "
            f"WHERE id = {placeholder(2)} RETURNING {_COLUMNS}"
        )

    def list(self, tenant: str | None, include_revoked: bool) -> tuple[str, list[str]]:
        clauses: list[str] = []
        args: list[str] = []
        if tenant is not None:
            args.append(tenant)
            clauses.append(f"tenant = {self._placeholder(len(args))}")
        if not include_revoked:
            clauses.append("revoked_at IS NULL")
        where = f" WHERE {' AND '.join(clauses)}" if clauses else ""
        return f"{_SELECT}{where} ORDER BY created_at, id", args


class SqlKeyStore:
    """The `KeyStore` reads and revocation, over a backend's `_one` and `_many`."""

    sql: KeySql

    async def _one(self, sql: str, args: Sequence[Any]) -> ApiKey | None:
        raise NotImplementedError

    async def _many(self, sql: str, args: Sequence[Any]) -> list[ApiKey]:
        raise NotImplementedError

    async def by_hash(self, key_hash: str) -> ApiKey | None:
        return await self._one(self.sql.by_hash, (key_hash,))

    async def get(self, key_id: str) -> ApiKey | None:
        return await self._one(self.sql.by_id, (key_id,))

    async def list(
        self, *, tenant: str | None = None, include_revoked: bool = False
    ) -> list[ApiKey]:
        return await self._many(*self.sql.list(tenant, include_revoked))

    async def revoke(self, key_id: str, at: float) -> ApiKey | None:
        return await self._one(self.sql.revoke, (at, key_id))
