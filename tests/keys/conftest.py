"""One key-store fixture parametrised over every backend, so one contract suite covers all."""

from __future__ import annotations

from headway.keys.postgres import PostgresKeyStore
from headway.keys.sqlite import SqliteKeyStore
from headway.keys.store import MemoryKeyStore
from tests.backends import backend as backend  # re-exported: `key_store` depends on it
from tests.backends import store_fixture

key_store = store_fixture(
    MemoryKeyStore,
    lambda tmp: SqliteKeyStore(tmp / "keys.db"),
    PostgresKeyStore,
    "headway_api_keys",
)
