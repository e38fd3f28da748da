"""Per-call context: who is calling, what they asked for, and what happened while serving it.

A `Call` travels through every stage. Stages read the request and principal and record what they
did in `call.served`; the server turns `served` into response headers and metrics listen to it.
"""

from __future__ import annotations

import itertools
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Literal

from headway.types import ChatRequest, Usage

if TYPE_CHECKING:
    from headway.budgets.values import BudgetSpec
    from headway.errors import HeadwayError
    from headway.limits.values import LimitSpec

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
    #: this key's own rate limits; each metric set here overrides the `limits.key` default
    limits: LimitSpec | None = None
    #: this key's own budgets; when set they replace the `budgets.key` default
    budgets: tuple[BudgetSpec, ...] | None = None

    def with_user(self, user: str) -> Principal:
        """This principal acting for `user`. Built field by field: `dataclasses.replace` costs
        several microseconds per request on the server path (keep in step with the fields)."""
        return Principal(
            self.tenant,
            user,
            self.team,
            self.key_id,
            self.allowed_models,
            self.is_admin,
            self.limits,
            self.budgets,
        )


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
    #: what the call cost upstream; on a cache hit, what it would have cost (the savings)
    cost_usd: float | None = None
    #: OpenAI-style `x-ratelimit-*` headers for the caller's own tightest limits
    ratelimit_headers: dict[str, str] = field(default_factory=dict)
    #: anything else a stage wants the caller to see, already in header form
    headers: dict[str, str] = field(default_factory=dict)
    ttft_s: float | None = None
    #: seconds spent waiting on providers: each attempt's time (hedged attempts racing count
    #: once); for a stream, the time spent waiting for its chunks, not the caller's reading
    upstream_s: float = 0.0
    #: seconds spent waiting on purpose: retry backoff, a queue for rate-limit capacity. The
    #: server reports the rest (total - upstream_s - wait_s) as `x-headway-overhead-ms`.
    wait_s: float = 0.0


_ids = itertools.count(1)
_prefix = os.urandom(4).hex()
#: `req_<prefix>%010d`: %-formatting skips the format-spec parsing of an f-string's `:010d`
_id_format = f"req_{_prefix}%010d"


def new_request_id() -> str:
    """Unique per process and cheap: a random per-process prefix plus a counter."""
    return _id_format % next(_ids)


# The gateway and the server build calls positionally (keywords to a class cost ~1k
# instructions each on Python 3.11): append new fields at the end, or update them too.
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
    #: set by the limits stage: deployments of the chain with no capacity for this call (the
    #: provider would reject it); the chain skips them
    skip_deployments: frozenset[str] = frozenset()
    #: set by the limits stage when the call may be answered from cache but must not go
    #: upstream (limits backend down, fail-closed): the terminal raises it instead of sending
    upstream_block: HeadwayError | None = None
