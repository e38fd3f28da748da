"""The Gemini fake's own reading and writing of generateContent bodies (providers.md 5.2-5.6).

Independent of `headway.wire.gemini` on purpose (the fake is the adapters' yardstick). Accepts
camelCase and the snake_case spellings the API also takes. Function results are matched to calls
by name, as Gemini does; calls carry no `id` (older models), so clients must synthesise ids.
"""

from __future__ import annotations

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


def reply_parts(reply: ChatResponse) -> list[dict[str, Any]]:
    parts: list[dict[str, Any]] = []
    if reply.content:
        parts.append({"text": reply.content})
    for call in reply.tool_calls:
        parts.append(
            {"functionCall": {"name": call.name, "args": json.loads(call.arguments or "{}")}}
        )
    return parts


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
