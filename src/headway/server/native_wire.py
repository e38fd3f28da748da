"""HTTP/1.1 bytes for the native server: status lines, response heads, chunk framing, the answers
the server gives on its own (malformed requests), and the request target's path and query.

Everything that can be is built once at import: a response head is one `b"".join` of prebuilt
pieces and the app's header pairs.
"""

from __future__ import annotations

from http import HTTPStatus
from urllib.parse import unquote

import httptools

from headway.server.http import Headers

_STATUS: dict[int, bytes] = {
    s.value: b"HTTP/1.1 %d %s\r\n" % (s.value, s.phrase.encode("latin-1")) for s in HTTPStatus
}

CONTINUE = b"HTTP/1.1 100 Continue\r\n\r\n"
CHUNKED = b"transfer-encoding: chunked\r\n"
CLOSE = b"connection: close\r\n"
#: the last chunk of a chunked body (no trailers)
LAST_CHUNK = b"0\r\n\r\n"


class UnsafeHeader(ValueError):
    """A response header name or value holds CR or LF: sending it would split the response."""


def status_line(status: int) -> bytes:
    line = _STATUS.get(status)
    return line if line is not None else b"HTTP/1.1 %d \r\n" % status


#: `name: value` of one header pair, in C (no bytecode per header)
_header_line = b": ".join


def encode_head(
    status: int, headers: Headers, framing: bytes, keep_alive: bool
) -> tuple[bytes, bool]:
    """The response head (status line, headers, `framing`, blank line), and whether the
    connection stays open: not when `keep_alive` is False, nor when the app's headers say
    `connection: close` (other `connection` values are the server's business and dropped)."""
    # Every answer passes here: its header lines are joined in C rather than formatted one by
    # one in a Python loop. A `connection` header (rare) takes that loop instead. `find`, not
    # `in`: on Python 3.11 a bytes operand of `in` is first tried as an integer, which builds
    # and discards a TypeError (~3k instructions).
    block = b"\r\n".join(map(_header_line, headers))
    if block.startswith(b"connection: ") or block.find(b"\nconnection: ") != -1:
        return _encode_head_loop(status, headers, framing, keep_alive)
    if not keep_alive:
        framing += CLOSE
    line = _STATUS.get(status) or status_line(status)
    head = b"".join((line, block, b"\r\n" if headers else b"", framing, b"\r\n"))
    # One scan instead of a check per header: every line break must be one written here (the
    # status line, each header, the framing lines, the blank line). Counting an int, not
    # b"\n": a bytes argument costs a buffer export per call.
    lines = len(headers) + 2 + framing.count(10)
    if head.count(10) != lines or head.count(13) != lines:
        raise UnsafeHeader("a response header contains a line break")
    return head, keep_alive


def _encode_head_loop(
    status: int, headers: Headers, framing: bytes, keep_alive: bool
) -> tuple[bytes, bool]:
    """`encode_head` header by header, for heads with a `connection` header."""
    parts = [status_line(status)]
    for name, value in headers:
        if name == b"connection":
            if value.lower() == b"close":
                keep_alive = False
            continue
        parts.append(b"%b: %b\r\n" % (name, value))
    if not keep_alive:
        framing += CLOSE
    parts.append(framing)
    parts.append(b"\r\n")
    head = b"".join(parts)
    lines = len(parts) - 1 + framing.count(10)
    if head.count(10) != lines or head.count(13) != lines:
        raise UnsafeHeader("a response header contains a line break")
    return head, keep_alive


def chunk(data: bytes) -> bytes:
    """One chunk of a chunked body (never empty: an empty chunk would end the body)."""
    return b"%x\r\n%b\r\n" % (len(data), data)


def plain(status: int, text: str) -> bytes:
    """A complete text answer the server gives by itself, closing the connection."""
    body = text.encode()
    return (
        status_line(status)
        + b"content-type: text/plain; charset=utf-8\r\ncontent-length: %d\r\n" % len(body)
        + CLOSE
        + b"\r\n"
        + body
    )


def target(url: bytes) -> tuple[str, bytes]:
    """The path (percent-decoded, as ASGI servers give it) and query string of a request target."""
    # the common case, without parsing; ints, not b"?": a bytes operand costs a buffer export
    if url.startswith(b"/") and 63 not in url and 37 not in url and 35 not in url:
        return url.decode("latin-1"), b""
    parsed = httptools.parse_url(url)
    raw: bytes = parsed.path or b"/"
    path = raw.decode("latin-1")
    if "%" in path:
        path = unquote(path)  # UTF-8, as uvicorn decodes it
    return path, parsed.query or b""


#: raw header name -> lower-cased text, learnt as they arrive: clients send the same few names
#: on every request, and a dict hit is cheaper than decoding and lower-casing each
NAMES: dict[bytes, str] = {}
#: names of this length or more are decoded each time (the table only holds the usual ones)
_NAME_MAX_LEN = 64
_NAMES_MAX = 512
METHODS: dict[bytes, str] = {}


def header_name(raw: bytes) -> str:
    name = raw.decode("latin-1").lower()
    if len(raw) < _NAME_MAX_LEN and len(NAMES) < _NAMES_MAX:
        NAMES[raw] = name
    return name


def method_name(raw: bytes) -> str:
    method = METHODS.get(raw)
    if method is None:
        method = raw.decode("ascii")
        if len(METHODS) < _NAMES_MAX:
            METHODS[raw] = method
    return method
