"""The router, and how features mount their endpoints.

Contract for a module that adds endpoints (Anthropic ingress, admin, metrics, dashboard, jobs):

    # headway/<feature>/routes.py
    from headway.server.routes import Router, ServerContext

    def mount(router: Router, server: ServerContext) -> None:
        async def get_job(req: Request) -> Response: ...
        router.get("/v1/jobs/{job_id}", get_job)                  # auth="client" by default
        router.get("/metrics", metrics, auth="none")
        router.post("/admin/reload", reload, auth="admin")
        router.post("/v1/messages", messages, error_format=anthropic_error_json)

and is listed in `MOUNTS` ("module:mount"); a listed module that is not installed is skipped,
as `gateway.STAGE_FACTORIES` does for stages. `mount` runs once per worker at app creation;
handlers must not keep per-request state in closures.

- Paths: exact (`/health`) or with `{name}` segments (one segment) and `{name:path}` (the rest
  of the path, slashes included). Params arrive in `req.path_params`. A trailing slash is
  ignored. Exact paths are matched by one dict lookup; patterns are tried in mount order.
- `auth`: "none" (no credentials read), "client" (`req.principal` is the caller's key; 401 when
  auth is on and the key is missing or wrong), "admin" (the principal must be an admin: the
  master key or an admin key; open only while auth is off, which the banner says loudly).
- `error_format(err) -> bytes`: the body of an error answer on this route (OpenAI shape unless
  told otherwise). Status, `x-request-id`, `retry-after` and `x-should-retry` are added by the
  one error mapping in `headway.server.errors` whatever the shape.
- Handlers get a `Request` and return a `Response` (`json_response(...)`) or a `StreamResponse`
  (an async iterator of bytes plus `on_error` for an in-band error frame); they raise
  `HeadwayError`s for failures. Set `req.served = call.served` once a `Call` exists (use
  `headway.server.calls.build_call`) and pass `served=` in the response, so the `x-headway-*`
  headers and the overhead are reported.
- `ServerContext` offers the gateway, the authenticator, startup/shutdown hooks and readiness
  checks (`/ready` fails while any check returns a reason).
"""

from __future__ import annotations

import importlib
import re
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Literal

from headway.errors import HeadwayError, MethodNotAllowed, NotFound
from headway.server.http import Answer, Request
from headway.wire.openai.ingress_encode import error_json

if TYPE_CHECKING:
    from headway.gateway import Gateway
    from headway.server.auth import Authenticator

#: "module:mount" entries, imported in order when the app is created; missing modules are skipped
MOUNTS: tuple[str, ...] = (
    "headway.server.ops:mount",  # /health, /ready
    "headway.server.openai_routes:mount",  # /v1/chat/completions, /v1/embeddings, /v1/models
    "headway.wire.anthropic.routes:mount",  # /v1/messages
    "headway.server.admin:mount",  # /admin/*
    "headway.observe.http:mount",  # /metrics, /dashboard
    "headway.degrade.routes:mount",
    "headway.cache.admin:mount",  # DELETE /admin/cache
)

Handler = Callable[[Request], Awaitable[Answer]]
Auth = Literal["none", "client", "admin"]
ErrorFormat = Callable[[HeadwayError], bytes]
Hook = Callable[[], Awaitable[None]]
#: returns None when ready, else a short reason
ReadinessCheck = Callable[[], Awaitable[str | None]]


@dataclass(slots=True, frozen=True)
class Route:
    method: str
    path: str
    handler: Handler
    auth: Auth = "client"
    error_format: ErrorFormat = error_json


@dataclass(slots=True)
class ServerContext:
    """What a mount may use. One per app (so one per worker process)."""

    gateway: Gateway
    authenticator: Authenticator
    max_body_bytes: int
    on_startup: list[Hook] = field(default_factory=list)
    on_shutdown: list[Hook] = field(default_factory=list)
    readiness: list[ReadinessCheck] = field(default_factory=list)
    #: True between start-up and shutdown; `/ready` answers 503 outside that window
    accepting: bool = False


_PARAM = re.compile(r"\{([A-Za-z_][A-Za-z0-9_]*)(:path)?\}")


def _compile(path: str) -> re.Pattern[str]:
    out, pos = "", 0
    for m in _PARAM.finditer(path):
        out += re.escape(path[pos : m.start()])
        out += f"(?P<{m.group(1)}>.+)" if m.group(2) else f"(?P<{m.group(1)}>[^/]+)"
        pos = m.end()
    return re.compile(out + re.escape(path[pos:]) + "$")


class Router:
    def __init__(self) -> None:
        self._exact: dict[str, dict[str, Route]] = {}
        self._patterns: list[tuple[re.Pattern[str], dict[str, Route]]] = []
        self._pattern_index: dict[str, dict[str, Route]] = {}

    def add(
        self,
        method: str,
        path: str,
        handler: Handler,
        *,
        auth: Auth = "client",
        error_format: ErrorFormat = error_json,
    ) -> None:
        path = _normalise(path)
        route = Route(method.upper(), path, handler, auth, error_format)
        if _PARAM.search(path):
            methods = self._pattern_index.get(path)
            if methods is None:
                methods = self._pattern_index[path] = {}
                self._patterns.append((_compile(path), methods))
        else:
            methods = self._exact.setdefault(path, {})
        if route.method in methods:
            raise ValueError(f"route {route.method} {path} is mounted twice")
        methods[route.method] = route

    def get(
        self,
        path: str,
        handler: Handler,
        *,
        auth: Auth = "client",
        error_format: ErrorFormat = error_json,
    ) -> None:
        self.add("GET", path, handler, auth=auth, error_format=error_format)

    def post(
        self,
        path: str,
        handler: Handler,
        *,
        auth: Auth = "client",
        error_format: ErrorFormat = error_json,
    ) -> None:
        self.add("POST", path, handler, auth=auth, error_format=error_format)

    def delete(
        self,
        path: str,
        handler: Handler,
        *,
        auth: Auth = "client",
        error_format: ErrorFormat = error_json,
    ) -> None:
        self.add("DELETE", path, handler, auth=auth, error_format=error_format)

    def match(self, method: str, path: str) -> tuple[Route, dict[str, str]]:
        """The route for a request, or NotFound / MethodNotAllowed (with an `allow` header)."""
        methods = self._exact.get(path)  # the usual request: an exact path, no trailing slash
        if methods is not None:
            route = methods.get(method)
            if route is not None:
                return route, {}
        path = _normalise(path)
        params: dict[str, str] = {}
        methods = self._exact.get(path)
        if methods is None:
            for pattern, candidate in self._patterns:
                m = pattern.match(path)
                if m is not None:
                    methods, params = candidate, m.groupdict()
                    break
            else:
                raise NotFound(f"Invalid URL ({method} {path})", code="unknown_url")
        route = methods.get(method)
        if route is None:
            err = MethodNotAllowed(f"Method {method} is not allowed for {path}")
            err.headers["allow"] = ", ".join(sorted(methods))
            raise err
        return route, params

    def routes(self) -> list[Route]:
        exact = [r for methods in self._exact.values() for r in methods.values()]
        return exact + [r for _, methods in self._patterns for r in methods.values()]


def _normalise(path: str) -> str:
    return path.rstrip("/") if len(path) > 1 and path.endswith("/") else path


def mount_all(router: Router, server: ServerContext, mounts: Sequence[str] = MOUNTS) -> list[str]:
    """Run each listed `mount`; returns the modules that were mounted."""
    mounted: list[str] = []
    for target in mounts:
        module_name, attr = target.split(":")
        try:
            module = importlib.import_module(module_name)
        except ModuleNotFoundError as exc:
            if exc.name and (module_name + ".").startswith(exc.name + "."):
                continue  # that feature is not part of this build
            raise
        mount: Callable[[Router, ServerContext], None] = getattr(module, attr)
        mount(router, server)
        mounted.append(module_name)
    return mounted
