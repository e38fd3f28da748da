"""Config section `cache`: Exact and semantic caching, TTL per task type.

Owned by the cache package; the root schema (headway.config.schema) only references it.
"""

from __future__ import annotations

from headway.config.base import StrictModel


class CacheConfig(StrictModel):
    enabled: bool = False
