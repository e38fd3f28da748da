"""Config section `degrade`: The degradation ladder: stale cache, smaller model, static answer, queue.

Owned by the degrade package; the root schema (headway.config.schema) only references it.
"""

from __future__ import annotations

from headway.config.base import StrictModel


class DegradeConfig(StrictModel):
    enabled: bool = False
