"""Config section `limits`: Token-aware rate limits per tier (key, user, team, deployment, global).

Owned by the limits package; the root schema (headway.config.schema) only references it.
"""

from __future__ import annotations

from headway.config.base import StrictModel


class LimitsConfig(StrictModel):
    enabled: bool = False
