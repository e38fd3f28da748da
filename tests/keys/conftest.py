"""One key-store fixture parametrised over every backend, so one contract suite covers all."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import asyncpg
import pytest

from headway.keys.postgres import PostgresKeyStore
from headway.keys.sqlite import SqliteKeyStore
from headway.keys.store import KeyStore, MemoryKeyStore


async def reset_postgres(dsn: str, *tables: str) -> None:
    conn = await asyncpg.connect(dsn)
    try:
        await conn.execute(f"TRUNCATE {', '.join(tables)}")
    finally:
        await conn.close()


@pytest.fixture(params=["memory", "sqlite", "postgres"])
def backend(request: pytest.FixtureRequest) -> tuple[str, str | None]:
    """(backend name, PostgreSQL DSN). Sync, because `postgres_dsn` starts its own event loop."""
    if request.param == "postgres":
        return "postgres", request.getfixturevalue("postgres_dsn")
    return request.param, None


@pytest.fixture
async def key_store(backend: tuple[str, str | None], tmp_path: Path) -> AsyncIterator[KeyStore]:
    name, dsn = backend
    store: KeyStore
    if name == "memory":
        store = MemoryKeyStore()
    elif name == "sqlite":
        store = SqliteKeyStore(tmp_path / "keys.db")
    else:
        assert dsn is not None
        pg = PostgresKeyStore(dsn)
        await pg.db.pool()  # creates the schema
        await reset_postgres(dsn, "headway_api_keys")
        store = pg
    try:
        yield store
    finally:
        await store.aclose()
