"""The Anthropic flavour of the fake provider (providers.md 4 and 11).

Endpoints: `POST /v1/messages` (JSON, or SSE with `event:` names and pings), `POST
/v1/messages/count_tokens`, `GET /v1/models`, `GET /v1/models/{id}`. Every response carries
`request-id` and the `anthropic-ratelimit-*` headers with RFC 3339 resets (the sim has one token
bucket; it is reported for `tokens`, `input-tokens` and `output-tokens` alike). Requests without
`anthropic-version` or without `max_tokens` are refused with 400 as the real API does; keys are
read from `x-api-key` (or `Authorization: Bearer`). Errors use Anthropic's body and types
(429 `rate_limit_error`, 529 `overloaded_error`...); mid-stream failures are `event: error`.
"""

from __future__ import annotations

import datetime as dt
import json
import os
from collections.abc import Iterable, Mapping
from itertools import count
from typing import TYPE_CHECKING, Any

from aiohttp import web

from headway.errors import (
    AuthenticationFailed,
    HeadwayError,
    InvalidRequest,
    NotFound,
    RequestTooLarge,
)
from headway.providers.fake import anthropic_body as wire
from headway.providers.sim.behaviour import StreamFault

if TYPE_CHECKING:
    from headway.providers.fake.server import FakeServer

MAX_BODY_BYTES = 32 * 1024 * 1024
_REQUEST_ID = web.RequestKey("anthropic_request_id", str)


def _rfc3339(epoch: float) -> str:
    return dt.datetime.fromtimestamp(epoch, dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


class AnthropicFlavour:
    name = "anthropic"
    base_path = ""
    default_models = (
        "claude-sonnet-4-6",
        "claude-opus-4-6",
        "claude-haiku-4-5-20251001",
    )

    def __init__(self) -> None:
        self._ids = count(1)
        self._prefix = os.urandom(6).hex()

    def _new_id(self, prefix: str) -> str:
        return f"{prefix}{self._prefix}{next(self._ids):08d}"

    # ---- Flavour protocol ----------------------------------------------------------------

    def routes(self, server: FakeServer) -> Iterable[web.RouteDef]:
        async def messages(request: web.Request) -> web.StreamResponse:
            return await self._messages(server, request)

        async def count_tokens(request: web.Request) -> web.Response:
            chat = wire.parse_request(await self._body(request), count_only=True)
            server.check_model(chat.model)
            return self._json(
                server, request, {"input_tokens": server.engine.plan(chat).input_tokens}
            )

        async def models(request: web.Request) -> web.Response:
            data = [self._model(m) for m in server.models]
            page = {
                "data": data,
                "has_more": False,
                "first_id": data[0]["id"] if data else None,
                "last_id": data[-1]["id"] if data else None,
            }
            return self._json(server, request, page)

        async def model(request: web.Request) -> web.Response:
            model_id = request.match_info["model_id"]
            if model_id not in server.models:
                raise NotFound(f"model: {model_id}", upstream_status=404)
            return self._json(server, request, self._model(model_id))

        return [
            web.post("/v1/messages", messages, name="messages"),
            web.post("/v1/messages/count_tokens", count_tokens, name="count_tokens"),
            web.get("/v1/models", models, name="models"),
            web.get("/v1/models/{model_id}", model, name="model"),
        ]

    def authenticate(self, request: web.Request, api_key: str) -> HeadwayError | None:
        given = request.headers.get("x-api-key")
        if given is None:
            auth = request.headers.get("authorization", "")
            given = auth[7:] if auth.lower().startswith("bearer ") else None
        if given == api_key:
            return None
        return AuthenticationFailed("invalid x-api-key", upstream_status=401)

    def headers(self, server: FakeServer, request: web.Request) -> dict[str, str]:
        rid = request.get(_REQUEST_ID)
        if rid is None:
            rid = request[_REQUEST_ID] = self._new_id("req_")
        out = {"request-id": rid, "anthropic-organization-id": "org-fake"}
        state = server.engine.limit_state()
        now = server.clock.time()
        if state.limit_requests is not None:
            out["anthropic-ratelimit-requests-limit"] = str(state.limit_requests)
            out["anthropic-ratelimit-requests-remaining"] = str(state.remaining_requests)
            out["anthropic-ratelimit-requests-reset"] = _rfc3339(now + state.reset_requests_s)
        if state.limit_tokens is not None:
            reset = _rfc3339(now + state.reset_tokens_s)
            # Anthropic rounds token remainders to the nearest thousand (providers.md 4.8)
            remaining = round((state.remaining_tokens or 0) / 1000) * 1000
            for kind in ("tokens", "input-tokens", "output-tokens"):
                out[f"anthropic-ratelimit-{kind}-limit"] = str(state.limit_tokens)
                out[f"anthropic-ratelimit-{kind}-remaining"] = str(remaining)
                out[f"anthropic-ratelimit-{kind}-reset"] = reset
        return out

    def error_response(
        self, server: FakeServer, err: HeadwayError, status: int, headers: Mapping[str, str]
    ) -> web.Response:
        body = {
            "type": "error",
            "error": {"type": wire.error_type(status), "message": err.message},
            "request_id": headers.get("request-id"),
        }
        return web.json_response(body, status=status, headers=dict(headers), dumps=_dumps)

    # ---- handlers ------------------------------------------------------------------------

    @staticmethod
    async def _body(request: web.Request) -> Any:
        if not request.headers.get("anthropic-version"):
            raise InvalidRequest("anthropic-version: header is required", upstream_status=400)
        if (request.content_length or 0) > MAX_BODY_BYTES:
            raise RequestTooLarge(
                "Request exceeds the maximum allowed number of bytes.", upstream_status=413
            )
        try:
            return json.loads(await request.read())
        except ValueError:
            raise InvalidRequest(
                "There was an error parsing the body of your request.", upstream_status=400
            ) from None

    def _json(self, server: FakeServer, request: web.Request, body: Any) -> web.Response:
        return web.json_response(body, headers=self.headers(server, request), dumps=_dumps)

    @staticmethod
    def _model(model_id: str) -> dict[str, Any]:
        return {
            "type": "model",
            "id": model_id,
            "display_name": model_id,
            "created_at": "2026-02-17T00:00:00Z",
        }

    async def _messages(self, server: FakeServer, request: web.Request) -> web.StreamResponse:
        chat = wire.parse_request(await self._body(request))
        server.check_model(chat.model)
        server.count_call(chat.stream)
        msg_id = self._new_id("msg_")
        if not chat.stream:
            reply = await server.engine.chat(chat, model=chat.model)
            return self._json(server, request, wire.message(reply, msg_id))

        items = server.engine.stream(chat, model=chat.model)
        try:
            item = await anext(items)  # admission errors surface here, before any header
            writer = wire.EventWriter(msg_id, chat.model, server.engine.plan(chat).input_tokens)
            resp = await server.open_stream(request)
            await resp.write(writer.start())
            emitted = 0
            while True:
                if isinstance(item, StreamFault):
                    return await self._fault(server, request, resp, item)
                await resp.write(writer.chunk(item))
                if item.finish_reason is not None:
                    out = item.usage.output_tokens if item.usage else emitted
                    await resp.write(writer.finish(item.finish_reason, out))
                    return resp
                emitted += 1
                item = await anext(items)
        finally:
            await items.aclose()

    async def _fault(
        self, server: FakeServer, request: web.Request, resp: web.StreamResponse, fault: StreamFault
    ) -> web.StreamResponse:
        if fault.kind == "malformed":
            await resp.write(b'event: content_block_delta\ndata: {"type": "content_block_del\n\n')
            return await server.cut(request, resp)
        if fault.kind == "error":
            status = fault.error.upstream_status or 500
            body = {
                "type": "error",
                "error": {"type": wire.error_type(status), "message": fault.error.message},
            }
            await resp.write(wire.sse("error", body))
            await resp.write_eof()
            return resp
        return await server.cut(request, resp)


def _dumps(obj: Any) -> str:
    return json.dumps(obj, separators=(",", ":"))
