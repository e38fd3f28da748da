"""The KeyStore contract, run over memory, SQLite and PostgreSQL."""

from __future__ import annotations

import dataclasses

from headway.keys.model import ApiKey, hash_key
from headway.keys.store import KeyStore


def make_key(n: int, **kw: object) -> ApiKey:
    base = ApiKey(
        id=f"key_{n:04d}",
        key_hash=hash_key(f"hw-secret-{n}"),
        prefix=f"hw-secret-{n}"[:10],
        tenant="acme",
        name=f"key {n}",
        user="ann",
        team="search",
        allowed_models=("sim-large", "sim-small"),
        limits={"rpm": 60, "tpm": 1000},
        budgets={"usd_per_day": 2.5},
        created_at=1000.0 + n,
    )
    return dataclasses.replace(base, **kw)  # type: ignore[arg-type]


async def test_insert_then_read_back_by_id_and_hash(key_store: KeyStore) -> None:
    key = make_key(1, expires_at=5000.0)
    await key_store.insert(key)
    assert await key_store.get(key.id) == key
    assert await key_store.by_hash(key.key_hash) == key


async def test_unknown_id_and_hash_are_none(key_store: KeyStore) -> None:
    await key_store.insert(make_key(1))
    assert await key_store.get("key_nope") is None
    assert await key_store.by_hash(hash_key("hw-other")) is None


async def test_optional_fields_round_trip_as_none(key_store: KeyStore) -> None:
    key = make_key(2, name=None, user=None, team=None, allowed_models=None, limits={}, budgets={})
    await key_store.insert(key)
    got = await key_store.get(key.id)
    assert got == key
    assert got is not None and got.allowed_models is None


async def test_empty_allowed_models_is_not_every_model(key_store: KeyStore) -> None:
    key = make_key(3, allowed_models=())
    await key_store.insert(key)
    got = await key_store.get(key.id)
    assert got is not None and got.allowed_models == ()


async def test_list_orders_by_creation_and_filters_tenant(key_store: KeyStore) -> None:
    await key_store.insert(make_key(3))
    await key_store.insert(make_key(1))
    await key_store.insert(make_key(2, tenant="globex"))
    assert [k.id for k in await key_store.list()] == ["key_0001", "key_0002", "key_0003"]
    assert [k.id for k in await key_store.list(tenant="acme")] == ["key_0001", "key_0003"]
    assert await key_store.list(tenant="nobody") == []


async def test_revoke_hides_key_from_list_but_keeps_it(key_store: KeyStore) -> None:
    await key_store.insert(make_key(1))
    await key_store.insert(make_key(2))
    revoked = await key_store.revoke("key_0001", 2000.0)
    assert revoked is not None and revoked.revoked_at == 2000.0
    assert [k.id for k in await key_store.list()] == ["key_0002"]
    every = await key_store.list(include_revoked=True)
    assert [k.id for k in every] == ["key_0001", "key_0002"]
    by_hash = await key_store.by_hash(make_key(1).key_hash)
    assert by_hash is not None and by_hash.revoked_at == 2000.0


async def test_revoke_twice_keeps_first_time(key_store: KeyStore) -> None:
    await key_store.insert(make_key(1))
    await key_store.revoke("key_0001", 2000.0)
    again = await key_store.revoke("key_0001", 3000.0)
    assert again is not None and again.revoked_at == 2000.0


async def test_revoke_unknown_is_none(key_store: KeyStore) -> None:
    assert await key_store.revoke("key_missing", 1.0) is None
