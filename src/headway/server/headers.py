"""`call.served` -> response headers: how the call was served, in the caller's view."""

from __future__ import annotations

from headway.context import Served
from headway.server.http import Headers

Header = tuple[bytes, bytes]

#: how many distinct values the per-process caches below keep (route and deployment names,
#: header names: a handful from the config; the bound only guards against a surprise)
_MAX_CACHED = 4096


def _h(value: str) -> bytes:
    # Header values are latin-1 on the wire; anything else is replaced rather than failing a reply.
    return value.encode("latin-1", "replace")


class _Pairs:
    """Ready `(name, value)` header pairs for values that repeat (cache kinds, route and
    deployment names): encoded once per process instead of once per response."""

    __slots__ = ("_by", "_name", "known")

    def __init__(self, name: bytes) -> None:
        self._name = name
        self._by: dict[str, Header] = {}
        #: the pair of a value seen before, or None: the dict's own `get`, a C call where
        #: `self(value)` is a Python one (three per response)
        self.known = self._by.get

    def __call__(self, value: str) -> Header:
        pair = self._by.get(value)
        if pair is None:
            pair = (self._name, _h(value))
            if len(self._by) < _MAX_CACHED:
                self._by[value] = pair
        return pair


_cache = _Pairs(b"x-headway-cache")
_route = _Pairs(b"x-headway-route")
_deployment = _Pairs(b"x-headway-deployment")
_DEPTHS: tuple[Header, ...] = tuple((b"x-headway-fallback-depth", b"%d" % i) for i in range(16))
_names: dict[str, bytes] = {}


def _name(name: str) -> bytes:
    out = _names.get(name)
    if out is None:
        out = _h(name)
        if len(_names) < _MAX_CACHED:
            _names[name] = out
    return out


def served_headers(served: Served, out: Headers) -> None:
    """Append the `x-headway-*`, `x-ratelimit-*` and stage-provided headers to `out`."""
    cache = served.cache
    out.append(_cache.known(cache) or _cache(cache))
    route = served.route
    if route is not None:
        out.append(_route.known(route) or _route(route))
    deployment = served.deployment
    if deployment is not None:
        out.append(_deployment.known(deployment) or _deployment(deployment))
        depth = served.fallback_depth
        if 0 <= depth < len(_DEPTHS):
            out.append(_DEPTHS[depth])
        else:
            out.append((b"x-headway-fallback-depth", str(depth).encode()))
    if served.degraded:
        out.append((b"x-headway-degraded", _h(",".join(served.degraded))))
    for name, value in served.ratelimit_headers.items():
        out.append((_name(name), _h(value)))
    for name, value in served.headers.items():
        out.append((_name(name), _h(value)))
