"""Building keys from config, and the server's authenticator finding the resolver."""

from __future__ import annotations

from pathlib import Path

import pytest

from headway.clock import FakeClock
from headway.config.load import load
from headway.config.runtime import RuntimeConfig
from headway.errors import AuthenticationFailed, ConfigError
from headway.keys.install import install, open_key_store
from headway.keys.invalidate import LocalInvalidation
from headway.keys.postgres import PostgresKeyStore
from headway.keys.redis_invalidate import RedisInvalidation
from headway.keys.sqlite import SqliteKeyStore
from headway.keys.store import MemoryKeyStore
from headway.server.auth import Authenticator
from headway.services import Services


def runtime(tmp_path: Path, extra: str = "") -> RuntimeConfig:
    return load(text=f"ledger:\n  sqlite_path: {tmp_path / 'h.db'}\n{extra}", env={})


def test_the_store_follows_the_ledger_database(tmp_path: Path) -> None:
    assert isinstance(open_key_store(runtime(tmp_path).file), SqliteKeyStore)
    pg = runtime(tmp_path, "  backend: postgres\n  postgres_url: postgresql://x/y\n")
    assert isinstance(open_key_store(pg.file), PostgresKeyStore)
    mem = runtime(tmp_path, "keys:\n  store: memory\n")
    assert isinstance(open_key_store(mem.file), MemoryKeyStore)


@pytest.mark.parametrize(
    ("extra", "path"),
    [
        ("  backend: postgres\n", "ledger.postgres_url"),
        ("state:\n  backend: redis\n", "state.redis_url"),
    ],
)
def test_missing_urls_are_config_errors(tmp_path: Path, extra: str, path: str) -> None:
    with pytest.raises(ConfigError) as info:
        install(runtime(tmp_path, extra), Services())
    assert info.value.path == path


async def test_redis_state_means_pubsub_invalidation(tmp_path: Path, redis_url: str) -> None:
    services = Services()
    keys = install(
        runtime(tmp_path, f"state:\n  backend: redis\n  redis_url: {redis_url}\n"), services
    )
    assert isinstance(keys.invalidation, RedisInvalidation)
    await services.aclose()
    local = install(runtime(tmp_path), Services())
    assert isinstance(local.invalidation, LocalInvalidation)
    await local.aclose()


async def test_the_authenticator_resolves_keys_through_services(
    tmp_path: Path, fake_clock: FakeClock
) -> None:
    services = Services(clock=fake_clock)
    rt = runtime(tmp_path)
    keys = install(rt, services)
    assert install(rt, services) is keys  # one per Services, kept across reloads
    assert services.extras["key_resolver"] is keys.resolver
    auth = Authenticator("sk-master", extras=services.extras)
    key, token = await keys.service.create({"tenant": "acme", "team": "ads"})
    principal = await auth.authenticate({"authorization": f"Bearer {token}"})
    assert (principal.tenant, principal.team, principal.key_id) == ("acme", "ads", key.id)
    assert (await auth.authenticate({"x-api-key": token})).key_id == key.id
    await keys.service.revoke(key.id)
    with pytest.raises(AuthenticationFailed):
        await auth.authenticate({"authorization": f"Bearer {token}"})
    await services.aclose()
