"""OpenAI-compatible endpoints: parse, call the Gateway, serialise. No policy here.

Mounted under `/v1` and, for clients configured with a base URL lacking it, at the root too.
`GET /v1/models` also answers Anthropic SDK callers (they send `anthropic-version`) in their
shape, since both SDKs list models at the same path.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

import orjson

from headway.clock import Clock
from headway.errors import ModelNotFound
from headway.gateway import Gateway
from headway.server.calls import build_call
from headway.server.http import EVENT_STREAM, JSON, Request, Response, StreamResponse
from headway.server.relay import Relay, first_chunk
from headway.server.routes import Router, ServerContext
from headway.types import ModelInfo
from headway.wire.openai.ingress import (
    ChatStreamEncoder,
    RenderedAnswers,
    chat_response_json,
    embeddings_json,
    model_json,
    models_json,
    parse_chat_request,
    parse_embed_request,
    stream_error_frame,
)

#: `served.cache` values of an answer taken from the cache
_HITS: frozenset[str] = frozenset({"exact", "semantic", "stale"})


def _iso(epoch: int) -> str:
    moment = dt.datetime.fromtimestamp(epoch, dt.UTC)
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


def _anthropic_model(model: ModelInfo) -> dict[str, Any]:
    return {
        "type": "model",
        "id": model.id,
        "display_name": model.id,
        "created_at": _iso(model.created),
    }


class OpenAIRoutes:
    def __init__(self, gateway: Gateway, clock: Clock) -> None:
        self._gateway = gateway
        self._clock = clock
        #: a hot cached answer is rendered once, not per hit
        self._rendered = RenderedAnswers()

    async def chat(self, req: Request) -> Response | StreamResponse:
        request = parse_chat_request(req.json_object())
        call = build_call(req, request, "openai")
        if not request.stream:
            resp = await self._gateway.chat_call(call)
            served = call.served
            render = self._rendered if served.cache in _HITS else chat_response_json
            body = render(resp, request.model, created=int(self._clock.time()))
            return Response(body, 200, JSON, [], served)  # positional: cheaper than keywords
        stream = self._gateway.stream(call=call)
        first = await first_chunk(stream)
        # positional throughout: keywords to a class cost ~1k instructions each on Python 3.11
        encoder = ChatStreamEncoder(
            first.id if first is not None and first.id else f"chatcmpl-{call.request_id}",
            (first.created if first is not None and first.created else 0)
            or int(self._clock.time()),
            request.model,
            request.include_usage,
        )
        served = call.served
        frames = Relay(
            first,
            stream,
            encoder.chunk,
            # usage is read when the stream ends: the gateway fills it in as the stream runs
            lambda: encoder.finish(served.usage),
            encoder.start,
        )
        return StreamResponse(frames, stream_error_frame, 200, EVENT_STREAM, [], served)

    async def embeddings(self, req: Request) -> Response:
        request = parse_embed_request(req.json_object())
        resp = await self._gateway.embed(
            request, request_id=req.request_id, principal=req.principal
        )
        return Response(embeddings_json(resp, request))

    def _visible(self, req: Request) -> list[ModelInfo]:
        allowed = req.principal.allowed_models
        models = self._gateway.models()
        return models if allowed is None else [m for m in models if m.id in allowed]

    async def models(self, req: Request) -> Response:
        models = self._visible(req)
        if "anthropic-version" in req.headers:
            data = [_anthropic_model(m) for m in models]
            return Response(
                orjson.dumps(
                    {
                        "data": data,
                        "has_more": False,
                        "first_id": data[0]["id"] if data else None,
                        "last_id": data[-1]["id"] if data else None,
                    }
                )
            )
        return Response(models_json(models))

    async def model(self, req: Request) -> Response:
        wanted = req.path_params["model"]
        for m in self._visible(req):
            if m.id == wanted:
                if "anthropic-version" in req.headers:
                    return Response(orjson.dumps(_anthropic_model(m)))
                return Response(orjson.dumps(model_json(m)))
        raise ModelNotFound(f"The model '{wanted}' does not exist", param="model")


def mount(router: Router, server: ServerContext) -> None:
    routes = OpenAIRoutes(server.gateway, server.gateway.services.clock)
    for prefix in ("/v1", ""):
        router.post(f"{prefix}/chat/completions", routes.chat)
        router.post(f"{prefix}/embeddings", routes.embeddings)
        router.get(f"{prefix}/models", routes.models)
        router.get(prefix + "/models/{model:path}", routes.model)
