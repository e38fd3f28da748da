"""Anthropic-compatible endpoints, so the Anthropic SDK works against headway unchanged.

- `POST /v1/messages`: JSON, or SSE with `event:` lines when `stream` is set. The request goes
  through the same Gateway as OpenAI-shaped calls, so any route (OpenAI, Azure, Gemini, local
  servers, Anthropic) can serve it.
- `POST /v1/messages/count_tokens`: a local estimate (no offline Claude tokenizer exists,
  deps.md); the limits reconcile with the provider's reported usage anyway.

Keys come as `x-api-key` or `Authorization: Bearer` (the server's authenticator reads both).
Errors use Anthropic's body (`{"type": "error", "error": {...}}`) with the status of the error
tree (400 for a missing `max_tokens`, 429 `rate_limit_error`, 529 `overloaded_error`...). Every
answer carries `request-id`, where the Anthropic SDK looks for it.
"""

from __future__ import annotations

import orjson

from headway import tokens
from headway.errors import HeadwayError, PermissionDenied
from headway.gateway import Gateway
from headway.server.calls import build_call
from headway.server.http import Request, Response, StreamResponse
from headway.server.relay import Relay, first_chunk
from headway.server.routes import Router, ServerContext
from headway.types import ChatRequest
from headway.wire.anthropic.ingress import parse_messages_request
from headway.wire.anthropic.render import (
    StreamEncoder,
    error_body,
    error_frame,
    message_json,
)

#: framing tokens per message and per request, as chat formats add (an estimate, like the count)
_PER_MESSAGE = 3
_PER_REQUEST = 3


def anthropic_error_json(err: HeadwayError) -> bytes:
    return orjson.dumps(error_body(err, err.headers.get("request-id")))


def estimate_tokens(request: ChatRequest) -> int:
    count = tokens.count
    total = _PER_REQUEST
    for message in request.messages:
        total += _PER_MESSAGE + count(message.text())
        for call in message.tool_calls:
            total += count(call.name) + count(call.arguments)
    for tool in request.tools:
        total += count(tool.name) + count(tool.description or "")
        total += count(orjson.dumps(tool.parameters).decode())
    return total


class AnthropicRoutes:
    def __init__(self, gateway: Gateway) -> None:
        self._gateway = gateway

    async def messages(self, req: Request) -> Response | StreamResponse:
        rid = [(b"request-id", req.request_id.encode())]
        try:
            return await self._messages(req, rid)
        except HeadwayError as err:
            err.headers.setdefault("request-id", req.request_id)
            raise

    async def _messages(
        self, req: Request, rid: list[tuple[bytes, bytes]]
    ) -> Response | StreamResponse:
        request = parse_messages_request(req.json_object())
        call = build_call(req, request, "anthropic")
        if not request.stream:
            resp = await self._gateway.chat(call=call)
            body = message_json(resp)
            body["model"] = request.model  # what the caller asked for, as the OpenAI route does
            return Response(orjson.dumps(body), served=call.served, headers=rid)
        stream = self._gateway.stream(call=call)
        first = await first_chunk(stream)
        raw_id = first.id if first is not None and first.id else call.request_id
        encoder = StreamEncoder(message_id=_message_id(raw_id), model=request.model)
        frames = Relay(first, stream, feed=encoder.feed, finish=encoder.finish)
        return StreamResponse(frames, error_frame, served=call.served, headers=rid)

    async def count_tokens(self, req: Request) -> Response:
        request = parse_messages_request(req.json_object(), require_max_tokens=False)
        allowed = req.principal.allowed_models
        if allowed is not None and request.model not in allowed:
            raise PermissionDenied(f"this key may not use model `{request.model}`", param="model")
        body = {"input_tokens": estimate_tokens(request)}
        return Response(orjson.dumps(body), headers=[(b"request-id", req.request_id.encode())])


def _message_id(raw: str) -> str:
    return raw if raw.startswith("msg_") else f"msg_{raw}"


def mount(router: Router, server: ServerContext) -> None:
    routes = AnthropicRoutes(server.gateway)
    router.post("/v1/messages", routes.messages, error_format=anthropic_error_json)
    router.post("/v1/messages/count_tokens", routes.count_tokens, error_format=anthropic_error_json)
