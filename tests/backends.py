"""One store fixture parametrised over every backend, shared by the contract suites (keys,
ledger), so each suite runs unchanged against memory, SQLite and PostgreSQL.

A conftest imports `backend` (so pytest sees it there) and names its store fixture:

    key_store = store_fixture(MemoryKeyStore, lambda tmp: SqliteKeyStore(tmp / "keys.db"),
                              PostgresKeyStore, "headway_api_keys")
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any, Protocol

import asyncpg
import pytest

from headway.stores.postgres import PostgresDB

#: (backend name, PostgreSQL DSN for the postgres backend)
Backend = tuple[str, str | None]


class Store(Protocol):
    async def aclose(self) -> None: ...


class PostgresStore(Store, Protocol):
    @property
    def db(self) -> PostgresDB: ...


async def reset_postgres(store: PostgresStore, dsn: str, tables: tuple[str, ...]) -> None:
    """Create the schema, then empty the tables: the database lives for the whole session."""
    await store.db.pool()  # creates the schema
    conn = await asyncpg.connect(dsn)
    try:
        await conn.execute(f"TRUNCATE {', '.join(tables)}")
    finally:
        await conn.close()


@pytest.fixture(params=["memory", "sqlite", "postgres"])
def backend(request: pytest.FixtureRequest) -> Backend:
    """Sync, because `postgres_dsn` starts its own event loop."""
    if request.param == "postgres":
        return "postgres", request.getfixturevalue("postgres_dsn")
    return request.param, None


def store_fixture(
    memory: Callable[[], Store],
    sqlite: Callable[[Path], Store],
    postgres: Callable[[str], PostgresStore],
    *tables: str,
) -> Any:
    """A fixture yielding a fresh store of the `backend` in use, closed afterwards. `sqlite`
    gets the test's tmp_path; `tables` are emptied before a PostgreSQL test."""

    @pytest.fixture
    async def store(backend: Backend, tmp_path: Path) -> AsyncIterator[Store]:
        name, dsn = backend
        made: Store
        if name == "memory":
            made = memory()
        elif name == "sqlite":
            made = sqlite(tmp_path)
        else:
            assert dsn is not None
            pg = postgres(dsn)
            await reset_postgres(pg, dsn, tables)
            made = pg
        try:
            yield made
        finally:
            await made.aclose()

    return store
