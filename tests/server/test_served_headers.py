"""`call.served` -> response headers, and the principal a request acts as."""

from __future__ import annotations

from headway.context import ANONYMOUS, Principal, Served
from headway.server.calls import build_call
from headway.server.headers import served_headers
from headway.server.http import Headers, Request
from headway.types import ChatRequest, Message


def _headers(served: Served) -> Headers:
    out: Headers = []
    served_headers(served, out)
    return out


def test_served_headers_in_order_and_encoded() -> None:
    served = Served(route="fast", deployment="dép-1", fallback_depth=2, cache="miss")
    served.degraded.extend(["shorter", "cheaper"])
    served.ratelimit_headers["x-ratelimit-remaining-requests"] = "99"
    served.headers["x-headway-budget-remaining-usd"] = "1.50"
    want = [
        (b"x-headway-cache", b"miss"),
        (b"x-headway-route", b"fast"),
        (b"x-headway-deployment", "dép-1".encode("latin-1")),
        (b"x-headway-fallback-depth", b"2"),
        (b"x-headway-degraded", b"shorter,cheaper"),
        (b"x-ratelimit-remaining-requests", b"99"),
        (b"x-headway-budget-remaining-usd", b"1.50"),
    ]
    assert _headers(served) == want
    assert _headers(served) == want  # the second time from the caches


def test_served_headers_without_a_deployment_and_deep_fallbacks() -> None:
    assert _headers(Served()) == [(b"x-headway-cache", b"off")]
    deep = Served(route="r", deployment="d", fallback_depth=40)
    assert (b"x-headway-fallback-depth", b"40") in _headers(deep)
    assert (b"x-headway-route", "r—?".encode("latin-1", "replace")) in _headers(Served(route="r—?"))


def _req(principal: Principal, user: str | None) -> Request:
    headers = {} if user is None else {"x-headway-user": user}
    return Request("POST", "/v1/chat/completions", headers, b"", "req_1", 1.0, principal=principal)


CHAT = ChatRequest(model="m", messages=(Message("user", "hi"),))


def test_acting_principal_per_key_and_user() -> None:
    key = Principal(tenant="t", key_id="k", team="blue")
    first = build_call(_req(key, "ann"), CHAT, "openai").principal
    again = build_call(_req(key, "ann"), CHAT, "openai").principal
    other = build_call(_req(key, "bob"), CHAT, "openai").principal
    anon = build_call(_req(ANONYMOUS, "ann"), CHAT, "openai").principal
    assert first == again == Principal(tenant="t", key_id="k", team="blue", user="ann")
    assert other.user == "bob" and other.key_id == "k"
    assert anon == Principal(user="ann")
    # an equal but distinct key object is its own entry, with the same result
    twin = Principal(tenant="t", key_id="k", team="blue")
    assert build_call(_req(twin, "ann"), CHAT, "openai").principal == first
    assert build_call(_req(key, None), CHAT, "openai").principal is key
