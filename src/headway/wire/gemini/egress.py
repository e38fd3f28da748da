"""The Gemini Developer API wire format (egress): neutral request -> generateContent body.

Mapping (providers.md 5.2, 6.3): system and developer messages become `systemInstruction`;
`assistant` is role `model`; assistant tool calls become `functionCall` parts with `args` objects;
each `tool` message becomes a `functionResponse` part in a user content. Gemini matches results
to calls by function NAME, so the name is recovered from the earlier assistant call with the same
id. Gemini gives ids only on newer models; the decoder synthesises `call_hw…` ids otherwise, and
those are never echoed back (an id Gemini never issued would be rejected). A call id may carry a
thought signature (`signature`): it goes back as the `functionCall` part's `thoughtSignature`,
and only the clean id goes into `functionCall.id` / `functionResponse.id`. Consecutive contents
of one role are merged so roles alternate.

Gemini-only fields with no neutral form (`safetySettings`, `cachedContent`...) may travel in
`extra["gemini"]` and are merged into the body. HTTP image URLs are sent as `fileData` with a
guessed MIME type; the API only fetches URIs it allows, so callers should prefer data URLs.
"""

from __future__ import annotations

import mimetypes
from collections.abc import Mapping
from typing import Any

import orjson

from headway.errors import HeadwayError, InvalidRequest
from headway.providers.base import HttpCall, RateLimitSnapshot
from headway.types import (
    ChatRequest,
    ChatResponse,
    ContentPart,
    EmbedRequest,
    EmbedResponse,
    ImagePart,
    Message,
    TextPart,
    ToolCall,
)
from headway.wire.gemini.classify import classify_error
from headway.wire.gemini.decode import (
    SYNTHETIC_ID_PREFIX,
    GeminiStreamDecoder,
    parse_embeddings,
    parse_response,
)
from headway.wire.gemini.signature import SEPARATOR, split
from headway.wire.turns import fold_turns
from headway.wire.util import split_data_url

API_PREFIX = "/v1beta"

_MODES: dict[str, str] = {"auto": "AUTO", "required": "ANY", "none": "NONE"}
# JSON Schema keywords outside the OpenAPI subset `parameters` accepts
_UNSUPPORTED_SCHEMA_KEYS = frozenset({"$schema", "$id", "additionalProperties", "strict"})


def bare_model(model: str) -> str:
    return model.removeprefix("models/")


def clean_schema(schema: Any) -> Any:
    """A JSON Schema made acceptable to Gemini's `parameters`: unsupported keywords dropped and
    `type: [X, "null"]` turned into `type: X, nullable: true`, recursively."""
    if isinstance(schema, list):
        return [clean_schema(item) for item in schema]
    if not isinstance(schema, dict):
        return schema
    out: dict[str, Any] = {}
    for key, value in schema.items():
        if key in _UNSUPPORTED_SCHEMA_KEYS:
            continue
        if key == "type" and isinstance(value, list):
            kinds = [v for v in value if v != "null"]
            out["type"] = kinds[0] if kinds else "string"
            if len(kinds) < len(value):
                out["nullable"] = True
        elif key == "properties" and isinstance(value, dict):
            out[key] = {name: clean_schema(sub) for name, sub in value.items()}
        else:
            out[key] = clean_schema(value)
    return out


def _image(part: ImagePart) -> dict[str, Any]:
    if part.media_type and part.data:
        return {"inlineData": {"mimeType": part.media_type, "data": part.data}}
    split = split_data_url(part.url)
    if split is not None:
        return {"inlineData": {"mimeType": split[0], "data": split[1]}}
    mime = mimetypes.guess_type(part.url.split("?", 1)[0])[0] or "image/jpeg"
    return {"fileData": {"mimeType": mime, "fileUri": part.url}}


def _parts(content: str | tuple[ContentPart, ...] | None) -> list[dict[str, Any]]:
    if not content:
        return []
    if isinstance(content, str):
        return [{"text": content}]
    return [
        ({"text": p.text} if isinstance(p, TextPart) else _image(p))
        for p in content
        if not isinstance(p, TextPart) or p.text
    ]


def _tool_output(message: Message) -> dict[str, Any]:
    """`functionResponse.response` must be an object: JSON objects pass, anything else wraps."""
    text = message.text()
    if message.is_error:
        return {"error": text}
    try:
        value = orjson.loads(text) if text.strip() else text
    except orjson.JSONDecodeError:
        value = text
    return value if isinstance(value, dict) else {"result": value}


def _with_id(payload: dict[str, Any], call_id: str | None) -> dict[str, Any]:
    if call_id and not call_id.startswith(SYNTHETIC_ID_PREFIX):
        payload["id"] = call_id
    return payload


def _function_call(call: ToolCall, arguments: dict[str, Any]) -> dict[str, Any]:
    if SEPARATOR not in call.id:  # the common case: no signature, as before
        return {"functionCall": _with_id({"name": call.name, "args": arguments}, call.id)}
    call_id, signature = split(call.id)
    part: dict[str, Any] = {
        "functionCall": _with_id({"name": call.name, "args": arguments}, call_id)
    }
    if signature is not None:
        part["thoughtSignature"] = signature
    return part


def convert_contents(messages: tuple[Message, ...]) -> list[dict[str, Any]]:
    names = {call.id: call.name for m in messages for call in m.tool_calls}

    def function_response(i: int, message: Message) -> dict[str, Any]:
        name = names.get(message.tool_call_id or "") or message.name
        if not name:
            raise InvalidRequest(
                f"messages[{i}].tool_call_id: no earlier assistant tool call has id "
                f"{message.tool_call_id!r}",
                param=f"messages[{i}].tool_call_id",
            )
        response = {"name": name, "response": _tool_output(message)}
        call_id = message.tool_call_id
        if call_id and SEPARATOR in call_id:
            call_id = split(call_id)[0]
        return {"functionResponse": _with_id(response, call_id)}

    return fold_turns(
        messages,
        items_key="parts",
        assistant_role="model",
        content=_parts,
        tool_result=function_response,
        tool_call=_function_call,
    )


def _generation_config(request: ChatRequest) -> dict[str, Any]:
    config: dict[str, Any] = {}
    if request.temperature is not None:
        config["temperature"] = request.temperature
    if request.top_p is not None:
        config["topP"] = request.top_p
    anthropic = request.extra.get("anthropic")
    top_k = request.extra.get("top_k")
    if top_k is None and isinstance(anthropic, dict):
        top_k = anthropic.get("top_k")
    if top_k is not None:
        config["topK"] = top_k
    if request.max_tokens is not None:
        config["maxOutputTokens"] = request.max_tokens
    if request.stop:
        config["stopSequences"] = list(request.stop)
    if request.n != 1:
        config["candidateCount"] = request.n
    if request.seed is not None:
        config["seed"] = request.seed
    fmt = request.response_format or {}
    if fmt.get("type") == "json_object":
        config["responseMimeType"] = "application/json"
    elif fmt.get("type") == "json_schema":
        config["responseMimeType"] = "application/json"
        schema = (fmt.get("json_schema") or {}).get("schema")
        if isinstance(schema, dict):
            config["responseJsonSchema"] = schema
    return config


def generate_body(request: ChatRequest) -> dict[str, Any]:
    body: dict[str, Any] = {"contents": convert_contents(request.messages)}
    system = request.system_text()
    if system:
        body["systemInstruction"] = {"parts": [{"text": system}]}
    config = _generation_config(request)
    if config:
        body["generationConfig"] = config
    if request.tools:
        declarations = []
        for tool in request.tools:
            decl: dict[str, Any] = {"name": tool.name}
            if tool.description:
                decl["description"] = tool.description
            if tool.parameters:
                decl["parameters"] = clean_schema(tool.parameters)
            declarations.append(decl)
        body["tools"] = [{"functionDeclarations": declarations}]
    if request.tool_choice is not None:
        mode = _MODES.get(request.tool_choice)
        calling: dict[str, Any] = {"mode": mode or "ANY"}
        if mode is None:
            calling["allowedFunctionNames"] = [request.tool_choice]
        body["toolConfig"] = {"functionCallingConfig": calling}
    passthrough = request.extra.get("gemini")
    if isinstance(passthrough, dict):
        body.update(passthrough)
    return body


def _embed_item(model: str, text: str, dimensions: int | None) -> dict[str, Any]:
    item: dict[str, Any] = {"model": f"models/{model}", "content": {"parts": [{"text": text}]}}
    if dimensions is not None:
        item["outputDimensionality"] = dimensions
    return item


class GeminiWire:
    """`WireFormat` for the Gemini Developer API. Pure: no I/O, no clock."""

    name = "gemini"

    def __init__(self, *, api_prefix: str = API_PREFIX) -> None:
        self.api_prefix = api_prefix

    def chat_call(self, request: ChatRequest, model: str) -> HttpCall:
        base = f"{self.api_prefix}/models/{bare_model(model)}"
        body = generate_body(request)
        if request.stream:
            return HttpCall("POST", base + ":streamGenerateContent", body, query={"alt": "sse"})
        return HttpCall("POST", base + ":generateContent", body)

    def chat_response(self, body: bytes) -> ChatResponse:
        return parse_response(body)

    def stream_decoder(self, request: ChatRequest, model: str) -> GeminiStreamDecoder:
        return GeminiStreamDecoder(bare_model(model))

    def embed_call(self, request: EmbedRequest, model: str) -> HttpCall:
        texts = [t for t in request.inputs if isinstance(t, str)]
        if len(texts) != len(request.inputs) or not texts:
            raise InvalidRequest("gemini embeds text only, not token ids", param="input")
        model = bare_model(model)
        base = f"{self.api_prefix}/models/{model}"
        if len(texts) == 1:
            return HttpCall(
                "POST", base + ":embedContent", _embed_item(model, texts[0], request.dimensions)
            )
        requests = [_embed_item(model, t, request.dimensions) for t in texts]
        return HttpCall("POST", base + ":batchEmbedContents", {"requests": requests})

    def embed_response(self, body: bytes) -> EmbedResponse:
        return parse_embeddings(body)

    def classify_error(self, status: int, body: bytes, headers: Mapping[str, str]) -> HeadwayError:
        return classify_error(status, body, headers)

    def ratelimit(self, headers: Mapping[str, str], now: float) -> RateLimitSnapshot | None:
        return None  # Gemini sends no rate-limit headers; its 429 body carries RetryInfo
