"""Request headers -> a `Call`: the controls a caller may set on any ingress.

| header | effect |
|---|---|
| `x-headway-task` | task type for routing/caching/limits (`classification`, `qa`, `code`, ...) |
| `x-headway-cache` | `no-store`, `no-cache` or `stale-ok` |
| `x-headway-deadline-ms` | the whole call must finish within this many milliseconds |
| `x-headway-timeout` | the same in seconds (decimals allowed); the tighter of the two wins |
| `x-headway-priority` | `interactive` (default) or `batch` |
| `x-headway-user` | end user, when the key is not bound to one (else the body's `user`) |
"""

from __future__ import annotations

from headway.context import Call, Ingress, Principal
from headway.errors import InvalidRequest
from headway.server.http import Request
from headway.types import ChatRequest

_CACHE: frozenset[str] = frozenset({"no-store", "no-cache", "stale-ok"})
_PRIORITY: frozenset[str] = frozenset({"interactive", "batch"})


def _seconds(raw: str, header: str, scale: float) -> float:
    try:
        value = float(raw) * scale
    except ValueError:
        value = -1.0
    if not value > 0 or value == float("inf"):
        raise InvalidRequest(f"Invalid '{header}': expected a positive number.", param=header)
    return value


#: (id(principal), user) -> (principal, principal acting for user). Principals are immutable
#: and a server sees the same few keys and end users again and again, so the derived principal
#: is kept instead of built per request; holding the principal keeps its id from being reused.
_acting: dict[tuple[int, str], tuple[Principal, Principal]] = {}
_ACTING_MAX = 1024


def _acting_for(principal: Principal, user: str) -> Principal:
    key = (id(principal), user)
    hit = _acting.get(key)
    if hit is not None and hit[0] is principal:
        return hit[1]
    derived = principal.with_user(user)
    if len(_acting) >= _ACTING_MAX:
        _acting.clear()
    _acting[key] = (principal, derived)
    return derived


def build_call(req: Request, request: ChatRequest, ingress: Ingress) -> Call:
    """A Call for `request` with the caller's principal and controls; records `req.served`."""
    headers = req.headers
    get = headers.get
    principal = req.principal
    user = get("x-headway-user") or request.user
    if user and principal.user is None:
        principal = _acting_for(principal, user)

    cache = get("x-headway-cache")
    if cache is not None and cache not in _CACHE:
        raise InvalidRequest(
            "Invalid 'x-headway-cache': expected no-store, no-cache or stale-ok.",
            param="x-headway-cache",
        )
    priority = get("x-headway-priority", "interactive")
    if priority not in _PRIORITY:
        raise InvalidRequest(
            "Invalid 'x-headway-priority': expected interactive or batch.",
            param="x-headway-priority",
        )
    budget: float | None = None
    raw = get("x-headway-deadline-ms")
    if raw is not None:
        budget = _seconds(raw, "x-headway-deadline-ms", 0.001)
    raw = get("x-headway-timeout")
    if raw is not None:
        seconds = _seconds(raw, "x-headway-timeout", 1.0)
        budget = seconds if budget is None else min(budget, seconds)

    # Positional, in Call's field order: keywords to a class cost ~1k instructions each on
    # Python 3.11 (tests/server check each field lands where it should)
    call = Call(
        request,
        principal,
        req.request_id,
        ingress,
        get("x-headway-task") or None,
        cache,  # type: ignore[arg-type] # checked against _CACHE above
        priority,  # type: ignore[arg-type] # checked against _PRIORITY above
        None if budget is None else req.received + budget,
        req.received,
        headers,
    )
    req.served = call.served
    return call
