"""The Azure OpenAI flavour of the fake provider (providers.md 3 and 11): the OpenAI fake's
handlers behind Azure's classic data plane.

- Paths: `/openai/deployments/{deployment}/chat/completions` and `.../embeddings`, each with a
  mandatory `api-version` query parameter (Azure answers 404 without it); `GET /openai/models`.
  Clients send the deployment name as `model` in the body too (the SDK and headway both do).
- Auth: the `api-key` header (or `Authorization: Bearer`, as with an Entra token).
- Errors: OpenAI's body, except 429, which Azure sends as `{"error": {"code": "429", "message":
  "... Please retry after N seconds. ..."}}` (a string code, no type) with `retry-after`.
"""

from __future__ import annotations

import math
from collections.abc import Awaitable, Callable, Iterable, Mapping
from typing import TYPE_CHECKING

import orjson
from aiohttp import web

from headway.errors import AuthenticationFailed, HeadwayError, NotFound
from headway.providers.fake.openai import OpenAIFlavour

if TYPE_CHECKING:
    from headway.providers.fake.server import FakeServer

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]

_PATHS = {
    "/v1/chat/completions": "/openai/deployments/{deployment}/chat/completions",
    "/v1/embeddings": "/openai/deployments/{deployment}/embeddings",
    "/v1/models": "/openai/models",
}


def _versioned(handler: Handler) -> Handler:
    async def wrapped(request: web.Request) -> web.StreamResponse:
        if not request.query.get("api-version"):
            raise NotFound("Resource not found", upstream_status=404)
        return await handler(request)

    return wrapped


class AzureFlavour(OpenAIFlavour):
    name = "azure"
    base_path = "/openai"

    def routes(self, server: FakeServer) -> Iterable[web.RouteDef]:
        out: list[web.RouteDef] = []
        for route in super().routes(server):
            path = _PATHS.get(route.path)
            if path is None:
                continue
            handler = _versioned(route.handler)
            out.append(web.RouteDef(route.method, path, handler, dict(route.kwargs)))
        return out

    def authenticate(self, request: web.Request, api_key: str) -> HeadwayError | None:
        given = request.headers.get("api-key")
        if given is None:
            auth = request.headers.get("Authorization", "")
            given = auth[7:].strip() if auth.startswith("Bearer ") else None
        if given == api_key:
            return None
        return AuthenticationFailed(
            "Access denied due to invalid subscription key or wrong API endpoint. Make sure to "
            "provide a valid key for an active subscription and use a correct regional API "
            "endpoint for your resource.",
            upstream_status=401,
        )

    def headers(self, server: FakeServer, request: web.Request) -> dict[str, str]:
        out = super().headers(server, request)
        out["apim-request-id"] = out["x-request-id"]
        return out

    def error_response(
        self, server: FakeServer, err: HeadwayError, status: int, headers: Mapping[str, str]
    ) -> web.Response:
        if status != 429:
            return super().error_response(server, err, status, headers)
        delay = err.retry_after
        if delay is None:  # an injected error: the server's configured hint, if any
            delay = float(headers.get("retry-after", 1))
        wait = max(1, math.ceil(delay))
        message = (
            "Requests to the ChatCompletions_Create Operation under Azure OpenAI API version "
            "2024-10-21 have exceeded token rate limit of your current OpenAI S0 pricing tier. "
            f"Please retry after {wait} seconds. Please go here: https://aka.ms/oai/quotaincrease "
            "if you would like to further increase the default rate limit."
        )
        out = dict(headers)
        out["retry-after"] = str(wait)
        body = orjson.dumps({"error": {"code": "429", "message": message}})
        return web.Response(status=429, body=body, headers=out, content_type="application/json")
