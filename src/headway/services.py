"""Shared services a gateway is built with: clock, event bus, the HTTP transport, state backends.

Created once per Gateway and handed to factories, so nothing lives in module-level globals.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from headway.clock import SYSTEM_CLOCK, Clock
from headway.observe.events import EventBus


@dataclass(slots=True)
class Services:
    clock: Clock = SYSTEM_CLOCK
    events: EventBus = field(default_factory=EventBus)
    #: the shared upstream HTTP client (headway.transport.http.Transport), created lazily
    transport: Any = None
    #: optional backends filled in by feature factories (redis client, ledger, stores...)
    extras: dict[str, Any] = field(default_factory=dict)

    async def aclose(self) -> None:
        if self.transport is not None:
            await self.transport.aclose()
            self.transport = None
        for item in list(self.extras.values()):
            close = getattr(item, "aclose", None)
            if close is not None:
                await close()
        self.extras.clear()
