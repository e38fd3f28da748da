"""Run a fake provider inside the current event loop, for tests and benchmarks.

    async with running_fake("openai", rpm=60) as fake:
        client = AsyncOpenAI(base_url=fake.url, api_key="x")
        await fake.control(error_rate=1.0, error_status=503)
        print(await fake.stats())

Unless `settings` is given, the fake starts in fast mode: every latency zero, so it answers as
fast as the loop allows. Keyword overrides are `SimSettings` fields.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from typing import Any, Literal

import aiohttp

from headway.clock import SYSTEM_CLOCK, Clock
from headway.config.schema import SimSettings
from headway.providers.fake.server import CONTROL_PATH, STATS_PATH, FakeOptions, FakeServer
from headway.providers.sim.engine import SimEngine

#: zero latency everywhere: for tests and for measuring the gateway, not the upstream
FAST = SimSettings(latency_p50_ms=0, latency_p99_ms=0, ttft_p50_ms=0, ms_per_token=0)


def fast_settings(**overrides: Any) -> SimSettings:
    return SimSettings.model_validate({**FAST.model_dump(), **overrides})


class RunningFake:
    def __init__(self, server: FakeServer) -> None:
        self.server = server
        self._session: aiohttp.ClientSession | None = None

    @property
    def url(self) -> str:
        """The base URL a client is given (for OpenAI it ends in `/v1`)."""
        return self.server.url

    @property
    def root_url(self) -> str:
        return self.server.root_url

    @property
    def engine(self) -> SimEngine:
        return self.server.engine

    def _client(self) -> aiohttp.ClientSession:
        if self._session is None:
            self._session = aiohttp.ClientSession()
        return self._session

    async def control(self, **changes: Any) -> dict[str, Any]:
        """POST /_fake/control; returns the settings in force. Raises ValueError when refused."""
        async with self._client().post(self.root_url + CONTROL_PATH, json=changes) as resp:
            body: dict[str, Any] = await resp.json()
            if resp.status != 200:
                raise ValueError(body.get("error", body))
            return body

    async def reset(self) -> dict[str, Any]:
        return await self.control(reset=True)

    async def stats(self) -> dict[str, Any]:
        """GET /_fake/stats."""
        async with self._client().get(self.root_url + STATS_PATH) as resp:
            body: dict[str, Any] = await resp.json()
            return body

    async def aclose(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None


@asynccontextmanager
async def running_fake(
    flavour: str = "openai",
    *,
    settings: SimSettings | None = None,
    clock: Clock = SYSTEM_CLOCK,
    api_key: str | None = None,
    models: Sequence[str] = (),
    known_models_only: bool = False,
    cut_mode: Literal["close", "reset"] = "close",
    host: str = "127.0.0.1",
    port: int = 0,
    **overrides: Any,
) -> AsyncIterator[RunningFake]:
    base = settings or FAST
    if overrides:
        base = SimSettings.model_validate({**base.model_dump(), **overrides})
    options = FakeOptions(
        api_key=api_key,
        models=tuple(models),
        known_models_only=known_models_only,
        cut_mode=cut_mode,
    )
    server = FakeServer(flavour, settings=base, clock=clock, options=options)
    await server.start(host, port)
    fake = RunningFake(server)
    try:
        yield fake
    finally:
        await fake.aclose()
        await server.stop()
