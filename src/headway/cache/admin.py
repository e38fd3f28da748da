"""Admin purge of cached answers, mounted under /admin by the server (`auth="admin"`).

    DELETE /admin/cache?tenant=acme           every entry of a tenant (exact and semantic)
    DELETE /admin/cache?model=default         every entry of a route alias or model
    DELETE /admin/cache?tenant=acme&model=m   both conditions
    DELETE /admin/cache?all=true              everything

Answers `{"purged": <exact entries removed>}`. Without caching configured it answers 404.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from headway.cache.factory import cache_of
from headway.errors import InvalidRequest, NotFound

if TYPE_CHECKING:
    from headway.server.http import Request, Response
    from headway.server.routes import Router, ServerContext


async def purge(services: object, *, tenant: str | None = None, model: str | None = None) -> int:
    """Purge a gateway's cache (`gateway.services`); the library-level form of the endpoint."""
    from headway.services import Services

    assert isinstance(services, Services)
    stage = cache_of(services)
    if stage is None:
        raise NotFound("caching is not enabled")
    return await stage.purge(tenant=tenant, model=model)


def mount(router: Router, server: ServerContext) -> None:
    from headway.server.http import json_response

    async def purge_route(req: Request) -> Response:
        q = req.query
        tenant, model = q.get("tenant") or None, q.get("model") or None
        if tenant is None and model is None and q.get("all") != "true":
            raise InvalidRequest("give `tenant`, `model`, or `all=true`", param="tenant")
        count = await purge(server.gateway.services, tenant=tenant, model=model)
        return json_response({"purged": count, "tenant": tenant, "model": model})

    router.delete("/admin/cache", purge_route, auth="admin")
