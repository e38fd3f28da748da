"""The bytes of an upstream request, built once and cached wherever they repeat.

A request is: request line + Host (cached per base URL, path and query), a header block (cached
per header set: a provider sends the same static headers on every call), then Content-Length and
the body. Per call only the length and the body are new.

Headers this client manages itself are dropped from the caller's set: `Host` (always the base
URL's), `Content-Length`, `Transfer-Encoding` and `Connection`. `Accept-Encoding: identity` is
sent unless the caller chose otherwise, because responses are handed over as received, never
decompressed.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from urllib.parse import quote, urlencode, urlsplit

from headway.errors import UpstreamError

_MANAGED = frozenset({"host", "content-length", "transfer-encoding", "connection"})
_DEFAULTS = (
    ("user-agent", "User-Agent: headway\r\n"),
    ("accept", "Accept: */*\r\n"),
    ("accept-encoding", "Accept-Encoding: identity\r\n"),
)
_PATH_SAFE = "/:@!$&'()*+,;=-._~%"  # what may stay unquoted in a path (RFC 3986), escapes kept
_QUERY_SAFE = "=&+/:@!$'()*,;?~-._%"
_FORBIDDEN = ("\r", "\n", "\0")
_UNSAFE = (" ", "\r", "\n", "\0")
_WITH_BODY = frozenset({"POST", "PUT", "PATCH"})
_NO_BODY_END = b"\r\n"
_EMPTY_BODY_END = b"Content-Length: 0\r\n\r\n"


@dataclass(slots=True, frozen=True)
class Origin:
    """Where a base URL points: the pool key, the address, and what prefixes every request."""

    key: str  # scheme://host:port, one pool each
    tls: bool
    host: str
    port: int
    prefix: str  # the base URL's path, without a trailing slash
    query: str  # the base URL's own query string, if any
    host_line: str  # "Host: ...\r\n"


def parse_origin(base_url: str) -> Origin:
    try:
        parts = urlsplit(base_url)
        port = parts.port
    except ValueError as exc:
        raise UpstreamError(f"invalid upstream URL {base_url!r}: {exc}") from None
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise UpstreamError(f"invalid upstream URL {base_url!r}: need http(s)://host")
    tls = parts.scheme == "https"
    host = parts.hostname
    default = 443 if tls else 80
    port = port or default
    try:
        name = host.encode("ascii").decode()
    except UnicodeEncodeError:
        name = host.encode("idna").decode()
    if ":" in name:
        name = f"[{name}]"  # an IPv6 literal
    authority = name if port == default else f"{name}:{port}"
    return Origin(
        key=f"{parts.scheme}://{host}:{port}",
        tls=tls,
        host=host,
        port=port,
        prefix=parts.path.rstrip("/"),
        query=quote(parts.query, safe=_QUERY_SAFE),
        host_line=f"Host: {authority}\r\n",
    )


def request_line(origin: Origin, method: str, path: str, query: Mapping[str, str]) -> bytes:
    """`METHOD target HTTP/1.1` and the Host header, as bytes."""
    target = quote(origin.prefix + path, safe=_PATH_SAFE) or "/"
    search = "&".join(q for q in (origin.query, urlencode(query) if query else "") if q)
    if search:
        target = f"{target}?{search}"
    if any(c in target or c in method for c in _UNSAFE):
        raise UpstreamError(f"invalid upstream request: {method} {target!r}")
    return f"{method} {target} HTTP/1.1\r\n{origin.host_line}".encode("ascii")


def header_block(headers: Mapping[str, str], json_body: bool) -> tuple[bytes, bool]:
    """The caller's headers plus defaults, as bytes, and whether they carry an
    Idempotency-Key (which makes a request safe to send twice)."""
    lines: list[str] = []
    seen: set[str] = set()
    for name, value in headers.items():
        lname = name.lower()
        if lname in _MANAGED:
            continue
        if any(c in name or c in value for c in _FORBIDDEN) or ":" in name:
            raise UpstreamError(f"invalid header for upstream: {name!r}")
        seen.add(lname)
        lines.append(f"{name}: {value}\r\n")
    if json_body and "content-type" not in seen:
        lines.append("Content-Type: application/json\r\n")
    lines.extend(line for lname, line in _DEFAULTS if lname not in seen)
    return "".join(lines).encode("utf-8"), "idempotency-key" in seen


def with_body(head: bytes, method: str, body: bytes | None) -> bytes:
    """The whole request: head, framing and body, for one write."""
    if body is None:
        return head + (_EMPTY_BODY_END if method in _WITH_BODY else _NO_BODY_END)
    return b"".join((head, b"Content-Length: %d\r\n\r\n" % len(body), body))
