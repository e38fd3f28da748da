"""The `Ledger` protocol, its in-memory implementation, and the SQL both databases share."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, Protocol

from headway.ledger.record import GROUP_COLUMNS, UsageQuery, UsageRecord, UsageRow

COLUMNS: tuple[str, ...] = (
    "request_id",
    "ts",
    "day",
    "tenant",
    "key_id",
    "user_id",
    "team",
    "route",
    "model",
    "cache",
    "input_tokens",
    "output_tokens",
    "cached_input_tokens",
    "cost_nusd",
)


class Ledger(Protocol):
    async def write(self, records: Sequence[UsageRecord]) -> None:
        """Store records durably, all or none. A request id already stored is skipped, so a
        retried batch never counts twice. Raises `Unavailable` when the database is down."""
        ...

    async def query(self, q: UsageQuery) -> list[UsageRow]:
        """Sums per group; days in order, other groups by cost, highest first."""
        ...

    async def aclose(self) -> None: ...


def to_row(r: UsageRecord) -> tuple[Any, ...]:
    return (
        r.request_id,
        r.ts,
        r.day,
        r.tenant,
        r.key_id,
        r.user,
        r.team,
        r.route,
        r.model,
        r.cache,
        r.input_tokens,
        r.output_tokens,
        r.cached_input_tokens,
        r.cost_nusd,
    )


def select_sql(q: UsageQuery, placeholder: Callable[[int], str]) -> tuple[str, list[Any]]:
    """The aggregate query, with `placeholder(n)` spelling the n-th (1-based) parameter."""
    column = GROUP_COLUMNS[q.group_by]
    clauses: list[str] = []
    args: list[Any] = []
    if q.since is not None:
        args.append(q.since)
        clauses.append(f"ts >= {placeholder(len(args))}")
    if q.until is not None:
        args.append(q.until)
        clauses.append(f"ts < {placeholder(len(args))}")
    for col, value in q.filters():
        args.append(value)
        clauses.append(f"{col} = {placeholder(len(args))}")
    where = f" WHERE {' AND '.join(clauses)}" if clauses else ""
    order = f"{column}" if q.group_by == "day" else f"cost DESC, {column} NULLS LAST"
    args.append(q.limit)
    sql = (
        f"SELECT {column} AS grp, COUNT(*) AS requests, SUM(input_tokens) AS input_tokens, "
        "SUM(output_tokens) AS output_tokens, SUM(cached_input_tokens) AS cached_input_tokens, "
        f"SUM(cost_nusd) AS cost FROM headway_usage{where} GROUP BY {column} "
        f"ORDER BY {order} LIMIT {placeholder(len(args))}"
    )
    return sql, args


def from_aggregate(row: Sequence[Any]) -> UsageRow:
    return UsageRow(
        group=row[0],
        requests=int(row[1]),
        input_tokens=int(row[2] or 0),
        output_tokens=int(row[3] or 0),
        cached_input_tokens=int(row[4] or 0),
        cost_nusd=int(row[5] or 0),
    )


_RECORD_FIELD = {"key_id": "key_id", "user_id": "user", "team": "team", "model": "model"}
_RECORD_FIELD |= {"day": "day", "tenant": "tenant", "route": "route"}


class MemoryLedger:
    """Records in a dict: for the library and tests. Not durable, by definition. With
    `max_records`, only the newest that many are kept, so a long-lived process stays bounded."""

    def __init__(self, max_records: int | None = None) -> None:
        self.records: dict[str, UsageRecord] = {}
        self._max = max_records

    async def write(self, records: Sequence[UsageRecord]) -> None:
        kept = self.records
        for r in records:
            kept.setdefault(r.request_id, r)
        if self._max is not None:
            while len(kept) > self._max:
                del kept[next(iter(kept))]  # dicts keep insertion order: the oldest goes

    async def query(self, q: UsageQuery) -> list[UsageRow]:
        attr = _RECORD_FIELD[GROUP_COLUMNS[q.group_by]]
        filters = [(_RECORD_FIELD[c], v) for c, v in q.filters()]
        sums: dict[str | None, list[int]] = {}
        for r in self.records.values():
            if q.since is not None and r.ts < q.since:
                continue
            if q.until is not None and r.ts >= q.until:
                continue
            if any(getattr(r, a) != v for a, v in filters):
                continue
            acc = sums.setdefault(getattr(r, attr), [0, 0, 0, 0, 0])
            acc[0] += 1
            acc[1] += r.input_tokens
            acc[2] += r.output_tokens
            acc[3] += r.cached_input_tokens
            acc[4] += r.cost_nusd
        rows = [UsageRow(g, *acc) for g, acc in sums.items()]
        if q.group_by == "day":
            rows.sort(key=lambda r: r.group or "")
        else:
            rows.sort(key=lambda r: (-r.cost_nusd, r.group is None, r.group or ""))
        return rows[: q.limit]

    async def aclose(self) -> None:
        return None
