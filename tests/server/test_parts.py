"""The server's pure parts: router, authenticator, header controls, error mapping."""

from __future__ import annotations

import pytest

from headway.context import ANONYMOUS, Principal, Served
from headway.errors import (
    AllAttemptsFailed,
    Attempt,
    AuthenticationFailed,
    HeadwayError,
    InvalidRequest,
    MethodNotAllowed,
    NotFound,
    PermissionDenied,
    RateLimited,
    RequestTooLarge,
    UpstreamAuthFailed,
    UpstreamError,
)
from headway.server.auth import MASTER, Authenticator
from headway.server.calls import build_call
from headway.server.errors import error_response, internal_error
from headway.server.http import Request, Response
from headway.server.routes import Router, mount_all
from headway.types import ChatRequest, Message
from headway.wire.openai.ingress import error_json


async def _ok(req: Request) -> Response:
    return Response(b"{}")


async def _other(req: Request) -> Response:
    return Response(b"[]")


def test_router_exact_params_and_rest_of_path() -> None:
    r = Router()
    r.get("/v1/models", _ok)
    r.get("/v1/models/{model:path}", _other)
    r.get("/v1/jobs/{job_id}", _ok, auth="none")
    route, params = r.match("GET", "/v1/models/")
    assert route.handler is _ok and params == {}
    route, params = r.match("GET", "/v1/models/org/model-1")
    assert route.handler is _other and params == {"model": "org/model-1"}
    route, params = r.match("GET", "/v1/jobs/j1")
    assert params == {"job_id": "j1"} and route.auth == "none"
    with pytest.raises(NotFound):
        r.match("GET", "/v1/jobs/j1/extra")
    with pytest.raises(NotFound):
        r.match("GET", "/v2/models")


def test_router_method_not_allowed_lists_allowed_methods() -> None:
    r = Router()
    r.post("/v1/chat/completions", _ok)
    r.add("PUT", "/v1/chat/completions", _ok)
    with pytest.raises(MethodNotAllowed) as exc:
        r.match("GET", "/v1/chat/completions")
    assert exc.value.headers["allow"] == "POST, PUT"
    with pytest.raises(ValueError, match="mounted twice"):
        r.post("/v1/chat/completions/", _other)


def test_mount_all_skips_features_that_are_not_built() -> None:
    missing = ("headway.not_a_feature.routes:mount", "headway.server.not_there:mount")
    assert mount_all(Router(), None, missing) == []  # type: ignore[arg-type]


class Resolver:
    def __init__(self) -> None:
        self.seen: list[str] = []

    async def resolve(self, token: str) -> Principal | None:
        self.seen.append(token)
        return Principal(tenant="acme", key_id="k1") if token == "hw-good" else None


async def test_auth_off_is_anonymous_but_known_keys_still_resolve() -> None:
    resolver = Resolver()
    auth = Authenticator(None, resolver)
    assert not auth.enabled
    assert await auth.authenticate({}) is ANONYMOUS
    assert await auth.authenticate({"authorization": "Bearer hw-bad"}) is ANONYMOUS
    assert (await auth.authenticate({"authorization": "Bearer hw-good"})).tenant == "acme"
    assert (await auth.authenticate_admin({})) is ANONYMOUS  # open while auth is off


async def test_auth_on_master_key_and_resolver_from_extras() -> None:
    resolver = Resolver()
    auth = Authenticator("sk-master", extras={"key_resolver": resolver})
    assert await auth.authenticate({"authorization": "Bearer sk-master"}) is MASTER
    assert await auth.authenticate({"x-api-key": "sk-master"}) is MASTER
    assert await auth.authenticate({"authorization": "bearer sk-master"}) is MASTER
    assert (await auth.authenticate({"x-api-key": "hw-good"})).key_id == "k1"
    with pytest.raises(AuthenticationFailed) as missing:
        await auth.authenticate({"authorization": "Basic abc"})
    assert missing.value.code == "missing_api_key"
    with pytest.raises(AuthenticationFailed) as wrong:
        await auth.authenticate({"authorization": "Bearer sk-master2"})
    assert wrong.value.code == "invalid_api_key" and "sk-master2" not in wrong.value.message
    with pytest.raises(PermissionDenied):
        await auth.authenticate_admin({"x-api-key": "hw-good"})
    assert (await auth.authenticate_admin({"x-api-key": "sk-master"})).is_admin
    assert resolver.seen == ["hw-good", "sk-master2", "hw-good"]


def _req(headers: dict[str, str], principal: Principal = ANONYMOUS) -> Request:
    return Request(
        "POST", "/v1/chat/completions", headers, b"", "req_1", 100.0, principal=principal
    )


CHAT = ChatRequest(model="m", messages=(Message("user", "hi"),), user="body-user")


def test_build_call_reads_the_controls() -> None:
    req = _req(
        {
            "x-headway-task": "extraction",
            "x-headway-cache": "stale-ok",
            "x-headway-priority": "batch",
            "x-headway-deadline-ms": "2500",
            "x-headway-timeout": "10",
            "x-headway-user": "header-user",
        }
    )
    call = build_call(req, CHAT, "openai")
    assert (call.task, call.cache_directive, call.priority) == ("extraction", "stale-ok", "batch")
    assert call.deadline == pytest.approx(102.5) and call.started == 100.0
    assert call.principal.user == "header-user" and call.request_id == "req_1"
    assert call.ingress == "openai" and req.served is call.served
    assert call.request is CHAT and call.headers is req.headers  # built positionally


def test_build_call_defaults_and_key_bound_user_wins() -> None:
    bound = Principal(tenant="t", user="key-user")
    call = build_call(_req({"x-headway-user": "other"}, bound), CHAT, "anthropic")
    assert call.principal is bound and call.deadline is None and call.priority == "interactive"
    assert build_call(_req({}), CHAT, "openai").principal.user == "body-user"


@pytest.mark.parametrize(
    ("header", "value"),
    [
        ("x-headway-cache", "sometimes"),
        ("x-headway-priority", "urgent"),
        ("x-headway-deadline-ms", "-5"),
        ("x-headway-timeout", "soon"),
        ("x-headway-timeout", "nan"),
    ],
)
def test_build_call_rejects_bad_controls(header: str, value: str) -> None:
    with pytest.raises(InvalidRequest) as exc:
        build_call(_req({header: value}), CHAT, "openai")
    assert exc.value.param == header


def _headers(err: HeadwayError, served: Served | None = None) -> dict[bytes, bytes]:
    return dict(error_response(err, error_json, served).headers)


def test_error_response_retry_steering() -> None:
    limited = RateLimited("slow", retry_after=0.2)
    assert _headers(limited) == {b"retry-after": b"1", b"retry-after-ms": b"200"}
    assert error_response(limited, error_json, None).status == 429
    chain = AllAttemptsFailed([Attempt("a", "x", 503)], status=503)
    assert error_response(chain, error_json, None).status == 503
    assert _headers(chain)[b"x-should-retry"] == b"false"
    retried = Served(attempts=2)
    assert _headers(UpstreamError("x"), retried)[b"x-should-retry"] == b"false"
    assert b"x-should-retry" not in _headers(UpstreamError("x"), Served(attempts=1))
    assert _headers(UpstreamAuthFailed("key refused"))[b"x-should-retry"] == b"false"
    assert _headers(internal_error("req_9"))[b"x-should-retry"] == b"false"
    assert _headers(InvalidRequest("bad"))[b"x-should-retry"] == b"false"
    assert _headers(RequestTooLarge("big"))[b"connection"] == b"close"
