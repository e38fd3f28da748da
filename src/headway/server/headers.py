"""`call.served` -> response headers: how the call was served, in the caller's view."""

from __future__ import annotations

from headway.context import Served
from headway.server.http import Headers


def _h(value: str) -> bytes:
    # Header values are latin-1 on the wire; anything else is replaced rather than failing a reply.
    return value.encode("latin-1", "replace")


def served_headers(served: Served, out: Headers) -> None:
    """Append the `x-headway-*`, `x-ratelimit-*` and stage-provided headers to `out`."""
    out.append((b"x-headway-cache", _h(served.cache)))
    if served.route is not None:
        out.append((b"x-headway-route", _h(served.route)))
    if served.deployment is not None:
        out.append((b"x-headway-deployment", _h(served.deployment)))
        out.append((b"x-headway-fallback-depth", str(served.fallback_depth).encode()))
    if served.degraded:
        out.append((b"x-headway-degraded", _h(",".join(served.degraded))))
    for name, value in served.ratelimit_headers.items():
        out.append((_h(name), _h(value)))
    for name, value in served.headers.items():
        out.append((_h(name), _h(value)))
