"""The spend ledger in PostgreSQL: one ledger for many replicas."""

from __future__ import annotations

from collections.abc import Sequence

from headway.ledger.record import UsageQuery, UsageRecord, UsageRow
from headway.ledger.store import COLUMNS, from_aggregate, select_sql, to_row
from headway.stores.postgres import PostgresDB

SCHEMA = """
CREATE TABLE IF NOT EXISTS headway_usage (
    request_id TEXT PRIMARY KEY,
    ts DOUBLE PRECISION NOT NULL,
    day TEXT NOT NULL,
    tenant TEXT NOT NULL,
    key_id TEXT,
    user_id TEXT,
    team TEXT,
    route TEXT,
    model TEXT,
    cache TEXT NOT NULL,
    input_tokens BIGINT NOT NULL,
    output_tokens BIGINT NOT NULL,
    cached_input_tokens BIGINT NOT NULL,
    cost_nusd BIGINT NOT NULL
);
CREATE INDEX IF NOT EXISTS headway_usage_ts ON headway_usage (ts);
CREATE INDEX IF NOT EXISTS headway_usage_key ON headway_usage (key_id, ts);
CREATE INDEX IF NOT EXISTS headway_usage_tenant ON headway_usage (tenant, ts);
"""

_INSERT = (
    f"INSERT INTO headway_usage ({', '.join(COLUMNS)}) "
    f"VALUES ({', '.join(f'${i + 1}' for i in range(len(COLUMNS)))}) "
    "ON CONFLICT (request_id) DO NOTHING"
)


class PostgresLedger:
    def __init__(self, dsn: str, *, db: PostgresDB | None = None) -> None:
        self.db = db or PostgresDB(dsn, what="ledger")
        self.db.on_open(SCHEMA)

    async def write(self, records: Sequence[UsageRecord]) -> None:
        if not records:
            return
        rows = [to_row(r) for r in records]
        async with self.db.connection() as conn, conn.transaction():
            await conn.executemany(_INSERT, rows)

    async def query(self, q: UsageQuery) -> list[UsageRow]:
        sql, args = select_sql(q, lambda n: f"${n}")
        async with self.db.connection() as conn:
            rows = await conn.fetch(sql, *args)
        return [from_aggregate(tuple(r.values())) for r in rows]

    async def aclose(self) -> None:
        await self.db.aclose()
