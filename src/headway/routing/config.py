"""Per-route resilience policy (timeouts, retries, breaker, hedging, recovery).

Owned by the routing package. `headway.config.schema.RouteSection` extends it with the chain.
"""

from __future__ import annotations

from pydantic import Field

from headway.config.base import StrictModel


class RoutePolicyConfig(StrictModel):
    #: overall deadline for a call on this route, seconds (a request header may shorten it)
    timeout_s: float = Field(default=600.0, gt=0)
    #: per-attempt timeout, seconds
    attempt_timeout_s: float = Field(default=120.0, gt=0)
