"""A tiny synchronous event bus. Metrics, logs and alerts listen; nothing on the response path
waits for them. Listeners must be cheap (record a number, enqueue a line); slow exporters run
off the response path and read what listeners recorded."""

from __future__ import annotations

import logging
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

log = logging.getLogger("headway.events")

Listener = Callable[["Event"], None]


@dataclass(slots=True, frozen=True)
class Event:
    kind: str  # e.g. "call.done", "breaker.opened", "budget.threshold"
    data: dict[str, Any] = field(default_factory=dict)


class EventBus:
    def __init__(self) -> None:
        self._listeners: dict[str, list[Listener]] = defaultdict(list)
        self._any: list[Listener] = []

    def subscribe(self, kind: str | None, listener: Listener) -> None:
        """Listen to one kind of event, or to every event when `kind` is None."""
        if kind is None:
            self._any.append(listener)
        else:
            self._listeners[kind].append(listener)

    def wants(self, kind: str) -> bool:
        """Lets a hot path skip building an event nobody listens to."""
        return bool(self._any) or bool(self._listeners.get(kind))

    def emit(self, kind: str, **data: Any) -> None:
        listeners = self._listeners.get(kind)
        if not listeners and not self._any:
            return
        event = Event(kind, data)
        for listener in (*(listeners or ()), *self._any):
            try:
                listener(event)
            except Exception:  # noqa: BLE001 - a broken listener must never break a call
                log.exception("event listener failed for %s", kind)
