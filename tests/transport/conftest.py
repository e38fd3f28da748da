"""The transport every client test gets, closed after the test."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from headway.transport.http import Transport


@pytest.fixture
async def transport() -> AsyncIterator[Transport]:
    t = Transport()
    try:
        yield t
    finally:
        await t.aclose()
