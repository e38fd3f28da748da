"""Per-call context: who is calling, what they asked for, and what happened while serving it.

A `Call` travels through every stage. Stages read the request and principal and record what they
did in `call.served`; the server turns `served` into response headers and metrics listen to it.
"""

from __future__ import annotations

import itertools
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Literal

from headway.types import ChatRequest, Usage

Ingress = Literal["openai", "anthropic", "library"]
Priority = Literal["interactive", "batch"]
CacheDirective = Literal["no-store", "no-cache", "stale-ok"]


@dataclass(slots=True, frozen=True)
class Principal:
    """Who is calling. Limits, budgets, cache scopes and the ledger key off these fields."""

    tenant: str = "default"
    user: str | None = None
    team: str | None = None
    key_id: str | None = None
    allowed_models: frozenset[str] | None = None  # None: every model
    is_admin: bool = False


ANONYMOUS = Principal()


@dataclass(slots=True)
class Served:
    """How a call was served. Every field ends up in a response header and in metrics."""

    route: str | None = None
    deployment: str | None = None
    upstream_model: str | None = None
    fallback_depth: int = 0
    attempts: int = 0
    cache: Literal["miss", "exact", "semantic", "stale", "off"] = "off"
    cache_similarity: float | None = None
    cache_age_s: float | None = None
    degraded: list[str] = field(default_factory=list)
    usage: Usage | None = None
    cost_usd: float | None = None
    #: OpenAI-style `x-ratelimit-*` headers for the caller's own tightest limits
    ratelimit_headers: dict[str, str] = field(default_factory=dict)
    #: anything else a stage wants the caller to see, already in header form
    headers: dict[str, str] = field(default_factory=dict)
    ttft_s: float | None = None


_ids = itertools.count(1)
_prefix = os.urandom(4).hex()


def new_request_id() -> str:
    """Unique per process and cheap: a random per-process prefix plus a counter."""
    return f"req_{_prefix}{next(_ids):010d}"


@dataclass(slots=True)
class Call:
    request: ChatRequest
    principal: Principal = ANONYMOUS
    request_id: str = field(default_factory=new_request_id)
    ingress: Ingress = "library"
    task: str | None = None
    cache_directive: CacheDirective | None = None
    priority: Priority = "interactive"
    #: absolute deadline on the clock's monotonic scale; None means the route default applies
    deadline: float | None = None
    started: float = 0.0
    headers: Mapping[str, str] = field(default_factory=dict)
    served: Served = field(default_factory=Served)
