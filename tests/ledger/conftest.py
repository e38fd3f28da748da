"""One ledger fixture parametrised over every backend, so one contract suite covers all."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import asyncpg
import pytest

from headway.ledger.postgres import PostgresLedger
from headway.ledger.record import UsageRecord
from headway.ledger.sqlite import SqliteLedger
from headway.ledger.store import Ledger, MemoryLedger

#: 2026-01-01T00:00:00Z
JAN1 = 1_767_225_600.0
DAY = 86_400.0


def rec(n: int, **kw: object) -> UsageRecord:
    fields: dict[str, object] = {
        "request_id": f"req_{n}",
        "ts": JAN1 + n,
        "tenant": "acme",
        "key_id": "key_a",
        "user": "ann",
        "team": "search",
        "route": "default",
        "model": "sim-large",
        "cache": "miss",
        "input_tokens": 10,
        "output_tokens": 5,
        "cached_input_tokens": 0,
        "cost_nusd": 1000,
    }
    fields.update(kw)
    return UsageRecord(**fields)  # type: ignore[arg-type]


async def reset_postgres(dsn: str) -> None:
    conn = await asyncpg.connect(dsn)
    try:
        await conn.execute("TRUNCATE headway_usage")
    finally:
        await conn.close()


@pytest.fixture(params=["memory", "sqlite", "postgres"])
def backend(request: pytest.FixtureRequest) -> tuple[str, str | None]:
    """(backend name, PostgreSQL DSN). Sync, because `postgres_dsn` starts its own event loop."""
    if request.param == "postgres":
        return "postgres", request.getfixturevalue("postgres_dsn")
    return request.param, None


@pytest.fixture
async def ledger(backend: tuple[str, str | None], tmp_path: Path) -> AsyncIterator[Ledger]:
    name, dsn = backend
    store: Ledger
    if name == "memory":
        store = MemoryLedger()
    elif name == "sqlite":
        store = SqliteLedger(tmp_path / "ledger.db")
    else:
        assert dsn is not None
        pg = PostgresLedger(dsn)
        await pg.db.pool()  # creates the schema
        await reset_postgres(dsn)
        store = pg
    try:
        yield store
    finally:
        await store.aclose()
