"""Config section `limits`: token-aware rate limits per tier (key, user, team, deployment, global).

    limits:
      enabled: true
      global: {rpm: 6000, tpm: 2000000}
      key: {rpm: 600, tpm: 200000, concurrency: 20}      # default for every API key
      user: {rpm: 60, tpm: 40000, tpd: 2000000}
      team: {tpm: 400000}
      teams: {research: {tpm: 1000000}}                   # per-team overrides
      deployments:                                        # the provider's own limits
        claude: {rpm: 4000, input_tpm: 2000000, output_tpm: 400000}
      on_store_error: open                                # Redis down: open | closed
      wait: {max_wait_s: 30}

Owned by the limits package; the root schema (headway.config.schema) only references it.
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from headway.config.base import StrictModel
from headway.limits.values import LimitSpec


class LimitValues(StrictModel):
    """Limits of one tier; an unset metric is unlimited."""

    rpm: int | None = Field(default=None, gt=0)
    rpd: int | None = Field(default=None, gt=0)
    tpm: int | None = Field(default=None, gt=0)
    tpd: int | None = Field(default=None, gt=0)
    input_tpm: int | None = Field(default=None, gt=0)
    output_tpm: int | None = Field(default=None, gt=0)
    concurrency: int | None = Field(default=None, gt=0)

    def spec(self) -> LimitSpec:
        return LimitSpec(
            rpm=self.rpm,
            rpd=self.rpd,
            tpm=self.tpm,
            tpd=self.tpd,
            input_tpm=self.input_tpm,
            output_tpm=self.output_tpm,
            concurrency=self.concurrency,
        )


class DeploymentLimitValues(LimitValues):
    """A provider's own limits for one deployment."""

    #: how the provider counts a call against these limits: `reserved` keeps the up-front
    #: charge (prompt + max_tokens, never refunded: OpenAI, Azure, the sim), `actual` corrects
    #: it to real usage afterwards (Anthropic). Unset: by the provider's kind.
    charge: Literal["reserved", "actual"] | None = None
    #: the share of these limits headway itself uses: calls admitted here reach the provider a
    #: little later, and a provider whose bucket sat empty meanwhile has not refilled for them,
    #: so the same figure on both sides would now and then let the provider refuse one
    headroom: float = Field(default=0.97, gt=0, le=1)

    def spec(self) -> LimitSpec:
        full = super().spec()
        if self.headroom == 1:
            return full
        return full.scaled(self.headroom)


class WaitSettings(StrictModel):
    #: wait for capacity instead of failing at once (up to the call's deadline)
    enabled: bool = True
    #: the longest a call waits when it carries no deadline of its own, seconds
    max_wait_s: float = Field(default=30.0, ge=0)
    #: how often a call waiting on a concurrency slot held by another replica looks again
    concurrency_recheck_s: float = Field(default=0.25, gt=0)


class EstimateSettings(StrictModel):
    """Offline token estimation (tiktoken) used to reserve before the call."""

    encoding: str = "o200k_base"
    #: multiplier on the OpenAI count, by provider kind (no exact offline tokenizer for these)
    factors: dict[str, float] = Field(
        default_factory=lambda: {"anthropic": 1.2, "gemini": 1.1}, validate_default=True
    )
    #: tokens charged per image when its size is unknown (the largest tile layouts)
    image_tokens: int = Field(default=1600, ge=0)
    #: tokens charged per image sent with `detail: low`
    image_tokens_low: int = Field(default=85, ge=0)
    #: output reserved when neither the request nor the deployment sets max_tokens
    default_max_tokens: int = Field(default=4096, gt=0)
    #: send the reserved output as `max_tokens` when the caller set none, so a call can never
    #: spend more than it reserved
    cap_output: bool = True


class LimitsConfig(StrictModel):
    enabled: bool = False
    global_: LimitValues | None = Field(default=None, alias="global")
    #: default for every API key; a key's own limits (Principal.limits) override per metric
    key: LimitValues | None = None
    user: LimitValues | None = None
    team: LimitValues | None = None
    teams: dict[str, LimitValues] = Field(default_factory=dict)
    #: per deployment (a name under `models`): the provider's own limits
    deployments: dict[str, DeploymentLimitValues] = Field(default_factory=dict)
    #: header naming the end user when the body has no OpenAI `user` field
    user_header: str = "x-headway-user"
    #: what happens when the shared store (Redis) is down: `open` serves without the shared
    #: limits, `closed` answers 503. Budgets have their own policy (budgets.on_store_error).
    on_store_error: Literal["open", "closed"] = "open"
    #: a concurrency slot is freed after this long even if its call never settled (a crash)
    concurrency_lease_s: float = Field(default=900.0, gt=0)
    #: key prefix in Redis; also the Redis Cluster hash tag
    redis_prefix: str = "headway"
    wait: WaitSettings = Field(default_factory=WaitSettings)
    estimate: EstimateSettings = Field(default_factory=EstimateSettings)
