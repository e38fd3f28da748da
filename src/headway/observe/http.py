"""`/metrics`: the gateway's Prometheus metrics, in the text exposition format.

No credentials (as Prometheus scrapes usually run); 404 when `observe.metrics` is off. Rendering
happens per scrape, off every call's response path.
"""

from __future__ import annotations

from prometheus_client import CONTENT_TYPE_LATEST

from headway.errors import NotFound
from headway.observe.metrics import Metrics
from headway.server.http import Request, Response
from headway.server.routes import Router, ServerContext

_CONTENT_TYPE = CONTENT_TYPE_LATEST.encode()


def mount(router: Router, server: ServerContext) -> None:
    extras = server.gateway.services.extras

    async def metrics(req: Request) -> Response:
        found = extras.get("metrics")
        if not isinstance(found, Metrics):
            raise NotFound("metrics are off (observe.metrics: false)")
        return Response(found.render(), content_type=_CONTENT_TYPE)

    router.get("/metrics", metrics, auth="none")
