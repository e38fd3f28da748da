"""Creating, listing and revoking keys: the one place both the admin API and the CLI go through."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from headway.clock import Clock
from headway.errors import NotFound
from headway.keys.invalidate import Invalidation
from headway.keys.model import DISPLAY_PREFIX_LEN, ApiKey, generate_key, hash_key, parse_key_spec
from headway.keys.store import KeyStore


class KeyService:
    def __init__(
        self, store: KeyStore, clock: Clock, invalidation: Invalidation | None = None
    ) -> None:
        self.store = store
        self._clock = clock
        self._invalidation = invalidation

    async def create(self, body: Mapping[str, Any]) -> tuple[ApiKey, str]:
        """Validate `body`, store a new key and return it with its plaintext (shown once)."""
        now = self._clock.time()
        spec = parse_key_spec(body, now=now)
        plaintext, key_id = generate_key()
        key = ApiKey(
            id=key_id,
            key_hash=hash_key(plaintext),
            prefix=plaintext[:DISPLAY_PREFIX_LEN],
            tenant=spec.tenant,
            name=spec.name,
            user=spec.user,
            team=spec.team,
            allowed_models=spec.allowed_models,
            limits=dict(spec.limits),
            budgets=dict(spec.budgets),
            created_at=now,
            expires_at=spec.expires_at,
        )
        await self.store.insert(key)
        if self._invalidation is not None:
            # a replica may remember this hash as unknown (negative cache) from a guess
            await self._invalidation.publish(key.key_hash)
        return key, plaintext

    async def list(
        self, *, tenant: str | None = None, include_revoked: bool = False
    ) -> list[ApiKey]:
        return await self.store.list(tenant=tenant, include_revoked=include_revoked)

    async def get(self, key_id: str) -> ApiKey:
        key = await self.store.get(key_id)
        if key is None:
            raise NotFound(f"no API key with id {key_id!r}", param="id")
        return key

    async def revoke(self, key_id: str) -> ApiKey:
        key = await self.store.revoke(key_id, self._clock.time())
        if key is None:
            raise NotFound(f"no API key with id {key_id!r}", param="id")
        if self._invalidation is not None:
            await self._invalidation.publish(key.key_hash)
        return key

    def now(self) -> float:
        return self._clock.time()
