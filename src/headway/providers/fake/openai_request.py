"""OpenAI request bodies -> neutral requests, validated the way the OpenAI API validates them.

Written from providers.md §2, independently of headway.wire.openai (see flavour.py for why).
Unknown top-level parameters are rejected like OpenAI does ("Unrecognized request argument"), so a
gateway that leaks an internal field upstream fails its tests instead of a customer's call.
"""

from __future__ import annotations

from typing import Any, Literal

from headway.errors import InvalidRequest
from headway.types import (
    ChatRequest,
    ContentPart,
    EmbedRequest,
    ImagePart,
    Message,
    Role,
    TextPart,
    ToolCall,
    ToolChoice,
    ToolSpec,
)

_CHAT_PARAMS = (
    "model messages max_completion_tokens max_tokens temperature top_p n seed presence_penalty "
    "frequency_penalty logit_bias logprobs top_logprobs stop stream stream_options tools "
    "tool_choice parallel_tool_calls response_format reasoning_effort user safety_identifier "
    "prompt_cache_key prompt_cache_retention metadata store service_tier functions function_call "
    "modalities audio prediction web_search_options verbosity"
)
CHAT_PARAMS = frozenset(_CHAT_PARAMS.split())
_ROLES: frozenset[str] = frozenset({"system", "developer", "user", "assistant", "tool"})


def _bad(message: str, param: str | None = None) -> InvalidRequest:
    return InvalidRequest(message, param=param)


def _int(body: dict[str, Any], name: str, minimum: int = 1) -> int | None:
    value = body.get(name)
    if value is None:
        return None
    if not isinstance(value, int) or isinstance(value, bool) or value < minimum:
        raise _bad(f"Invalid '{name}': expected an integer >= {minimum}.", name)
    return value


def _parts(content: Any, where: str) -> str | tuple[ContentPart, ...] | None:
    if content is None or isinstance(content, str):
        return content
    if not isinstance(content, list):
        raise _bad(f"Invalid type for '{where}': expected a string or an array.", where)
    parts: list[ContentPart] = []
    for j, part in enumerate(content):
        kind = part.get("type") if isinstance(part, dict) else None
        if kind == "text" and isinstance(part.get("text"), str):
            parts.append(TextPart(part["text"]))
        elif kind == "image_url" and isinstance(part.get("image_url"), dict):
            url = part["image_url"].get("url")
            if not isinstance(url, str):
                raise _bad(f"Missing required parameter: '{where}[{j}].image_url.url'.", where)
            media = data = None
            if url.startswith("data:") and ";base64," in url:
                media, data = url[5:].split(";base64,", 1)
            parts.append(ImagePart(url, part["image_url"].get("detail"), media, data))
        elif kind in ("refusal", "input_audio", "file"):
            continue
        else:
            raise _bad(
                f"Invalid value: '{kind}'. Supported values are: 'text' and 'image_url'.",
                f"{where}[{j}].type",
            )
    return tuple(parts)


def _message(raw: Any, i: int) -> Message:
    where = f"messages[{i}]"
    if not isinstance(raw, dict):
        raise _bad(f"Invalid type for '{where}': expected an object.", where)
    role = raw.get("role")
    if role not in _ROLES:
        raise _bad(
            f"Invalid value: '{role}'. Supported values are: 'system', 'assistant', 'user', "
            "'tool', and 'developer'.",
            f"{where}.role",
        )
    content = _parts(raw.get("content"), f"{where}.content")
    calls: list[ToolCall] = []
    for j, call in enumerate(raw.get("tool_calls") or ()):
        fn = call.get("function") if isinstance(call, dict) else None
        if not isinstance(fn, dict) or not isinstance(call.get("id"), str):
            raise _bad(f"Invalid '{where}.tool_calls[{j}]'.", f"{where}.tool_calls")
        calls.append(ToolCall(call["id"], str(fn.get("name", "")), str(fn.get("arguments", ""))))
    if role == "tool" and not isinstance(raw.get("tool_call_id"), str):
        raise _bad(f"Missing parameter 'tool_call_id' in '{where}'.", f"{where}.tool_call_id")
    if content is None and role != "assistant":
        raise _bad(f"Missing required parameter: '{where}.content'.", f"{where}.content")
    if role == "assistant" and content is None and not calls:
        raise _bad(f"Invalid '{where}': an assistant message needs content or tool_calls.", where)
    role_value: Role = role
    return Message(role_value, content, tuple(calls), raw.get("tool_call_id"), raw.get("name"))


def _tools(body: dict[str, Any]) -> tuple[tuple[ToolSpec, ...], ToolChoice | None]:
    specs: list[ToolSpec] = []
    for i, tool in enumerate(body.get("tools") or ()):
        fn = tool.get("function") if isinstance(tool, dict) else None
        if tool.get("type") != "function" or not isinstance(fn, dict) or not fn.get("name"):
            raise _bad(f"Missing required parameter: 'tools[{i}].function.name'.", f"tools[{i}]")
        specs.append(
            ToolSpec(
                fn["name"], fn.get("description"), fn.get("parameters") or {}, fn.get("strict")
            )
        )
    choice = body.get("tool_choice")
    if choice is None:
        return tuple(specs), None
    if not specs:
        raise _bad(
            "Invalid value for 'tool_choice': 'tool_choice' is only allowed when 'tools' are specified.",
            "tool_choice",
        )
    if choice in ("none", "auto", "required"):
        return tuple(specs), choice
    if isinstance(choice, dict) and isinstance(choice.get("function"), dict):
        name = choice["function"].get("name")
        if isinstance(name, str):
            return tuple(specs), name
    raise _bad("Invalid value for 'tool_choice'.", "tool_choice")


def parse_chat(body: Any) -> ChatRequest:
    if not isinstance(body, dict):
        raise _bad("The request body must be a JSON object.")
    unknown = sorted(set(body) - CHAT_PARAMS)
    if unknown:
        raise _bad(f"Unrecognized request argument supplied: {unknown[0]}", unknown[0])
    model = body.get("model")
    if not isinstance(model, str) or not model:
        raise _bad("you must provide a model parameter", "model")
    raw = body.get("messages")
    if not isinstance(raw, list) or not raw:
        raise _bad(
            "Invalid 'messages': empty array. Expected an array with minimum length 1.", "messages"
        )
    messages = tuple(_message(m, i) for i, m in enumerate(raw))
    tools, choice = _tools(body)
    stream = body.get("stream") or False
    if not isinstance(stream, bool):
        raise _bad("Invalid type for 'stream': expected a boolean.", "stream")
    options = body.get("stream_options")
    if options is not None and not stream:
        raise _bad(
            "The 'stream_options' parameter is only allowed when 'stream' is enabled.",
            "stream_options",
        )
    stop = body.get("stop")
    if isinstance(stop, str):
        stop = [stop]
    if stop is not None and (not isinstance(stop, list) or len(stop) > 4):
        raise _bad("Invalid 'stop': expected a string or an array of up to 4 strings.", "stop")
    temperature = body.get("temperature")
    if temperature is not None and not (
        isinstance(temperature, int | float) and 0 <= temperature <= 2
    ):
        raise _bad("Invalid 'temperature': expected a number between 0 and 2.", "temperature")
    fmt = body.get("response_format")
    if fmt is not None and (
        not isinstance(fmt, dict) or fmt.get("type") not in ("text", "json_object", "json_schema")
    ):
        raise _bad("Invalid 'response_format.type'.", "response_format")
    max_tokens = _int(body, "max_completion_tokens")
    if max_tokens is None:
        max_tokens = _int(body, "max_tokens")
    return ChatRequest(
        model=model,
        messages=messages,
        max_tokens=max_tokens,
        temperature=temperature,
        top_p=body.get("top_p"),
        stop=tuple(stop or ()),
        tools=tools,
        tool_choice=choice,
        parallel_tool_calls=body.get("parallel_tool_calls"),
        response_format=fmt,
        seed=body.get("seed"),
        n=_int(body, "n") or 1,
        user=body.get("user"),
        metadata=body.get("metadata"),
        stream=stream,
        include_usage=bool(isinstance(options, dict) and options.get("include_usage")),
    )


EncodingFormat = Literal["float", "base64"]


def parse_embeddings(body: Any) -> tuple[EmbedRequest, EncodingFormat]:
    if not isinstance(body, dict):
        raise _bad("The request body must be a JSON object.")
    model = body.get("model")
    if not isinstance(model, str) or not model:
        raise _bad("you must provide a model parameter", "model")
    raw = body.get("input")
    inputs: tuple[str, ...] | tuple[tuple[int, ...], ...]
    if isinstance(raw, str) and raw:
        inputs = (raw,)
    elif isinstance(raw, list) and raw and all(isinstance(x, str) and x for x in raw):
        inputs = tuple(raw)
    elif isinstance(raw, list) and raw and all(isinstance(x, int) for x in raw):
        inputs = (tuple(raw),)
    elif (
        isinstance(raw, list)
        and raw
        and all(isinstance(x, list) and x and all(isinstance(t, int) for t in x) for x in raw)
    ):
        inputs = tuple(tuple(x) for x in raw)
    else:
        raise _bad(
            "'$.input' is invalid. Please check the API reference: https://platform.openai.com/docs/api-reference.",
            "input",
        )
    raw_fmt = body.get("encoding_format") or "float"
    if raw_fmt not in ("float", "base64"):
        raise _bad(
            f"Invalid value for 'encoding_format': '{raw_fmt}'. Expected 'float' or 'base64'.",
            "encoding_format",
        )
    fmt: EncodingFormat = "base64" if raw_fmt == "base64" else "float"
    request = EmbedRequest(model, inputs, _int(body, "dimensions"), body.get("user"))
    return request, fmt
