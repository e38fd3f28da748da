"""The admin API: API keys and spend, under `/admin`, for the master key (or an admin key).

    POST   /admin/keys            create a key; the answer holds the plaintext `key`, shown once
    GET    /admin/keys            list keys (?tenant=, ?include_revoked=true)
    GET    /admin/keys/{key_id}   one key
    DELETE /admin/keys/{key_id}   revoke a key (every replica stops accepting it at once)
    GET    /admin/usage           spend: ?group_by=key|user|team|model|day|tenant|route
                                  &since=&until= (dates, ISO times or epoch seconds)
                                  &tenant=&key=&user=&team=&model=&limit=

Other admin endpoints (budgets, breakers, config reload, cache purge) live with their features:
each feature's own `mount` adds `/admin/<thing>` routes with `auth="admin"` and is listed in
`headway.server.routes.MOUNTS`. Errors use the OpenAI shape: 401 without credentials, 403 for a
non-admin key, 400 for bad input, 404 for an unknown key.
"""

from __future__ import annotations

from typing import Any

from headway.errors import InvalidRequest
from headway.keys.install import Keys
from headway.keys.install import install as install_keys
from headway.ledger.listener import install as install_ledger
from headway.ledger.listener import open_ledger
from headway.ledger.record import UsageRow, build_query
from headway.ledger.store import Ledger
from headway.ledger.writer import LedgerWriter
from headway.server.http import Request, Response, json_response
from headway.server.routes import Router, ServerContext
from headway.services import Services

_TRUE = {"true": True, "1": True, "yes": True, "false": False, "0": False, "no": False}


def _flag(req: Request, name: str) -> bool:
    raw = req.query.get(name)
    if raw is None:
        return False
    value = _TRUE.get(raw.lower())
    if value is None:
        raise InvalidRequest(f"`{name}` must be true or false", param=name)
    return value


def _totals(rows: list[UsageRow]) -> dict[str, Any]:
    nusd = sum(r.cost_nusd for r in rows)
    tokens_in = sum(r.input_tokens for r in rows)
    tokens_out = sum(r.output_tokens for r in rows)
    return {
        "requests": sum(r.requests for r in rows),
        "input_tokens": tokens_in,
        "output_tokens": tokens_out,
        "cached_input_tokens": sum(r.cached_input_tokens for r in rows),
        "total_tokens": tokens_in + tokens_out,
        "cost_usd": round(nusd / 1e9, 9),
    }


class AdminRoutes:
    def __init__(self, server: ServerContext) -> None:
        gateway = server.gateway
        self._services: Services = gateway.services
        self.keys: Keys = install_keys(gateway.runtime, self._services)
        self.writer: LedgerWriter | None = install_ledger(gateway.runtime, self._services)
        self._reader: Ledger | None = None
        self._runtime = gateway.runtime

    async def start(self) -> None:
        # subscribe to invalidations before serving, so no revocation slips past
        await self.keys.resolver.start()
        if self.writer is not None:
            await self.writer.start()

    def _ledger(self) -> Ledger:
        if self.writer is not None:
            return self.writer.ledger
        if self._reader is None:  # recording is off, but past records can still be read
            self._reader = open_ledger(self._runtime.file)
            self._services.extras["ledger_reader"] = self._reader
        return self._reader

    # ---- keys ---------------------------------------------------------------------------------

    async def create_key(self, req: Request) -> Response:
        key, plaintext = await self.keys.service.create(req.json_object())
        body = key.public(self.keys.service.now())
        body["key"] = plaintext
        return json_response(body, status=201)

    async def list_keys(self, req: Request) -> Response:
        query = req.query
        keys = await self.keys.service.list(
            tenant=query.get("tenant") or None, include_revoked=_flag(req, "include_revoked")
        )
        now = self.keys.service.now()
        return json_response({"object": "list", "data": [k.public(now) for k in keys]})

    async def get_key(self, req: Request) -> Response:
        key = await self.keys.service.get(req.path_params["key_id"])
        return json_response(key.public(self.keys.service.now()))

    async def revoke_key(self, req: Request) -> Response:
        key = await self.keys.service.revoke(req.path_params["key_id"])
        body = key.public(self.keys.service.now())
        body["deleted"] = True
        return json_response(body)

    # ---- usage --------------------------------------------------------------------------------

    async def usage(self, req: Request) -> Response:
        q = build_query(req.query)
        if self.writer is not None:
            await self.writer.flush()  # this replica's queued records count too
        rows = await self._ledger().query(q)
        return json_response(
            {
                "object": "list",
                "group_by": q.group_by,
                "since": q.since,
                "until": q.until,
                "data": [r.public(q.group_by) for r in rows],
                "total": _totals(rows),
            }
        )


def mount(router: Router, server: ServerContext) -> None:
    admin = AdminRoutes(server)
    router.post("/admin/keys", admin.create_key, auth="admin")
    router.get("/admin/keys", admin.list_keys, auth="admin")
    router.get("/admin/keys/{key_id}", admin.get_key, auth="admin")
    router.delete("/admin/keys/{key_id}", admin.revoke_key, auth="admin")
    router.get("/admin/usage", admin.usage, auth="admin")
    server.on_startup.append(admin.start)
