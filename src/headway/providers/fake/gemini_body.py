"""The Gemini fake's own reading and writing of generateContent bodies (providers.md 5.2-5.6).

Independent of `headway.wire.gemini` on purpose (the fake is the adapters' yardstick). Accepts
camelCase and the snake_case spellings the API also takes. Function results are matched to calls
by name, as Gemini does; on older models calls carry no `id`, so clients must synthesise ids.

Newer models (`gemini-3…`) also give each call an `id` and put a `thoughtSignature` on the first
`functionCall` part of a reply (only the first one of parallel calls, as Gemini does); it must
come back unchanged on later turns (providers.md 5.2), else 400 `INVALID_ARGUMENT`, missing or
corrupted. The signature is an HMAC of model, name, args and id, so the fake checks it without
keeping state, as Gemini does; it compares bytes, since a proto `bytes` field may come back in
either base64 alphabet (google-genai sends the URL-safe one). A `functionResponse.id` must name
a call of the request.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import math
from typing import Any

from headway.errors import HeadwayError, InvalidRequest
from headway.types import (
    ChatRequest,
    ChatResponse,
    ContentPart,
    FinishReason,
    ImagePart,
    Message,
    TextPart,
    ToolCall,
    ToolSpec,
)

FINISH = {
    FinishReason.STOP: "STOP",
    FinishReason.LENGTH: "MAX_TOKENS",
    FinishReason.TOOL_CALLS: "STOP",
    FinishReason.CONTENT_FILTER: "SAFETY",
}
RPC_STATUS = {
    400: "INVALID_ARGUMENT",
    401: "UNAUTHENTICATED",
    403: "PERMISSION_DENIED",
    404: "NOT_FOUND",
    408: "DEADLINE_EXCEEDED",
    409: "ABORTED",
    413: "INVALID_ARGUMENT",
    429: "RESOURCE_EXHAUSTED",
    500: "INTERNAL",
    503: "UNAVAILABLE",
    504: "DEADLINE_EXCEEDED",
}
#: a user message containing this makes the fake block the prompt (200 + promptFeedback)
BLOCK_DIRECTIVE = "sim:block"


def rpc_status(status: int) -> str:
    return RPC_STATUS.get(status) or ("INTERNAL" if status >= 500 else "INVALID_ARGUMENT")


def bad(message: str) -> InvalidRequest:
    return InvalidRequest(message, upstream_status=400)


def _get(obj: dict[str, Any], camel: str, snake: str) -> Any:
    return obj.get(camel, obj.get(snake))


def _part(part: dict[str, Any], where: str) -> ContentPart:
    if "text" in part:
        return TextPart(str(part["text"]))
    inline = _get(part, "inlineData", "inline_data")
    if isinstance(inline, dict):
        mime, data = _get(inline, "mimeType", "mime_type"), str(inline.get("data", ""))
        return ImagePart(url=f"data:{mime};base64,{data}", media_type=mime, data=data)
    file = _get(part, "fileData", "file_data")
    if isinstance(file, dict):
        return ImagePart(url=str(_get(file, "fileUri", "file_uri")))
    raise bad(f"Invalid JSON payload received. Unknown part at '{where}'.")


def parse_request(body: Any, model: str) -> ChatRequest:
    if not isinstance(body, dict):
        raise bad("Invalid JSON payload received.")
    contents = body.get("contents")
    if not isinstance(contents, list) or not contents:
        raise bad("* GenerateContentRequest.contents: contents is not specified")
    messages: list[Message] = []
    system = _get(body, "systemInstruction", "system_instruction")
    if isinstance(system, dict):
        text = "".join(
            str(p.get("text", "")) for p in system.get("parts") or () if isinstance(p, dict)
        )
        if text:
            messages.append(Message("system", text))
    calls_by_name: dict[str, str] = {}
    for i, content in enumerate(contents):
        role = content.get("role", "user") if isinstance(content, dict) else None
        if role not in ("user", "model"):
            raise bad(
                f"* GenerateContentRequest.contents[{i}].role: Please use a valid role: user, model."
            )
        parts = [p for p in content.get("parts") or () if isinstance(p, dict)]
        if not parts:
            raise bad(
                f"* GenerateContentRequest.contents[{i}].parts: contents.parts must not be empty."
            )
        plain: list[ContentPart] = []
        calls: list[ToolCall] = []
        for j, part in enumerate(parts):
            where = f"contents[{i}].parts[{j}]"
            call = _get(part, "functionCall", "function_call")
            result = _get(part, "functionResponse", "function_response")
            if isinstance(call, dict):
                call_id = f"fc_{i}_{j}"
                calls_by_name[str(call.get("name"))] = call_id
                calls.append(
                    ToolCall(call_id, str(call.get("name")), json.dumps(call.get("args") or {}))
                )
            elif isinstance(result, dict):
                name = str(result.get("name"))
                text = json.dumps(result.get("response") or {})
                messages.append(
                    Message("tool", text, tool_call_id=calls_by_name.get(name, name), name=name)
                )
            elif not part.get("thought"):
                plain.append(_part(part, where))
        if role == "model":
            text = "".join(p.text for p in plain if isinstance(p, TextPart))
            messages.append(Message("assistant", text or None, tool_calls=tuple(calls)))
        elif plain:
            messages.append(Message("user", tuple(plain)))
    config = _get(body, "generationConfig", "generation_config") or {}
    tools: list[ToolSpec] = []
    for tool in body.get("tools") or ():
        for decl in _get(tool, "functionDeclarations", "function_declarations") or ():
            params = (
                decl.get("parameters")
                or _get(decl, "parametersJsonSchema", "parameters_json_schema")
                or {}
            )
            tools.append(ToolSpec(str(decl.get("name")), decl.get("description"), params))
    calling = (
        _get(
            _get(body, "toolConfig", "tool_config") or {},
            "functionCallingConfig",
            "function_calling_config",
        )
        or {}
    )
    mode = str(calling.get("mode", "")).upper()
    allowed = _get(calling, "allowedFunctionNames", "allowed_function_names") or []
    choice: str | None = {"AUTO": "auto", "ANY": "required", "NONE": "none"}.get(mode)
    if mode == "ANY" and len(allowed) == 1:
        choice = str(allowed[0])
    mime = _get(config, "responseMimeType", "response_mime_type")
    return ChatRequest(
        model=model,
        messages=tuple(messages),
        max_tokens=_get(config, "maxOutputTokens", "max_output_tokens"),
        temperature=config.get("temperature"),
        stop=tuple(_get(config, "stopSequences", "stop_sequences") or ()),
        tools=tuple(tools),
        tool_choice=choice,
        response_format={"type": "json_object"} if mime == "application/json" else None,
    )


def blocked(request: ChatRequest) -> bool:
    return any(m.role == "user" and BLOCK_DIRECTIVE in m.text() for m in request.messages)


def usage(input_tokens: int, output_tokens: int) -> dict[str, Any]:
    return {
        "promptTokenCount": input_tokens,
        "candidatesTokenCount": output_tokens,
        "totalTokenCount": input_tokens + output_tokens,
        "promptTokensDetails": [{"modality": "TEXT", "tokenCount": input_tokens}],
    }


def response(
    parts: list[dict[str, Any]],
    *,
    model: str,
    response_id: str,
    input_tokens: int,
    output_tokens: int,
    finish: str | None,
) -> dict[str, Any]:
    candidate: dict[str, Any] = {"content": {"parts": parts, "role": "model"}, "index": 0}
    if finish is not None:
        candidate["finishReason"] = finish
    return {
        "candidates": [candidate],
        "usageMetadata": usage(input_tokens, output_tokens),
        "modelVersion": model,
        "responseId": response_id,
    }


def reply_parts(reply: ChatResponse, model: str) -> list[dict[str, Any]]:
    parts: list[dict[str, Any]] = []
    if reply.content:
        parts.append({"text": reply.content})
    return parts + call_parts([(c.id, c.name, c.arguments) for c in reply.tool_calls], model)


def call_parts(calls: list[tuple[str, str, str]], model: str) -> list[dict[str, Any]]:
    """`functionCall` parts for (id, name, JSON arguments): a newer model adds ids and signs the
    first part."""
    parts: list[dict[str, Any]] = []
    for call_id, name, arguments in calls:
        fn: dict[str, Any] = {"name": name, "args": json.loads(arguments or "{}")}
        if not newer(model):
            parts.append({"functionCall": fn})
            continue
        fn["id"] = call_id
        part: dict[str, Any] = {"functionCall": fn}
        if not parts:
            part["thoughtSignature"] = thought_signature(model, fn)
        parts.append(part)
    return parts


#: models that sign their function calls and give them ids
NEWER_MODEL_PREFIX = "gemini-3"
_SIGNING_KEY = b"headway fake gemini"
_MISSING = (
    "Function call is missing a thought_signature in functionCall parts. This is required for "
    "tools to work correctly, and missing thought_signature may lead to degraded model "
    "performance. Additional data, function call `default_api:{name}`, position {position}. "
    "Please refer to https://ai.google.dev/gemini-api/docs/thought-signatures for more details."
)


def newer(model: str) -> bool:
    return model.startswith(NEWER_MODEL_PREFIX)


def thought_signature(model: str, fn: dict[str, Any]) -> str:
    """Standard base64 with `=` padding and (mostly) `+` and `/`, like the API's."""
    signed = json.dumps(
        [model, fn.get("name"), fn.get("args") or {}, fn.get("id")],
        sort_keys=True,
        separators=(",", ":"),
    )
    digest = hmac.new(_SIGNING_KEY, signed.encode(), hashlib.sha512).digest()
    return base64.b64encode(digest).decode()


def _signature_bytes(value: Any) -> bytes | None:
    if not isinstance(value, str):
        return None
    standard = value.replace("-", "+").replace("_", "/").rstrip("=")
    try:
        return base64.b64decode(standard + "=" * (-len(standard) % 4), validate=True)
    except binascii.Error:
        return None


def check_signatures(body: Any, model: str) -> None:
    """A newer model's checks on the history: the first `functionCall` part of each model turn
    carries the signature issued for it; each `functionResponse.id` names an earlier call."""
    contents = body.get("contents") if isinstance(body, dict) and newer(model) else None
    call_ids: set[Any] = set()
    for i, content in enumerate(contents if isinstance(contents, list) else ()):
        parts = content.get("parts") if isinstance(content, dict) else None
        first = True
        for j, part in enumerate(parts if isinstance(parts, list) else ()):
            if not isinstance(part, dict):
                continue
            fn = _get(part, "functionCall", "function_call")
            result = _get(part, "functionResponse", "function_response")
            if isinstance(fn, dict) and content.get("role") == "model":
                call_ids.add(fn.get("id"))
                if first:
                    given = _get(part, "thoughtSignature", "thought_signature")
                    if given is None:
                        raise bad(_MISSING.format(name=fn.get("name"), position=j))
                    expected = _signature_bytes(thought_signature(model, fn))
                    if _signature_bytes(given) != expected:
                        raise bad("Corrupted thought signature.")
                first = False
            elif isinstance(result, dict) and "id" in result and result["id"] not in call_ids:
                raise bad(
                    f"* GenerateContentRequest.contents[{i}].parts[{j}].function_response.id: "
                    f"no function call has id {result['id']!r}."
                )


def block_response(input_tokens: int, model: str, response_id: str) -> dict[str, Any]:
    return {
        "promptFeedback": {
            "blockReason": "SAFETY",
            "safetyRatings": [
                {"category": "HARM_CATEGORY_DANGEROUS_CONTENT", "probability": "HIGH"}
            ],
        },
        "usageMetadata": {"promptTokenCount": input_tokens, "totalTokenCount": input_tokens},
        "modelVersion": model,
        "responseId": response_id,
    }


def error_body(err: HeadwayError, status: int, retry_after: float | None = None) -> dict[str, Any]:
    details: list[dict[str, Any]] = []
    if err.code == "API_KEY_INVALID":
        details.append(
            {
                "@type": "type.googleapis.com/google.rpc.ErrorInfo",
                "reason": "API_KEY_INVALID",
                "domain": "googleapis.com",
                "metadata": {"service": "generativelanguage.googleapis.com"},
            }
        )
    if status == 429:
        details.append(
            {
                "@type": "type.googleapis.com/google.rpc.QuotaFailure",
                "violations": [
                    {
                        "quotaMetric": "generativelanguage.googleapis.com/generate_content_requests",
                        "quotaId": "GenerateRequestsPerMinutePerProjectPerModel",
                        "quotaDimensions": {"location": "global"},
                    }
                ],
            }
        )
        details.append(
            {
                "@type": "type.googleapis.com/google.rpc.Help",
                "links": [
                    {
                        "description": "Learn more about Gemini API quotas",
                        "url": "https://ai.google.dev/gemini-api/docs/rate-limits",
                    }
                ],
            }
        )
        if retry_after is not None:
            delay = max(1, math.ceil(retry_after))
            details.append(
                {"@type": "type.googleapis.com/google.rpc.RetryInfo", "retryDelay": f"{delay}s"}
            )
    error: dict[str, Any] = {"code": status, "message": err.message, "status": rpc_status(status)}
    if details:
        error["details"] = details
    return {"error": error}
