"""API keys as values: how a key is generated, hashed, validated, shown and turned into a Principal.

A key is `hw-` followed by 256 random bits. Only its SHA-256 is stored: with that much entropy a
slow KDF buys nothing, and a fast hash keeps the lookup on the authentication path cheap. The
plaintext is shown once, when the key is created.
"""

from __future__ import annotations

import dataclasses
import hashlib
import hmac
import math
import secrets
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, get_args

from headway.budgets.items import budgets_from_mapping
from headway.budgets.values import Period
from headway.context import Principal
from headway.errors import InvalidRequest
from headway.limits.values import LimitSpec

KEY_PREFIX = "hw-"
#: characters of the plaintext kept for display, so people can tell their keys apart
DISPLAY_PREFIX_LEN = 10

#: per-key rate limits, named as the fields of `LimitSpec` (rpm, tpm, tpd, ...)
LIMIT_FIELDS: tuple[str, ...] = tuple(f.name for f in dataclasses.fields(LimitSpec))
#: per-key budgets: `usd_per_<period>` and `tokens_per_<period>` (as `budgets_from_mapping` reads)
BUDGET_FIELDS: tuple[str, ...] = tuple(
    f"{unit}_per_{period}" for unit in ("usd", "tokens") for period in get_args(Period)
)
#: limits and token budgets count whole things; only dollar budgets take fractions
_WHOLE = frozenset(LIMIT_FIELDS) | {f for f in BUDGET_FIELDS if f.startswith("tokens_")}

_MAX_TEXT = 200


def hash_key(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def same_hash(a: str, b: str) -> bool:
    """Constant-time comparison, so a lookup never leaks how much of a hash matched."""
    return hmac.compare_digest(a.encode("ascii"), b.encode("ascii"))


def generate_key() -> tuple[str, str]:
    """A new `(plaintext, key_id)`."""
    return KEY_PREFIX + secrets.token_urlsafe(32), "key_" + secrets.token_hex(8)


@dataclass(slots=True, frozen=True)
class KeySpec:
    """What a caller asks for when creating a key (already validated)."""

    tenant: str = "default"
    name: str | None = None
    user: str | None = None
    team: str | None = None
    allowed_models: tuple[str, ...] | None = None
    limits: Mapping[str, float] = field(default_factory=dict)
    budgets: Mapping[str, float] = field(default_factory=dict)
    expires_at: float | None = None


@dataclass(slots=True, frozen=True)
class ApiKey:
    """A stored key. Never holds the plaintext."""

    id: str
    key_hash: str
    prefix: str
    tenant: str
    name: str | None = None
    user: str | None = None
    team: str | None = None
    allowed_models: tuple[str, ...] | None = None
    limits: Mapping[str, float] = field(default_factory=dict)
    budgets: Mapping[str, float] = field(default_factory=dict)
    created_at: float = 0.0
    expires_at: float | None = None
    revoked_at: float | None = None

    def active(self, now: float) -> bool:
        if self.revoked_at is not None:
            return False
        return self.expires_at is None or now < self.expires_at

    def status(self, now: float) -> str:
        if self.revoked_at is not None:
            return "revoked"
        if self.expires_at is not None and now >= self.expires_at:
            return "expired"
        return "active"

    def public(self, now: float) -> dict[str, Any]:
        """The JSON the admin API and CLI show: everything but the hash."""
        return {
            "id": self.id,
            "object": "api_key",
            "prefix": self.prefix,
            "name": self.name,
            "tenant": self.tenant,
            "user": self.user,
            "team": self.team,
            "allowed_models": list(self.allowed_models)
            if self.allowed_models is not None
            else None,
            "limits": dict(self.limits),
            "budgets": dict(self.budgets),
            "created_at": self.created_at,
            "expires_at": self.expires_at,
            "revoked_at": self.revoked_at,
            "status": self.status(now),
        }


def principal_for(key: ApiKey) -> Principal:
    """The caller a key stands for, with its own limits and budgets (None: the tier defaults)."""
    limits = {k: int(v) for k, v in key.limits.items() if k in LIMIT_FIELDS}
    budgets = {k: v for k, v in key.budgets.items() if k in BUDGET_FIELDS}
    return Principal(
        tenant=key.tenant,
        user=key.user,
        team=key.team,
        key_id=key.id,
        allowed_models=frozenset(key.allowed_models) if key.allowed_models is not None else None,
        limits=LimitSpec(**limits) if limits else None,
        budgets=budgets_from_mapping(budgets) if budgets else None,
    )


# ---- validation of untrusted input (admin API bodies, CLI flags) ----------------------------


def _text(body: Mapping[str, Any], name: str, *, required: bool = False) -> str | None:
    value = body.get(name)
    if value is None:
        if required:
            raise InvalidRequest(f"`{name}` is required", param=name)
        return None
    if not isinstance(value, str) or not value.strip():
        raise InvalidRequest(f"`{name}` must be a non-empty string", param=name)
    if len(value) > _MAX_TEXT:
        raise InvalidRequest(f"`{name}` is longer than {_MAX_TEXT} characters", param=name)
    return value.strip()


def _amounts(body: Mapping[str, Any], name: str, allowed: tuple[str, ...]) -> dict[str, float]:
    value = body.get(name)
    if value is None:
        return {}
    if not isinstance(value, Mapping):
        raise InvalidRequest(f"`{name}` must be an object", param=name)
    out: dict[str, float] = {}
    for k, v in value.items():
        if k not in allowed:
            raise InvalidRequest(
                f"`{name}.{k}` is not known (known: {', '.join(allowed)})", param=f"{name}.{k}"
            )
        if v is None:
            continue
        if isinstance(v, bool) or not isinstance(v, int | float) or not math.isfinite(v) or v < 0:
            raise InvalidRequest(f"`{name}.{k}` must be a number >= 0", param=f"{name}.{k}")
        if k in _WHOLE and not float(v).is_integer():
            raise InvalidRequest(f"`{name}.{k}` must be a whole number", param=f"{name}.{k}")
        out[k] = int(v) if float(v).is_integer() else float(v)
    return out


def parse_key_spec(body: Mapping[str, Any], *, now: float) -> KeySpec:
    """Validate a create-key request. Every error names the offending field."""
    known = {"tenant", "name", "user", "team", "allowed_models", "limits", "budgets"}
    known |= {"expires_at", "expires_in_s"}
    for k in body:
        if k not in known:
            raise InvalidRequest(f"unknown field `{k}`", param=str(k))
    models = body.get("allowed_models")
    allowed: tuple[str, ...] | None = None
    if models is not None:
        if not isinstance(models, list) or not all(isinstance(m, str) and m for m in models):
            raise InvalidRequest(
                "`allowed_models` must be a list of model names", param="allowed_models"
            )
        allowed = tuple(dict.fromkeys(models))
    expires_at: float | None = None
    for k in ("expires_at", "expires_in_s"):
        v = body.get(k)
        if v is None:
            continue
        if isinstance(v, bool) or not isinstance(v, int | float) or not math.isfinite(v) or v <= 0:
            raise InvalidRequest(f"`{k}` must be a positive number", param=k)
        expires_at = float(v) if k == "expires_at" else now + float(v)
    return KeySpec(
        tenant=_text(body, "tenant") or "default",
        name=_text(body, "name"),
        user=_text(body, "user"),
        team=_text(body, "team"),
        allowed_models=allowed,
        limits=_amounts(body, "limits", LIMIT_FIELDS),
        budgets=_amounts(body, "budgets", BUDGET_FIELDS),
        expires_at=expires_at,
    )
