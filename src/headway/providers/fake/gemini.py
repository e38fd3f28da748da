"""The Gemini flavour of the fake provider (providers.md 5 and 11).

Endpoints under `/v1beta/models/{model}` (and `/v1/...`, the same): `:generateContent`, `:streamGenerateContent` (SSE with
`?alt=sse`: `data:` events only, no `[DONE]`, cumulative `usageMetadata`, the finish reason on the
last event; without `alt=sse` a JSON array), `:countTokens`, `:embedContent`,
`:batchEmbedContents`; `GET /v1beta/models[/{model}]`. The key is read from `x-goog-api-key` or
`?key=`: a missing key is 403 `PERMISSION_DENIED`, a wrong one 400 `INVALID_ARGUMENT` with
`ErrorInfo.reason = API_KEY_INVALID`. A 429 is `RESOURCE_EXHAUSTED` with `QuotaFailure`, `Help`
and `RetryInfo` details and no Retry-After header. A user message containing `sim:block` gets
the 200 `promptFeedback.blockReason` answer. Function calls come whole; on newer models
(`gemini-3…`) with ids and a `thoughtSignature` that later turns must echo (`gemini_body`).
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING, Any

from aiohttp import web

from headway.errors import AuthenticationFailed, HeadwayError, InvalidRequest, NotFound
from headway.providers.fake import gemini_body as wire
from headway.providers.sim.behaviour import StreamFault
from headway.types import ChatRequest, EmbedRequest

if TYPE_CHECKING:
    from headway.providers.fake.server import FakeServer

#: the API answers under `/v1beta` (providers.md) and `/v1` (google-genai 3.x's default)
_VERSION = "/{version:v1beta|v1}"
_PREFIX = _VERSION + "/models/{model}"


def _dumps(obj: Any) -> str:
    return json.dumps(obj, separators=(",", ":"))


def _event(obj: Any) -> bytes:
    return b"data: " + _dumps(obj).encode() + b"\r\n\r\n"


async def _json(request: web.Request) -> Any:
    try:
        return json.loads(await request.read())
    except ValueError:
        raise InvalidRequest(
            "Invalid JSON payload received. Unexpected token.", upstream_status=400
        ) from None


def _model_info(model: str) -> dict[str, Any]:
    embedding = "embedding" in model
    methods = (
        ["embedContent", "batchEmbedContents"] if embedding else ["generateContent", "countTokens"]
    )
    return {
        "name": f"models/{model}",
        "baseModelId": model,
        "version": "001",
        "displayName": model,
        "inputTokenLimit": 1_048_576,
        "outputTokenLimit": 65_536,
        "supportedGenerationMethods": methods,
    }


class GeminiFlavour:
    name = "gemini"
    base_path = "/v1beta"
    default_models = (
        "gemini-2.5-flash",
        "gemini-2.5-pro",
        "gemini-3-flash",
        "gemini-embedding-001",
    )

    def routes(self, server: FakeServer) -> Iterable[web.RouteDef]:
        h = _Handlers(self, server)
        return [
            web.post(_PREFIX + ":generateContent", h.generate, name="generateContent"),
            web.post(_PREFIX + ":streamGenerateContent", h.stream, name="streamGenerateContent"),
            web.post(_PREFIX + ":countTokens", h.count_tokens, name="countTokens"),
            web.post(_PREFIX + ":embedContent", h.embed, name="embedContent"),
            web.post(_PREFIX + ":batchEmbedContents", h.batch_embed, name="batchEmbedContents"),
            web.get(_VERSION + "/models", h.models, name="models.list"),
            web.get(_PREFIX, h.model, name="models.get"),
        ]

    def authenticate(self, request: web.Request, api_key: str) -> HeadwayError | None:
        given = request.headers.get("x-goog-api-key") or request.query.get("key")
        if not given:
            return AuthenticationFailed(
                "Method doesn't allow unregistered callers (callers without established "
                "identity). Please use API Key or other form of API consumer identity to call "
                "this API.",
                upstream_status=403,
            )
        if given != api_key:
            return AuthenticationFailed(
                "API key not valid. Please pass a valid API key.",
                code="API_KEY_INVALID",
                upstream_status=400,
            )
        return None

    def headers(self, server: FakeServer, request: web.Request) -> dict[str, str]:
        return {"server": "scaffolding on HTTPServer2", "x-content-type-options": "nosniff"}

    def error_response(
        self, server: FakeServer, err: HeadwayError, status: int, headers: Mapping[str, str]
    ) -> web.Response:
        # Gemini sends no Retry-After: the delay travels in the RetryInfo detail only
        kept = {k: v for k, v in headers.items() if not k.lower().startswith("retry-after")}
        delay = err.retry_after
        if delay is None and "retry-after" in headers:  # an injected error's configured hint
            delay = float(headers["retry-after"])
        body = wire.error_body(err, status, retry_after=delay)
        return web.json_response(body, status=status, headers=kept, dumps=_dumps)


class _Handlers:
    def __init__(self, flavour: GeminiFlavour, server: FakeServer) -> None:
        self.flavour = flavour
        self.server = server

    def _ok(self, request: web.Request, body: Any) -> web.Response:
        headers = self.flavour.headers(self.server, request)
        return web.json_response(body, headers=headers, dumps=_dumps)

    def _model(self, request: web.Request) -> str:
        model = request.match_info["model"].removeprefix("models/")
        self.server.check_model(model)
        return model

    async def _chat(self, request: web.Request) -> tuple[ChatRequest, str]:
        model = self._model(request)
        body = await _json(request)
        chat = wire.parse_request(body, model)
        wire.check_signatures(body, model)
        return chat, model

    async def generate(self, request: web.Request) -> web.Response:
        chat, model = await self._chat(request)
        self.server.count_call(False)
        rid = self.server.engine.new_id("")
        if wire.blocked(chat):
            return self._ok(
                request, wire.block_response(self.server.engine.plan(chat).input_tokens, model, rid)
            )
        reply = await self.server.engine.chat(chat, model=model)
        body = wire.response(
            wire.reply_parts(reply, model),
            model=model,
            response_id=rid,
            input_tokens=reply.usage.input_tokens,
            output_tokens=reply.usage.output_tokens,
            finish=wire.FINISH[reply.finish_reason],
        )
        return self._ok(request, body)

    async def stream(self, request: web.Request) -> web.StreamResponse:
        chat, model = await self._chat(request)
        server = self.server
        server.count_call(True)
        sse = request.query.get("alt") == "sse"
        rid = server.engine.new_id("")
        input_tokens = server.engine.plan(chat).input_tokens
        if wire.blocked(chat):
            events = [wire.block_response(input_tokens, model, rid)]
            if not sse:
                return self._ok(request, events)
            blocked = await server.open_stream(request)
            await blocked.write(_event(events[0]))
            return blocked

        def frame(
            parts: list[dict[str, Any]], out: int, finish: str | None = None
        ) -> dict[str, Any]:
            return wire.response(
                parts,
                model=model,
                response_id=rid,
                input_tokens=input_tokens,
                output_tokens=out,
                finish=finish,
            )

        items = server.engine.stream(chat, model=model)
        collected: list[dict[str, Any]] = []
        resp: web.StreamResponse | None = None
        try:
            item = await anext(items)  # admission errors surface here, before any header
            if sse:
                resp = await server.open_stream(request)
            calls: dict[int, dict[str, Any]] = {}
            emitted = 0
            while True:
                if isinstance(item, StreamFault):
                    if resp is None:
                        raise item.error
                    return await self._fault(request, resp, item)
                event: dict[str, Any] | None = None
                if item.text:
                    emitted += 1
                    event = frame([{"text": item.text}], emitted)
                for d in item.tool_calls:  # Gemini sends each call whole, so collect fragments
                    call = calls.setdefault(d.index, {"id": d.id, "name": d.name, "args": ""})
                    call["args"] += d.arguments
                if item.finish_reason is not None:
                    whole = [(c["id"], c["name"], c["args"]) for _, c in sorted(calls.items())]
                    parts = wire.call_parts(whole, model)
                    out = item.usage.output_tokens if item.usage else emitted
                    event = frame(parts or [{"text": ""}], out, wire.FINISH[item.finish_reason])
                if event is not None:
                    if resp is not None:
                        await resp.write(_event(event))
                    else:
                        collected.append(event)
                if item.finish_reason is not None:
                    return resp if resp is not None else self._ok(request, collected)
                item = await anext(items)
        finally:
            await items.aclose()

    async def _fault(
        self, request: web.Request, resp: web.StreamResponse, fault: StreamFault
    ) -> web.StreamResponse:
        if fault.kind == "malformed":
            await resp.write(b'data: {"candidates": [{"content": {"parts": [{"text": "\r\n\r\n')
        elif fault.kind == "error":
            status = fault.error.upstream_status or 500
            await resp.write(_event(wire.error_body(fault.error, status)))
            return resp
        return await self.server.cut(request, resp)

    async def count_tokens(self, request: web.Request) -> web.Response:
        model = self._model(request)
        body = await _json(request)
        inner = body
        if isinstance(body, dict) and isinstance(body.get("generateContentRequest"), dict):
            inner = body["generateContentRequest"]
        chat = wire.parse_request(inner, model)
        total = self.server.engine.plan(chat).input_tokens
        return self._ok(
            request,
            {
                "totalTokens": total,
                "promptTokensDetails": [{"modality": "TEXT", "tokenCount": total}],
            },
        )

    async def _embed(self, model: str, items: list[Any]) -> list[dict[str, Any]]:
        texts: list[str] = []
        dims: int | None = None
        for i, item in enumerate(items):
            parts = (item.get("content") or {}).get("parts") if isinstance(item, dict) else None
            if not parts:
                raise wire.bad(
                    f"* BatchEmbedContentsRequest.requests[{i}].content: content is not specified"
                )
            texts.append("".join(str(p.get("text", "")) for p in parts if isinstance(p, dict)))
            dims = item.get("outputDimensionality", item.get("output_dimensionality")) or dims
        self.server.count_call(False)
        result = await self.server.engine.embed(
            EmbedRequest(model, tuple(texts), dimensions=dims), model=model
        )
        return [{"values": v} for v in result.vectors]

    async def embed(self, request: web.Request) -> web.Response:
        model = self._model(request)
        body = await _json(request)
        (vector,) = await self._embed(model, [body])
        return self._ok(request, {"embedding": vector})

    async def batch_embed(self, request: web.Request) -> web.Response:
        model = self._model(request)
        body = await _json(request)
        requests = body.get("requests") if isinstance(body, dict) else None
        if not isinstance(requests, list) or not requests:
            raise wire.bad("* BatchEmbedContentsRequest.requests: requests is not specified")
        return self._ok(request, {"embeddings": await self._embed(model, requests)})

    async def models(self, request: web.Request) -> web.Response:
        return self._ok(request, {"models": [_model_info(m) for m in self.server.models]})

    async def model(self, request: web.Request) -> web.Response:
        model = request.match_info["model"].removeprefix("models/")
        if model not in self.server.models:
            raise NotFound(
                f"models/{model} is not found for API version v1beta.", upstream_status=404
            )
        return self._ok(request, _model_info(model))
