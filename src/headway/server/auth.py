"""Who is calling: the master key, API keys (through a `KeyResolver`), or nobody (auth off).

Credentials come from `Authorization: Bearer <key>` (OpenAI SDK) or `x-api-key: <key>`
(Anthropic SDK). The master key is compared in constant time. API keys are resolved by whatever
implements `KeyResolver` (headway.keys), given to the constructor or found in
`services.extras["key_resolver"]` at call time (so a resolver registered after start-up counts).
"""

from __future__ import annotations

import hmac
from collections.abc import Mapping
from typing import Any, Protocol

from headway.context import ANONYMOUS, Principal
from headway.errors import AuthenticationFailed, PermissionDenied

MASTER = Principal(tenant="default", key_id="master", is_admin=True)


class KeyResolver(Protocol):
    async def resolve(self, token: str) -> Principal | None:
        """The principal an API key stands for, or None for an unknown key. May raise
        `AuthenticationFailed` / `PermissionDenied` itself (revoked, expired key)."""
        ...


def bearer_token(headers: Mapping[str, str]) -> str | None:
    auth = headers.get("authorization")
    if auth is not None:
        scheme, _, token = auth.partition(" ")
        if scheme.lower() == "bearer":
            token = token.strip()
            if token:
                return token
    key = headers.get("x-api-key")
    return key.strip() if key and key.strip() else None


class Authenticator:
    def __init__(
        self,
        master_key: str | None,
        resolver: KeyResolver | None = None,
        *,
        extras: Mapping[str, Any] | None = None,
    ) -> None:
        self._master = master_key.encode() if master_key else None
        self._resolver = resolver
        self._extras = extras if extras is not None else {}

    @property
    def enabled(self) -> bool:
        """Auth is on when a master key is configured; without one every caller is anonymous."""
        return self._master is not None

    def _key_resolver(self) -> KeyResolver | None:
        if self._resolver is not None:
            return self._resolver
        # Looked up per call (cheap) so a resolver installed at start-up is seen; trusted to
        # follow the protocol, since a runtime isinstance check costs more than the lookup.
        found: KeyResolver | None = self._extras.get("key_resolver")
        return found

    def known(self, headers: Mapping[str, str], admin: bool = False) -> Principal | str:
        """The caller when no key resolver is needed (no key, the master key, auth off without
        a resolver), else the token for `resolve`. Not a coroutine: those cases are nearly
        every request, and an `await` chain per request was measurable. `admin`: the endpoint
        needs an admin caller."""
        found = self._known(headers)
        return self.require_admin(found) if admin and isinstance(found, Principal) else found

    def _known(self, headers: Mapping[str, str]) -> Principal | str:
        # once per request: `enabled` and `_key_resolver` read inline (calls fewer)
        token = bearer_token(headers)
        master = self._master
        if token is None:
            if master is not None:
                raise AuthenticationFailed(
                    "You didn't provide an API key. Send it as `Authorization: Bearer <key>` "
                    "or `x-api-key: <key>`.",
                    code="missing_api_key",
                )
            return ANONYMOUS
        if master is not None:
            return MASTER if hmac.compare_digest(token.encode(), master) else token
        if self._resolver is None and self._extras.get("key_resolver") is None:
            return ANONYMOUS  # auth is off: an unknown key is just an anonymous caller
        return token

    async def resolve(self, token: str, admin: bool = False) -> Principal:
        """The caller an API key stands for (`known` returned the token). One coroutine: every
        request with a key that is not the master key awaits it."""
        resolver = self._key_resolver()
        principal = await resolver.resolve(token) if resolver is not None else None
        if principal is None:
            if self._master is not None:
                raise AuthenticationFailed("Incorrect API key provided.")
            principal = ANONYMOUS  # auth is off: an unknown key is just an anonymous caller
        return self.require_admin(principal) if admin else principal

    def require_admin(self, principal: Principal) -> Principal:
        if self.enabled and not principal.is_admin:
            raise PermissionDenied("This endpoint needs the master key or an admin key.")
        return principal

    async def authenticate(self, headers: Mapping[str, str], admin: bool = False) -> Principal:
        """`known`, then `resolve` for an API key: what the app does per request."""
        found = self.known(headers, admin)
        return found if isinstance(found, Principal) else await self.resolve(found, admin)

    async def authenticate_admin(self, headers: Mapping[str, str]) -> Principal:
        return await self.authenticate(headers, admin=True)
