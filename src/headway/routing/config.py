"""Per-route resilience policy: deadlines, retries, breaker, stream deadlines, recovery, hedging.

Owned by the routing package. `headway.config.schema.RouteSection` extends it with the chain, so
every field here is written under `routes.<alias>` in the config file. `None` switches a deadline
off; an explicit `0` is never read as "unset".
"""

from __future__ import annotations

from pydantic import Field, model_validator

from headway.config.base import StrictModel


class BreakerConfig(StrictModel):
    """One breaker per deployment; a route's settings apply to the calls it sends there."""

    enabled: bool = True
    #: open after this many failures in a row
    consecutive_failures: int = Field(default=5, ge=1)
    #: ... or when at least this fraction of the calls in the window failed
    error_rate: float = Field(default=0.5, gt=0, le=1)
    window_s: float = Field(default=60.0, gt=0)
    #: the error rate is only trusted over at least this many calls in the window
    min_volume: int = Field(default=20, ge=1)
    #: how long an open breaker rejects before letting probes through
    cooldown_s: float = Field(default=30.0, gt=0)
    #: probes allowed in flight at once while half-open
    half_open_probes: int = Field(default=1, ge=1)
    #: successful probes needed to close again
    close_after: int = Field(default=1, ge=1)


class RetryConfig(StrictModel):
    #: upstream attempts one call may make, over every deployment of the route
    max_attempts: int = Field(default=4, ge=1)
    #: re-sends to the same deployment after a retryable error
    retries_per_deployment: int = Field(default=1, ge=0)
    #: a chain of several deployments falls over instead of re-sending (re-sends then apply to
    #: single-deployment routes only); false: re-send to each member before falling over
    prefer_fallback: bool = True
    backoff_base_s: float = Field(default=0.25, ge=0)
    backoff_max_s: float = Field(default=8.0, ge=0)
    #: a server-directed wait (`retry-after`) longer than this is not waited for
    max_retry_after_s: float = Field(default=30.0, ge=0)
    #: retries (re-sends) at most this fraction of the route's calls over the window ...
    budget_ratio: float = Field(default=0.2, ge=0, le=1)
    budget_window_s: float = Field(default=10.0, gt=0)
    #: ... plus this many per window, so a quiet route can still retry
    budget_min_retries: int = Field(default=3, ge=0)


class StreamDeadlines(StrictModel):
    #: seconds until the first token of a streamed attempt (None: only the attempt timeout)
    ttft_timeout_s: float | None = Field(default=30.0, gt=0)
    #: seconds without a chunk after the first before a stream counts as stalled
    stall_timeout_s: float | None = Field(default=30.0, gt=0)


class RecoveryConfig(StrictModel):
    """Mid-stream recovery: resume a stream that broke after text reached the caller."""

    enabled: bool = True
    #: resume attempts per call (each may land on the same or another deployment)
    max_attempts: int = Field(default=3, ge=1)


class HedgeConfig(StrictModel):
    """Opt-in: when no first token arrived by a deployment's observed TTFT quantile, send the
    same request to the next healthy deployment; the first answer wins."""

    enabled: bool = False
    quantile: float = Field(default=0.95, gt=0, lt=1)
    #: samples a deployment needs before its quantile is trusted ...
    min_samples: int = Field(default=20, ge=1)
    #: ... and the delay used until then
    initial_delay_s: float = Field(default=2.0, gt=0)
    min_delay_s: float = Field(default=0.05, ge=0)


class RoutePolicyConfig(StrictModel):
    #: overall deadline for a call on this route, seconds (a request header may shorten it)
    timeout_s: float = Field(default=600.0, gt=0)
    #: per-attempt timeout, seconds (for streams: until the first token)
    attempt_timeout_s: float = Field(default=120.0, gt=0)
    breaker: BreakerConfig = Field(default_factory=BreakerConfig)
    retry: RetryConfig = Field(default_factory=RetryConfig)
    stream: StreamDeadlines = Field(default_factory=StreamDeadlines)
    recovery: RecoveryConfig = Field(default_factory=RecoveryConfig)
    hedge: HedgeConfig = Field(default_factory=HedgeConfig)
    #: a content-filter refusal is returned to the caller unless this is set
    route_around_content_filter: bool = False

    @model_validator(mode="after")
    def _attempt_within_call(self) -> RoutePolicyConfig:
        if self.attempt_timeout_s > self.timeout_s:
            raise ValueError("attempt_timeout_s may not exceed timeout_s")
        return self
