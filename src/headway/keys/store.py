"""The `KeyStore` protocol, its in-memory implementation, and the row codec the SQL stores share."""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from typing import Any, Protocol

import orjson

from headway.keys.model import ApiKey

#: column order shared by the SQLite and PostgreSQL stores
COLUMNS: tuple[str, ...] = (
    "id",
    "key_hash",
    "prefix",
    "tenant",
    "name",
    "user_id",
    "team",
    "allowed_models",
    "limits",
    "budgets",
    "created_at",
    "expires_at",
    "revoked_at",
)


class KeyStore(Protocol):
    async def insert(self, key: ApiKey) -> None:
        """Store a new key. Ids and hashes are random, so a clash is a bug and raises."""
        ...

    async def by_hash(self, key_hash: str) -> ApiKey | None:
        """The key with this hash, revoked or not."""
        ...

    async def get(self, key_id: str) -> ApiKey | None: ...

    async def list(
        self, *, tenant: str | None = None, include_revoked: bool = False
    ) -> list[ApiKey]:
        """Keys ordered by creation time, oldest first."""
        ...

    async def revoke(self, key_id: str, at: float) -> ApiKey | None:
        """Mark a key revoked (idempotent: the first revocation time is kept).
        Returns the key as stored, or None when no key has this id."""
        ...

    async def aclose(self) -> None: ...


def to_row(key: ApiKey) -> tuple[Any, ...]:
    models = (
        orjson.dumps(list(key.allowed_models)).decode() if key.allowed_models is not None else None
    )
    return (
        key.id,
        key.key_hash,
        key.prefix,
        key.tenant,
        key.name,
        key.user,
        key.team,
        models,
        orjson.dumps(dict(key.limits)).decode(),
        orjson.dumps(dict(key.budgets)).decode(),
        key.created_at,
        key.expires_at,
        key.revoked_at,
    )


def from_row(row: Sequence[Any] | Mapping[str, Any]) -> ApiKey:
    v = [row[c] for c in COLUMNS] if isinstance(row, Mapping) else list(row)
    models = orjson.loads(v[7]) if v[7] is not None else None
    return ApiKey(
        id=v[0],
        key_hash=v[1],
        prefix=v[2],
        tenant=v[3],
        name=v[4],
        user=v[5],
        team=v[6],
        allowed_models=tuple(models) if models is not None else None,
        limits=orjson.loads(v[8]) if v[8] else {},
        budgets=orjson.loads(v[9]) if v[9] else {},
        created_at=float(v[10]),
        expires_at=float(v[11]) if v[11] is not None else None,
        revoked_at=float(v[12]) if v[12] is not None else None,
    )


class MemoryKeyStore:
    """Keys in a dict: for the library, tests, and single-process demos without a database."""

    def __init__(self) -> None:
        self._by_id: dict[str, ApiKey] = {}
        self._by_hash: dict[str, str] = {}

    async def insert(self, key: ApiKey) -> None:
        if key.id in self._by_id or key.key_hash in self._by_hash:
            raise ValueError(f"duplicate key {key.id}")
        self._by_id[key.id] = key
        self._by_hash[key.key_hash] = key.id

    async def by_hash(self, key_hash: str) -> ApiKey | None:
        key_id = self._by_hash.get(key_hash)
        return self._by_id.get(key_id) if key_id is not None else None

    async def get(self, key_id: str) -> ApiKey | None:
        return self._by_id.get(key_id)

    async def list(
        self, *, tenant: str | None = None, include_revoked: bool = False
    ) -> list[ApiKey]:
        keys = [
            k
            for k in self._by_id.values()
            if (tenant is None or k.tenant == tenant) and (include_revoked or k.revoked_at is None)
        ]
        return sorted(keys, key=lambda k: (k.created_at, k.id))

    async def revoke(self, key_id: str, at: float) -> ApiKey | None:
        key = self._by_id.get(key_id)
        if key is None or key.revoked_at is not None:
            return key
        key = dataclasses.replace(key, revoked_at=at)
        self._by_id[key_id] = key
        return key

    async def aclose(self) -> None:
        return None
