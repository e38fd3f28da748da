"""The spend ledger in a SQLite file: the embedded default."""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence
from pathlib import Path

from headway.ledger.record import UsageQuery, UsageRecord, UsageRow
from headway.ledger.store import COLUMNS, from_aggregate, select_sql, to_row
from headway.stores.sqlite import SqliteDB, transaction

SCHEMA = """
CREATE TABLE IF NOT EXISTS headway_usage (
    request_id TEXT PRIMARY KEY,
    ts REAL NOT NULL,
    day TEXT NOT NULL,
    tenant TEXT NOT NULL,
    key_id TEXT,
    user_id TEXT,
    team TEXT,
    route TEXT,
    model TEXT,
    cache TEXT NOT NULL,
    input_tokens INTEGER NOT NULL,
    output_tokens INTEGER NOT NULL,
    cached_input_tokens INTEGER NOT NULL,
    cost_nusd INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS headway_usage_ts ON headway_usage (ts);
CREATE INDEX IF NOT EXISTS headway_usage_key ON headway_usage (key_id, ts);
CREATE INDEX IF NOT EXISTS headway_usage_tenant ON headway_usage (tenant, ts);
"""

_INSERT = (
    f"INSERT OR IGNORE INTO headway_usage ({', '.join(COLUMNS)}) "
    f"VALUES ({', '.join('?' for _ in COLUMNS)})"
)


def _init(conn: sqlite3.Connection) -> None:
    conn.executescript(SCHEMA)


class SqliteLedger:
    def __init__(self, path: str | Path) -> None:
        self.db = SqliteDB(path, what="ledger")
        self.db.on_open(_init)

    async def write(self, records: Sequence[UsageRecord]) -> None:
        if not records:
            return
        rows = [to_row(r) for r in records]

        def insert(conn: sqlite3.Connection) -> None:
            conn.executemany(_INSERT, rows)

        await self.db.run(lambda conn: transaction(conn, insert))

    async def query(self, q: UsageQuery) -> list[UsageRow]:
        sql, args = select_sql(q, lambda _n: "?")

        def run(conn: sqlite3.Connection) -> list[UsageRow]:
            return [from_aggregate(r) for r in conn.execute(sql, args).fetchall()]

        return await self.db.run(run)

    async def aclose(self) -> None:
        await self.db.aclose()
