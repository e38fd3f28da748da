"""A tiny synchronous event bus. Metrics, logs and alerts listen; nothing on the response path
waits for them. Listeners must be cheap (record a number, enqueue a line); slow exporters run
off the response path and read what listeners recorded."""

from __future__ import annotations

import logging
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
        #: (kind or None for every kind, kinds starting with this are left out, listener)
        self._subs: list[tuple[str | None, str | None, Listener]] = []
        #: kind -> its listeners in subscription order, resolved on first use: `wants` and
        #: `emit` run for every call, subscriptions change only at start-up
        self._resolved: dict[str, tuple[Listener, ...]] = {}

    def subscribe(
        self, kind: str | None, listener: Listener, *, except_prefix: str | None = None
    ) -> None:
        """Listen to one kind of event, or to every event when `kind` is None (but the kinds
        starting with `except_prefix`: a listener that ignores them then costs their emitters
        nothing, since `wants` says no)."""
        self._subs.append((kind, except_prefix if kind is None else None, listener))
        self._resolved.clear()

    def _listeners(self, kind: str) -> tuple[Listener, ...]:
        found = self._resolved.get(kind)
        if found is None:
            own = [ls for k, _, ls in self._subs if k == kind]
            every = [
                ls
                for k, skip, ls in self._subs
                if k is None and (skip is None or not kind.startswith(skip))
            ]
            found = self._resolved[kind] = (*own, *every)
        return found

    def wants(self, kind: str) -> bool:
        """Lets a hot path skip building an event nobody listens to."""
        found = self._resolved.get(kind)  # `_listeners`' lookup inline: once or more per call
        if found is None:
            found = self._listeners(kind)
        return len(found) > 0

    def emit(self, kind: str, **data: Any) -> None:
        listeners = self._listeners(kind)
        if not listeners:
            return
        event = Event(kind, data)
        for listener in listeners:
            try:
                listener(event)
            except Exception:  # noqa: BLE001 - a broken listener must never break a call
                log.exception("event listener failed for %s", kind)
