"""The OpenAI flavour of the fake provider: providers.md §2 and the checklist of §11.

`POST /v1/chat/completions` (JSON and SSE), `POST /v1/embeddings` (float and base64),
`GET /v1/models`, `GET /v1/models/{id}`; `x-request-id` and the six `x-ratelimit-*` headers on
every response; OpenAI error bodies; `Authorization: Bearer` when a key is configured.

Stream framing: `data: <json>` + blank line per chunk, no `event:` lines; a role chunk first; one
chunk per token; a finish chunk whose delta is `{}`; with `stream_options.include_usage` every chunk
carries `"usage": null` and a last chunk with `"choices": []` carries the usage; then
`data: [DONE]`. Faults: an in-band `data: {"error": ...}`, a cut (no `[DONE]`, no usage) and a
chunk that is not valid JSON.
"""

from __future__ import annotations

import base64
from collections.abc import Iterable, Mapping
from typing import Any

import numpy as np
import orjson
from aiohttp import web

from headway.errors import (
    AuthenticationFailed,
    HeadwayError,
    InvalidRequest,
    ModelNotFound,
)
from headway.providers.fake.openai_request import parse_chat, parse_embeddings
from headway.providers.fake.server import REQUEST_ID, STARTED, FakeServer
from headway.providers.sim.behaviour import StreamFault
from headway.providers.sim.ratelimit import go_duration
from headway.types import ChatChunk, ChatRequest, ChatResponse, ToolCallDelta, Usage

FINGERPRINT = "fp_sim0001"
MODEL_CREATED = 1_715_367_049
#: what the rate-limit headers report for a limit the fake does not enforce
NOMINAL_RPM = 10_000
NOMINAL_TPM = 30_000_000

_TYPES: dict[int, tuple[str, str | None]] = {
    400: ("invalid_request_error", None),
    401: ("invalid_request_error", "invalid_api_key"),
    403: ("request_forbidden", "unsupported_country_region_territory"),
    404: ("invalid_request_error", "unknown_url"),
    408: ("timeout", "request_timeout"),
    409: ("conflict", "conflict"),
    413: ("invalid_request_error", "request_too_large"),
    422: ("invalid_request_error", None),
    429: ("requests", "rate_limit_exceeded"),
}


def usage_body(u: Usage) -> dict[str, Any]:
    return {
        "prompt_tokens": u.input_tokens,
        "completion_tokens": u.output_tokens,
        "total_tokens": u.input_tokens + u.output_tokens,
        "prompt_tokens_details": {"cached_tokens": u.cached_input_tokens, "audio_tokens": 0},
        "completion_tokens_details": {
            "reasoning_tokens": u.reasoning_tokens,
            "audio_tokens": 0,
            "accepted_prediction_tokens": 0,
            "rejected_prediction_tokens": 0,
        },
    }


def completion_body(r: ChatResponse) -> dict[str, Any]:
    message: dict[str, Any] = {
        "role": "assistant",
        "content": r.content,
        "refusal": None,
        "annotations": [],
    }
    if r.tool_calls:
        message["tool_calls"] = [
            {"id": c.id, "type": "function", "function": {"name": c.name, "arguments": c.arguments}}
            for c in r.tool_calls
        ]
    return {
        "id": r.id,
        "object": "chat.completion",
        "created": r.created,
        "model": r.model,
        "system_fingerprint": FINGERPRINT,
        "service_tier": "default",
        "choices": [
            {
                "index": 0,
                "message": message,
                "logprobs": None,
                "finish_reason": str(r.finish_reason),
            }
        ],
        "usage": usage_body(r.usage),
    }


def _tool_delta(d: ToolCallDelta) -> dict[str, Any]:
    if d.id is not None:
        return {
            "index": d.index,
            "id": d.id,
            "type": "function",
            "function": {"name": d.name, "arguments": d.arguments},
        }
    return {"index": d.index, "function": {"arguments": d.arguments}}


class _ChunkWriter:
    """Frames chunks of one stream. The parts every chunk repeats are serialised once."""

    __slots__ = ("include_usage", "prefix", "suffix")

    def __init__(self, first: ChatChunk, include_usage: bool) -> None:
        head = {
            "id": first.id,
            "object": "chat.completion.chunk",
            "created": first.created,
            "model": first.model,
            "system_fingerprint": FINGERPRINT,
        }
        self.prefix = b"data: " + orjson.dumps(head)[:-1] + b',"choices":'
        self.include_usage = include_usage
        self.suffix = b',"usage":null}\n\n' if include_usage else b"}\n\n"

    def frame(self, delta: dict[str, Any], finish: str | None = None) -> bytes:
        choice = {"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish}
        return self.prefix + orjson.dumps([choice]) + self.suffix

    def chunk(self, c: ChatChunk) -> bytes:
        delta: dict[str, Any] = {}
        if c.text:
            delta["content"] = c.text
        if c.tool_calls:
            delta["tool_calls"] = [_tool_delta(d) for d in c.tool_calls]
        return self.frame(delta)

    def role(self, first: ChatChunk) -> bytes:
        if first.tool_calls:
            delta = {"role": "assistant", "content": None}
            delta["tool_calls"] = [_tool_delta(d) for d in first.tool_calls]  # type: ignore[assignment]
            return self.frame(delta)
        head = self.frame({"role": "assistant", "content": "", "refusal": None})
        return head + (self.chunk(first) if first.text else b"")

    def finish(self, c: ChatChunk) -> bytes:
        out = self.frame({}, str(c.finish_reason))
        if self.include_usage and c.usage is not None:
            out += self.prefix + b'[],"usage":' + orjson.dumps(usage_body(c.usage)) + b"}\n\n"
        return out + b"data: [DONE]\n\n"

    def malformed(self) -> bytes:
        return self.prefix + b'[{"index":0,"delta":{"content":"\n\n'


def error_body(err: HeadwayError, status: int) -> dict[str, Any]:
    if status >= 500:
        kind, code, param = "server_error", None, None
    elif isinstance(err, InvalidRequest):
        kind, code, param = "invalid_request_error", err.code, err.param
    else:
        kind, code = _TYPES.get(status, ("invalid_request_error", None))
        param = err.param
        if isinstance(err, ModelNotFound):
            code = "model_not_found"
        if status == 429 and "(TPM)" in err.message:
            kind = "tokens"
    return {"error": {"message": err.message, "type": kind, "param": param, "code": code}}


async def _json(request: web.Request) -> Any:
    try:
        return orjson.loads(await request.read())
    except orjson.JSONDecodeError as exc:
        raise InvalidRequest(
            "We could not parse the JSON body of your request. (HINT: This likely means you "
            "aren't using your HTTP library correctly.)"
        ) from exc


class OpenAIFlavour:
    name = "openai"
    base_path = "/v1"
    default_models: tuple[str, ...] = (
        "gpt-4o-mini",
        "gpt-4o",
        "gpt-4.1-mini",
        "gpt-4.1",
        "text-embedding-3-small",
    )

    def routes(self, server: FakeServer) -> Iterable[web.RouteDef]:
        h = _Handlers(self, server)
        return [
            web.post("/v1/chat/completions", h.chat, name="chat.completions"),
            web.post("/v1/embeddings", h.embeddings, name="embeddings"),
            web.get("/v1/models", h.models, name="models.list"),
            web.get("/v1/models/{model:.+}", h.model, name="models.retrieve"),
        ]

    def authenticate(self, request: web.Request, api_key: str) -> HeadwayError | None:
        auth = request.headers.get("Authorization", "")
        if not auth.startswith("Bearer ") or not auth[7:].strip():
            return AuthenticationFailed(
                "You didn't provide an API key. You need to provide your API key in an "
                "Authorization header using Bearer auth (i.e. Authorization: Bearer YOUR_KEY)."
            )
        given = auth[7:].strip()
        if given != api_key:
            shown = given[:6] + "*" * 4 + given[-4:] if len(given) > 10 else "***"
            return AuthenticationFailed(f"Incorrect API key provided: {shown}.")
        return None

    def headers(self, server: FakeServer, request: web.Request) -> dict[str, str]:
        rid = request.get(REQUEST_ID)
        if rid is None:
            rid = request[REQUEST_ID] = server.engine.new_id("req_")
        st = server.engine.limit_state()
        started = request.get(STARTED, server.clock.monotonic())
        rpm = st.limit_requests or NOMINAL_RPM
        tpm = st.limit_tokens or NOMINAL_TPM
        return {
            "x-request-id": rid,
            "openai-version": "2020-10-01",
            "openai-organization": "org-sim",
            "openai-processing-ms": str(int((server.clock.monotonic() - started) * 1000)),
            "x-ratelimit-limit-requests": str(rpm),
            "x-ratelimit-limit-tokens": str(tpm),
            "x-ratelimit-remaining-requests": str(
                rpm if st.remaining_requests is None else st.remaining_requests
            ),
            "x-ratelimit-remaining-tokens": str(
                tpm if st.remaining_tokens is None else st.remaining_tokens
            ),
            "x-ratelimit-reset-requests": go_duration(st.reset_requests_s),
            "x-ratelimit-reset-tokens": go_duration(st.reset_tokens_s),
        }

    def error_response(
        self, server: FakeServer, err: HeadwayError, status: int, headers: Mapping[str, str]
    ) -> web.Response:
        return web.Response(
            status=status,
            body=orjson.dumps(error_body(err, status)),
            headers=headers,
            content_type="application/json",
        )


class _Handlers:
    def __init__(self, flavour: OpenAIFlavour, server: FakeServer) -> None:
        self.flavour = flavour
        self.server = server

    def _ok(self, request: web.Request, body: Any) -> web.Response:
        headers = self.flavour.headers(self.server, request)
        return web.Response(
            body=orjson.dumps(body), headers=headers, content_type="application/json"
        )

    async def chat(self, request: web.Request) -> web.StreamResponse:
        req = parse_chat(await _json(request))
        self.server.check_model(req.model)
        self.server.count_call(req.stream)
        if not req.stream:
            return self._ok(request, completion_body(await self.server.engine.chat(req)))
        return await self._stream(request, req)

    async def _stream(self, request: web.Request, req: ChatRequest) -> web.StreamResponse:
        server = self.server
        items = server.engine.stream(req)
        try:
            first = await anext(items)  # admission errors surface here, before any header is sent
            resp = await server.open_stream(request)
            if isinstance(first, StreamFault):  # a fault before the first token
                opening = ChatChunk(
                    server.engine.new_id(), req.model, created=int(server.clock.time())
                )
                writer = _ChunkWriter(opening, req.include_usage)
                await resp.write(writer.role(opening))
                return await self._fault(request, resp, writer, first)
            writer = _ChunkWriter(first, req.include_usage)
            if first.finish_reason is not None:
                await resp.write(
                    writer.role(ChatChunk(first.id, first.model)) + writer.finish(first)
                )
                return resp
            # Unpaced streams (fast mode) arrive all at once anyway: one write instead of one per
            # token keeps the fake from being the bottleneck of a benchmark.
            s = server.engine.settings
            batch: list[bytes] | None = (
                [] if s.ms_per_token == 0 and s.stall_after_tokens is None else None
            )
            out = writer.role(first)
            if batch is None:
                await resp.write(out)
            else:
                batch.append(out)
            async for item in items:
                if isinstance(item, StreamFault):
                    if batch:
                        await resp.write(b"".join(batch))
                    return await self._fault(request, resp, writer, item)
                out = writer.chunk(item) if item.finish_reason is None else writer.finish(item)
                if batch is None:
                    await resp.write(out)
                else:
                    batch.append(out)
                if item.finish_reason is not None:
                    break
            if batch:
                await resp.write(b"".join(batch))
            return resp
        finally:
            await items.aclose()

    async def _fault(
        self,
        request: web.Request,
        resp: web.StreamResponse,
        writer: _ChunkWriter,
        fault: StreamFault,
    ) -> web.StreamResponse:
        if fault.kind == "error":
            body = error_body(fault.error, 500)
            await resp.write(b"data: " + orjson.dumps(body) + b"\n\n")
        elif fault.kind == "malformed":
            await resp.write(writer.malformed())
        return await self.server.cut(request, resp)

    async def embeddings(self, request: web.Request) -> web.Response:
        req, fmt = parse_embeddings(await _json(request))
        self.server.check_model(req.model)
        self.server.count_call(False)
        result = await self.server.engine.embed(req)
        data: list[dict[str, Any]] = []
        for i, vec in enumerate(result.vectors):
            value: Any = vec
            if fmt == "base64":
                value = base64.b64encode(np.asarray(vec, dtype="<f4").tobytes()).decode()
            data.append({"object": "embedding", "index": i, "embedding": value})
        used = result.usage.input_tokens
        body = {
            "object": "list",
            "model": req.model,
            "data": data,
            "usage": {"prompt_tokens": used, "total_tokens": used},
        }
        return self._ok(request, body)

    def _model(self, model: str) -> dict[str, Any]:
        return {"id": model, "object": "model", "created": MODEL_CREATED, "owned_by": "system"}

    async def models(self, request: web.Request) -> web.Response:
        return self._ok(
            request, {"object": "list", "data": [self._model(m) for m in self.server.models]}
        )

    async def model(self, request: web.Request) -> web.Response:
        model = request.match_info["model"]
        if model not in self.server.models:
            raise ModelNotFound(f"The model '{model}' does not exist", param="model")
        return self._ok(request, self._model(model))
