"""One ledger fixture parametrised over every backend, so one contract suite covers all."""

from __future__ import annotations

from headway.ledger.postgres import PostgresLedger
from headway.ledger.record import UsageRecord
from headway.ledger.sqlite import SqliteLedger
from headway.ledger.store import MemoryLedger
from tests.backends import backend as backend  # re-exported: `ledger` depends on it
from tests.backends import store_fixture

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


ledger = store_fixture(
    MemoryLedger,
    lambda tmp: SqliteLedger(tmp / "ledger.db"),
    PostgresLedger,
    "headway_usage",
)
