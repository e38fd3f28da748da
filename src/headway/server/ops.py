"""`/health` (liveness) and `/ready` (readiness). Neither needs credentials.

`/health` never touches a backend: it answers as long as the process serves HTTP, so an
orchestrator restarts only a wedged process. `/ready` says whether to send traffic here: not
before start-up finished or after shutdown began, nor while any mounted readiness check (a
Redis ping, a ledger connection) reports a problem.
"""

from __future__ import annotations

from headway.server.http import Request, Response, json_response
from headway.server.routes import Router, ServerContext

_HEALTHY = Response(b'{"status":"ok"}')


def mount(router: Router, server: ServerContext) -> None:
    async def health(req: Request) -> Response:
        return Response(_HEALTHY.body)

    async def ready(req: Request) -> Response:
        if not server.accepting:
            return json_response({"status": "unavailable", "reasons": ["not serving"]}, 503)
        reasons: list[str] = []
        for check in server.readiness:
            try:
                reason = await check()
            except Exception as exc:  # noqa: BLE001 - a failing check means "not ready", not a 500
                reason = f"{type(exc).__name__}: {exc}"
            if reason is not None:
                reasons.append(reason)
        if reasons:
            return json_response({"status": "unavailable", "reasons": reasons}, 503)
        return json_response({"status": "ready"})

    router.get("/health", health, auth="none")
    router.get("/ready", ready, auth="none")
