"""RESP2, the Redis wire protocol: command encoding, reply parsing, and the Redis errors.

Replies come back as Python values: bulk strings as `bytes` (None when null), integers as
`int`, simple strings as `bytes`, arrays as `list`. An error reply at the top level is raised
by the client; inside an array (rare: EXEC) it stays a value.

Every error is an `Unavailable` (HTTP 503), because to a caller of the gateway a Redis that is
down and a Redis that refuses a command amount to the same thing: a backend headway needs is not
working. The subclasses let stores tell them apart (limits fail open or closed only on
`RedisUnavailable`; a script missing from the server's cache is answered by sending it).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from headway.errors import Unavailable


class RedisError(Unavailable):
    """Base of every Redis failure."""


class RedisUnavailable(RedisError):
    """Redis cannot be reached, the connection broke, or it stopped answering: nothing is known
    about commands that were in flight."""


class RedisReplyError(RedisError):
    """Redis answered a command with an error reply (`-ERR ...`)."""


class NoScript(RedisReplyError):
    """EVALSHA named a script the server does not have (restart, SCRIPT FLUSH)."""


class Incomplete(Exception):
    """The buffer ends inside a reply: wait for more bytes."""


_CRLF = b"\r\n"


def _arg(value: Any) -> bytes:
    if isinstance(value, bytes):
        return value
    if isinstance(value, str):
        return value.encode()
    if isinstance(value, bool):
        raise TypeError("a Redis argument cannot be a bool (say 0/1 or a string)")
    if isinstance(value, int | float):
        return repr(value).encode()
    if isinstance(value, bytearray | memoryview):
        return bytes(value)
    raise TypeError(f"cannot send {type(value).__name__} to Redis")


def encode(args: Sequence[Any]) -> bytes:
    """One command as a RESP array of bulk strings."""
    # str and bytes are nearly every argument: converted inline, without a call
    data = [v.encode() if type(v) is str else v if type(v) is bytes else _arg(v) for v in args]
    return b"*%d\r\n" % len(data) + b"".join([b"$%d\r\n%b\r\n" % (len(d), d) for d in data])


def encode_tail(*parts: Sequence[Any]) -> bytes:
    """The values of `parts` as bulk strings, for a command whose head (`*N` and its first
    values) the caller encoded once: the same bytes `encode` makes of them."""
    data = [
        v.encode() if type(v) is str else v if type(v) is bytes else _arg(v)
        for part in parts
        for v in part
    ]
    return b"".join([b"$%d\r\n%b\r\n" % (len(d), d) for d in data])


def error_of(message: str) -> RedisReplyError:
    if message.startswith("NOSCRIPT"):
        return NoScript(message)
    return RedisReplyError(f"redis answered: {message}")


def parse(buf: bytes, pos: int) -> tuple[Any, int]:
    """The reply that starts at `pos`, and where the next one starts. Raises `Incomplete` when
    `buf` ends first, and ValueError when the bytes are not RESP (the stream is then lost)."""
    end = buf.find(_CRLF, pos)
    if end < 0:
        raise Incomplete
    kind = buf[pos]
    if kind == 36:  # $ bulk string
        size = int(buf[pos + 1 : end])
        if size < 0:
            return None, end + 2
        stop = end + 2 + size
        if stop + 2 > len(buf):
            raise Incomplete
        return buf[end + 2 : stop], stop + 2
    if kind == 42:  # * array
        count = int(buf[pos + 1 : end])
        if count < 0:
            return None, end + 2
        items: list[Any] = []
        at = end + 2
        size = len(buf)
        for _ in range(count):
            # bulk strings and integers (every script result headway reads) without recursion
            end = buf.find(_CRLF, at)
            if end < 0:
                raise Incomplete
            kind = buf[at]
            if kind == 36:
                n = int(buf[at + 1 : end])
                if n < 0:
                    items.append(None)
                    at = end + 2
                    continue
                stop = end + 2 + n
                if stop + 2 > size:
                    raise Incomplete
                items.append(buf[end + 2 : stop])
                at = stop + 2
            elif kind == 58:
                items.append(int(buf[at + 1 : end]))
                at = end + 2
            else:
                item, at = parse(buf, at)
                items.append(item)
        return items, at
    if kind == 58:  # : integer
        return int(buf[pos + 1 : end]), end + 2
    if kind == 43:  # + simple string
        return buf[pos + 1 : end], end + 2
    if kind == 45:  # - error
        return error_of(buf[pos + 1 : end].decode("utf-8", "replace")), end + 2
    raise ValueError(f"not a RESP reply: {buf[pos : pos + 20]!r}")
