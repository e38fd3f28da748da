"""Fixtures for provider tests: a scripted OpenAI-shaped server on loopback."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

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
