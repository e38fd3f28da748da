"""Fixtures for provider tests: a scripted OpenAI-shaped server on loopback."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from headway.services import Services
from tests.providers.openai_server import ScriptedServer


@pytest.fixture
async def upstream() -> AsyncIterator[ScriptedServer]:
    server = ScriptedServer()
    await server.server.start_server()
    try:
        yield server
    finally:
        server.release.set()
        await server.server.close()


@pytest.fixture
async def services() -> AsyncIterator[Services]:
    """Services for a provider under test, closed (its HTTP transport with them) after it."""
    s = Services()
    try:
        yield s
    finally:
        await s.aclose()
