"""Config section `observe`: Metrics, request log, quality sampling, drift.

Owned by the observe package; the root schema (headway.config.schema) only references it.
"""

from __future__ import annotations

from headway.config.base import StrictModel


class ObserveConfig(StrictModel):
    enabled: bool = False
