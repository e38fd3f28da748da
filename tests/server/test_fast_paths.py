"""The server's fast paths give what the general paths give: request targets, response heads,
header names, and callers known without the key resolver."""

from __future__ import annotations

import random
from urllib.parse import unquote

import httptools
import pytest

from headway.context import ANONYMOUS, Principal
from headway.errors import AuthenticationFailed
from headway.server import native_wire as wire
from headway.server.auth import MASTER, Authenticator
from headway.server.native_wire import header_name as _name


def _parsed(url: bytes) -> tuple[str, bytes]:
    parsed = httptools.parse_url(url)
    path = (parsed.path or b"/").decode("latin-1")
    return (unquote(path) if "%" in path else path), parsed.query or b""


@pytest.mark.parametrize(
    "url",
    [b"/v1/chat/completions", b"/", b"/a?b=1", b"/a%20b", b"/a#frag", b"/x/y/?q=%41", b"/%"],
)
def test_target_fast_path_matches_parsing(url: bytes) -> None:
    assert wire.target(url) == _parsed(url)


def test_encode_head_lines_and_unsafe_values() -> None:
    headers = [(b"content-type", b"application/json"), (b"x-a", b"1"), (b"connection", b"close")]
    head, keep = wire.encode_head(200, headers, b"content-length: 2\r\n", True)
    assert not keep
    assert head == (
        b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\nx-a: 1\r\n"
        b"content-length: 2\r\nconnection: close\r\n\r\n"
    )
    head, keep = wire.encode_head(204, [], b"", True)
    assert keep and head == b"HTTP/1.1 204 No Content\r\n\r\n"
    for bad in (b"a\r\nb", b"a\nb", b"a\rb"):
        with pytest.raises(wire.UnsafeHeader):
            wire.encode_head(200, [(b"x-a", bad)], b"", True)
        with pytest.raises(wire.UnsafeHeader):
            wire.encode_head(200, [(bad, b"1")], wire.CHUNKED, False)


def _head_by_loop(
    status: int, headers: list[tuple[bytes, bytes]], framing: bytes, keep: bool
) -> tuple[bytes, bool] | str:
    """`encode_head` as it was written before its joined-in-C shortcut."""
    parts = [wire.status_line(status)]
    for name, value in headers:
        if name == b"connection":
            keep = keep and value.lower() != b"close"
            continue
        parts.append(b"%b: %b\r\n" % (name, value))
    if not keep:
        framing += wire.CLOSE
    head = b"".join([*parts, framing, b"\r\n"])
    lines = len(parts) + 1 + framing.count(b"\n")
    if head.count(b"\n") != lines or head.count(b"\r") != lines:
        return "unsafe"
    return head, keep


def test_encode_head_gives_what_the_loop_gave() -> None:
    names = [b"content-type", b"connection", b"Connection", b"connection: x", b"xconnection"]
    names += [b"a\r\nconnection", b"", b"x\n"]
    values = [b"close", b"Close", b"keep-alive", b"v", b"", b"a\r\nb", b"x\nconnection: c", b"\r"]
    rnd = random.Random(7)
    for _ in range(3000):
        headers = [(rnd.choice(names), rnd.choice(values)) for _ in range(rnd.randrange(5))]
        framing = rnd.choice([b"", b"content-length: 5\r\n", wire.CHUNKED])
        keep = rnd.random() < 0.5
        try:
            got: tuple[bytes, bool] | str = wire.encode_head(200, headers, framing, keep)
        except wire.UnsafeHeader:
            got = "unsafe"
        assert got == _head_by_loop(200, headers, framing, keep), (headers, framing, keep)


def test_header_names_are_lowercased_whatever_the_table_holds() -> None:
    for raw in (b"Content-Type", b"X-Api-Key", b"X-" + b"L" * 100, "Ä-\xff".encode("latin-1")):
        for _ in range(2):
            assert _name(raw) == raw.decode("latin-1").lower()


class Resolver:
    def __init__(self, answer: Principal | None) -> None:
        self.answer = answer
        self.seen: list[str] = []

    async def resolve(self, token: str) -> Principal | None:
        self.seen.append(token)
        return self.answer


HEADERS: list[dict[str, str]] = [
    {},
    {"authorization": "Bearer sk-master"},
    {"x-api-key": "sk-master"},
    {"authorization": "Bearer hw-key"},
    {"authorization": "Basic abc"},
]


async def _split(auth: Authenticator, headers: dict[str, str]) -> Principal:
    """How the app authenticates: `known`, then `resolve` only for an API key."""
    found = auth.known(headers)
    return found if isinstance(found, Principal) else await auth.resolve(found)


RESOLVERS: list[Resolver | None] = [
    None,
    Resolver(None),
    Resolver(Principal(tenant="acme", key_id="k1")),
]


@pytest.mark.parametrize("master", [None, "sk-master"])
@pytest.mark.parametrize("resolver", RESOLVERS)
async def test_known_then_resolve_is_authenticate(
    master: str | None, resolver: Resolver | None
) -> None:
    for headers in HEADERS:
        auth = Authenticator(master, resolver)
        try:
            expected: Principal | type[Exception] = await auth.authenticate(headers)
        except AuthenticationFailed:
            expected = AuthenticationFailed
        if expected is AuthenticationFailed:
            with pytest.raises(AuthenticationFailed):
                await _split(auth, headers)
        else:
            assert await _split(auth, headers) == expected


def test_known_without_a_resolver_needs_no_coroutine() -> None:
    off = Authenticator(None)
    assert off.known({"authorization": "Bearer anything"}) is ANONYMOUS
    assert off.known({}) is ANONYMOUS
    on = Authenticator("sk-master")
    assert on.known({"x-api-key": "sk-master"}) is MASTER
    assert on.known({"x-api-key": "hw-key"}) == "hw-key"  # resolved (and refused) by `resolve`
