"""OpenAI-shaped ingress: caller JSON -> neutral requests (and, re-exported from
`ingress_encode`, neutral answers -> caller JSON/SSE).

Parsing is strict about what headway reads (types, ranges, required fields) and lenient about
the rest: unknown fields go to `ChatRequest.extra` untouched, so providers can pass them on.
Every rejection is an `InvalidRequest` whose `param` names the field (`messages[2].role`), which
is what OpenAI itself does and what the SDKs expose as `e.param`.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, NoReturn, cast

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
    ToolSpec,
)
from headway.wire.openai.ingress_encode import (
    DONE_FRAME,
    ChatStreamEncoder,
    RenderedAnswers,
    chat_response_json,
    embeddings_json,
    error_json,
    error_object,
    model_json,
    models_json,
    stream_error_frame,
    usage_json,
)

__all__ = [
    "DONE_FRAME",
    "ChatStreamEncoder",
    "RenderedAnswers",
    "chat_response_json",
    "embeddings_json",
    "error_json",
    "error_object",
    "model_json",
    "models_json",
    "parse_chat_request",
    "parse_embed_request",
    "stream_error_frame",
    "usage_json",
]

# ---- validation helpers -------------------------------------------------------------------------


def _fail(message: str, param: str) -> NoReturn:
    raise InvalidRequest(message, param=param)


def _kind(value: object) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int):
        return "an integer"
    if isinstance(value, float):
        return "a number"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, list):
        return "an array"
    if isinstance(value, dict):
        return "an object"
    return type(value).__name__


def _wrong(param: str, expected: str, value: object) -> NoReturn:
    _fail(
        f"Invalid type for '{param}': expected {expected}, but got {_kind(value)} instead.", param
    )


def _str(value: object, param: str) -> str:
    if not isinstance(value, str):
        _wrong(param, "a string", value)
    return value


def _opt_str(value: object, param: str) -> str | None:
    return None if value is None else _str(value, param)


def _obj(value: object, param: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        _wrong(param, "an object", value)
    return value


def _list(value: object, param: str) -> list[Any]:
    if not isinstance(value, list):
        _wrong(param, "an array", value)
    return value


def _bool(value: object, param: str) -> bool:
    if not isinstance(value, bool):
        _wrong(param, "a boolean", value)
    return value


def _int(value: object, param: str, *, minimum: int | None = None) -> int:
    if not isinstance(value, int) or isinstance(value, bool):
        _wrong(param, "an integer", value)
    if minimum is not None and value < minimum:
        _fail(f"Invalid '{param}': integer below minimum value {minimum} (got {value}).", param)
    return value


def _number(value: object, param: str, low: float, high: float) -> float:
    if not isinstance(value, (int, float)) or isinstance(value, bool):  # noqa: UP038 - faster
        _wrong(param, "a number", value)
    if not low <= value <= high:
        _fail(f"Invalid '{param}': must be between {low:g} and {high:g} (got {value}).", param)
    return float(value)


# ---- chat requests ---------------------------------------------------------------------------

_ROLES: frozenset[str] = frozenset({"system", "developer", "user", "assistant", "tool"})
_TOOL_CHOICES: frozenset[str] = frozenset({"auto", "none", "required"})
_DETAILS: frozenset[str] = frozenset({"auto", "low", "high"})
_RESPONSE_FORMATS: frozenset[str] = frozenset({"text", "json_object", "json_schema"})


def _image(raw: object, param: str) -> ImagePart:
    detail: str | None = None
    if isinstance(raw, dict):
        url = _str(raw.get("url"), f"{param}.url")
        detail = _opt_str(raw.get("detail"), f"{param}.detail")
        if detail is not None and detail not in _DETAILS:
            _fail(f"Invalid '{param}.detail': expected one of auto, low, high.", f"{param}.detail")
    else:
        url = _str(raw, param)
    if not url.startswith("data:"):
        return ImagePart(url=url, detail=detail)
    header, sep, data = url[5:].partition(",")
    if not sep or not header.endswith(";base64") or not data:
        _fail(
            f"Invalid '{param}.url': a data URL must look like data:image/png;base64,<data>.",
            f"{param}.url",
        )
    media_type = header[: -len(";base64")] or "application/octet-stream"
    return ImagePart(url=url, detail=detail, media_type=media_type, data=data)


def _parts(raw: list[Any], param: str, *, images: bool) -> tuple[ContentPart, ...]:
    parts: list[ContentPart] = []
    for j, part in enumerate(raw):
        p = f"{param}[{j}]"
        part = _obj(part, p)
        kind = part.get("type")
        if kind == "text":
            parts.append(TextPart(_str(part.get("text"), f"{p}.text")))
        elif kind == "image_url" and images:
            parts.append(_image(part.get("image_url"), f"{p}.image_url"))
        elif kind == "refusal":
            continue  # a refusal the assistant gave earlier carries nothing to send back upstream
        elif isinstance(kind, str):
            _fail(
                f"Invalid '{p}.type': content part type '{kind}' is not supported here.",
                f"{p}.type",
            )
        else:
            _wrong(f"{p}.type", "a string", kind)
    return tuple(parts)


def _content(
    raw: object, param: str, *, images: bool, optional: bool
) -> str | tuple[ContentPart, ...] | None:
    if isinstance(raw, str):
        return raw
    if raw is None and optional:
        return None
    if isinstance(raw, list):
        return _parts(raw, param, images=images)
    _wrong(param, "a string or an array of content parts", raw)


def _tool_calls(raw: object, param: str) -> tuple[ToolCall, ...]:
    calls: list[ToolCall] = []
    for k, item in enumerate(_list(raw, param)):
        p = f"{param}[{k}]"
        item = _obj(item, p)
        fn = _obj(item.get("function"), f"{p}.function")
        calls.append(
            ToolCall(
                id=_str(item.get("id"), f"{p}.id"),
                name=_str(fn.get("name"), f"{p}.function.name"),
                arguments=_str(fn.get("arguments", ""), f"{p}.function.arguments"),
            )
        )
    return tuple(calls)


#: roles whose message is plain text in the common case (see `_message`)
_TEXT_ROLES: frozenset[str] = frozenset({"system", "developer", "user", "assistant"})


def _message(raw: object, i: int) -> Message:
    # The common message, `{"role": ..., "content": "text"}` (maybe a `name`), is built without
    # the parameter names the checks below format for their error messages.
    if type(raw) is dict:
        role = raw.get("role")
        content = raw.get("content")
        name = raw.get("name")
        if (
            type(content) is str
            and type(role) is str
            and role in _TEXT_ROLES
            and (name is None or type(name) is str)
            and (role != "assistant" or raw.get("tool_calls") is None)
        ):
            # positional, no `cast` (a function call): keywords to a class cost ~1k
            # instructions each on Python 3.11 (keep in step with Message's field order)
            return Message(role, content, (), None, name)  # type: ignore[arg-type] # a _TEXT_ROLES
    param = f"messages[{i}]"
    msg = _obj(raw, param)
    if "role" not in msg:
        _fail(f"Missing required parameter: '{param}.role'.", f"{param}.role")
    role = msg["role"]
    if role not in _ROLES:
        if not isinstance(role, str):
            _wrong(f"{param}.role", "a string", role)
        _fail(
            f"Invalid value for '{param}.role': '{role}'. Supported values are: 'system', "
            "'developer', 'user', 'assistant' and 'tool'.",
            f"{param}.role",
        )
    role_ = cast(Role, role)
    name = _opt_str(msg.get("name"), f"{param}.name")
    content_param = f"{param}.content"
    if role_ == "assistant":
        raw_calls = msg.get("tool_calls")
        calls = _tool_calls(raw_calls, f"{param}.tool_calls") if raw_calls is not None else ()
        content = _content(msg.get("content"), content_param, images=False, optional=True)
        return Message("assistant", content, tool_calls=calls, name=name)
    if "content" not in msg:
        _fail(f"Missing required parameter: '{content_param}'.", content_param)
    if role_ == "tool":
        tool_call_id = _str(msg.get("tool_call_id"), f"{param}.tool_call_id")
        content = _content(msg["content"], content_param, images=False, optional=False)
        return Message("tool", content, tool_call_id=tool_call_id, name=name)
    images = role_ == "user"
    content = _content(msg["content"], content_param, images=images, optional=False)
    return Message(role_, content, name=name)


def _tools(raw: object) -> tuple[ToolSpec, ...]:
    specs: list[ToolSpec] = []
    for i, item in enumerate(_list(raw, "tools")):
        p = f"tools[{i}]"
        item = _obj(item, p)
        if item.get("type", "function") != "function":
            _fail(
                f"Invalid value for '{p}.type': only 'function' tools are supported.", f"{p}.type"
            )
        fn = _obj(item.get("function"), f"{p}.function")
        name = _str(fn.get("name"), f"{p}.function.name")
        if not name or len(name) > 64 or not name.replace("_", "").replace("-", "").isalnum():
            _fail(
                f"Invalid '{p}.function.name': must match ^[a-zA-Z0-9_-]{{1,64}}$.",
                f"{p}.function.name",
            )
        params = fn.get("parameters")
        specs.append(
            ToolSpec(
                name=name,
                description=_opt_str(fn.get("description"), f"{p}.function.description"),
                parameters={} if params is None else _obj(params, f"{p}.function.parameters"),
                strict=None
                if fn.get("strict") is None
                else _bool(fn["strict"], f"{p}.function.strict"),
            )
        )
    return tuple(specs)


def _tool_choice(raw: object, tools: Sequence[ToolSpec]) -> str:
    if isinstance(raw, str):
        if raw not in _TOOL_CHOICES:
            _fail(
                f"Invalid value for 'tool_choice': '{raw}'. Supported values are: 'none', "
                "'auto' and 'required', or a named function.",
                "tool_choice",
            )
        return raw
    choice = _obj(raw, "tool_choice")
    fn = _obj(choice.get("function"), "tool_choice.function")
    name = _str(fn.get("name"), "tool_choice.function.name")
    if all(t.name != name for t in tools):
        _fail(f"Invalid 'tool_choice': no tool named '{name}' in 'tools'.", "tool_choice")
    return name


def _response_format(raw: object) -> dict[str, Any]:
    fmt = _obj(raw, "response_format")
    kind = fmt.get("type")
    if kind not in _RESPONSE_FORMATS:
        _fail(
            "Invalid 'response_format.type': expected 'text', 'json_object' or 'json_schema'.",
            "response_format.type",
        )
    if kind == "json_schema":
        schema = _obj(fmt.get("json_schema"), "response_format.json_schema")
        _str(schema.get("name"), "response_format.json_schema.name")
        if schema.get("schema") is not None:
            _obj(schema["schema"], "response_format.json_schema.schema")
    return fmt


def _stop(raw: object) -> tuple[str, ...]:
    if isinstance(raw, str):
        return (raw,)
    items = _list(raw, "stop")
    if len(items) > 4:
        _fail("Invalid 'stop': at most 4 stop sequences are allowed.", "stop")
    return tuple(_str(s, f"stop[{i}]") for i, s in enumerate(items))


def _metadata(raw: object) -> dict[str, str]:
    meta = _obj(raw, "metadata")
    for key, value in meta.items():
        _str(value, f"metadata.{key}")
    return meta


def _positive(value: object, param: str) -> int:
    return _int(value, param, minimum=1)


def _temperature(value: object, param: str) -> float:
    # the common value, checked here without `_number`'s call (every request has one)
    if (type(value) is float or type(value) is int) and 0 <= value <= 2:
        return float(value)
    return _number(value, param, 0, 2)


#: body field -> validator; the result becomes the ChatRequest attribute of the same name
_FIELDS: dict[str, Callable[[Any, str], Any]] = {
    "max_tokens": _positive,
    "max_completion_tokens": _positive,
    "temperature": _temperature,
    "top_p": lambda v, p: _number(v, p, 0, 1),
    "stop": lambda v, p: _stop(v),
    "tools": lambda v, p: _tools(v),
    "tool_choice": lambda v, p: v,  # checked once the tools are known
    "parallel_tool_calls": _bool,
    "response_format": lambda v, p: _response_format(v),
    "seed": _int,
    "n": _positive,
    "user": _str,
    "metadata": lambda v, p: _metadata(v),
    "stream": _bool,
    "stream_options": _obj,
}
#: validated here (so callers hear about bad values from headway) but passed on in `extra`
_CHECKED_EXTRA: dict[str, Callable[[Any, str], Any]] = {
    "presence_penalty": lambda v, p: _number(v, p, -2, 2),
    "frequency_penalty": lambda v, p: _number(v, p, -2, 2),
}


def parse_chat_request(body: object) -> ChatRequest:
    """Validate an OpenAI chat-completions body and turn it into a neutral ChatRequest.

    One pass over the body's keys (a typical body has a handful): known fields are validated,
    `null` means unset, everything else is passed through in `extra`."""
    # every request passes here: the checks are inline, the helpers only format failures
    if not isinstance(body, dict):
        _wrong("body", "an object", body)
    if "model" not in body:
        _fail("Missing required parameter: 'model'.", "model")
    model = body["model"]
    if not isinstance(model, str):
        _wrong("model", "a string", model)
    if not model:
        _fail("Invalid 'model': must not be empty.", "model")
    if "messages" not in body:
        _fail("Missing required parameter: 'messages'.", "messages")
    raw_messages = body["messages"]
    if not isinstance(raw_messages, list):
        _wrong("messages", "an array", raw_messages)
    if not raw_messages:
        _fail(
            "Invalid 'messages': empty array. Expected an array with minimum length 1.", "messages"
        )
    if len(raw_messages) == 1:  # a single turn, as many calls are: no comprehension frame
        messages: tuple[Message, ...] = (_message(raw_messages[0], 0),)
    else:
        messages = tuple([_message(m, i) for i, m in enumerate(raw_messages)])

    fields: dict[str, Any] = {}
    extra: dict[str, Any] = {}
    for key, value in body.items():
        parse = _FIELDS.get(key)
        if parse is not None:
            if value is not None:
                fields[key] = parse(value, key)
        elif key != "model" and key != "messages":
            check = _CHECKED_EXTRA.get(key)
            if check is not None and value is not None:
                check(value, key)
            extra[key] = value
    get = fields.get
    # max_completion_tokens is the current name and wins over the deprecated max_tokens
    cap = get("max_completion_tokens")
    if cap is None:
        cap = get("max_tokens")
    stream = get("stream", False)
    options = get("stream_options")
    include_usage = False
    if options is not None and stream and options.get("include_usage") is not None:
        include_usage = _bool(options["include_usage"], "stream_options.include_usage")
    tools = get("tools", ())
    choice = get("tool_choice")
    if choice is not None:
        choice = _tool_choice(choice, tools)
    # Positional: `**fields` and keywords cost ~1k instructions per keyword on Python 3.11, and
    # every request is built here (keep in step with ChatRequest's field order; tests/wire check)
    return ChatRequest(
        model,
        messages,
        cap,
        get("temperature"),
        get("top_p"),
        get("stop", ()),
        tools,
        choice,
        get("parallel_tool_calls"),
        get("response_format"),
        get("seed"),
        get("n", 1),
        get("user"),
        get("metadata"),
        stream,
        include_usage,
        extra,
    )


def parse_embed_request(body: object) -> EmbedRequest:
    """Validate an OpenAI embeddings body: `input` is a string, strings, tokens or token lists."""
    body = _obj(body, "body")
    if "model" not in body:
        _fail("Missing required parameter: 'model'.", "model")
    model = _str(body["model"], "model")
    if "input" not in body:
        _fail("Missing required parameter: 'input'.", "input")
    raw = body["input"]
    inputs: tuple[str, ...] | tuple[tuple[int, ...], ...]
    if isinstance(raw, str):
        inputs = (raw,)
    else:
        items = _list(raw, "input")
        if not items:
            _fail("Invalid 'input': empty array.", "input")
        if all(isinstance(s, str) for s in items):
            inputs = tuple(items)
        elif all(isinstance(t, int) and not isinstance(t, bool) for t in items):
            inputs = (tuple(items),)
        elif all(isinstance(t, list) for t in items):
            inputs = tuple(
                tuple(_int(tok, f"input[{i}][{j}]") for j, tok in enumerate(t))
                for i, t in enumerate(items)
            )
        else:
            _wrong("input", "a string, an array of strings or an array of token arrays", raw)
    if any(not item for item in inputs):
        _fail("Invalid 'input': empty inputs cannot be embedded.", "input")
    fmt = body.get("encoding_format")
    if fmt is not None and fmt not in ("float", "base64"):
        _fail("Invalid 'encoding_format': expected 'float' or 'base64'.", "encoding_format")
    dims = body.get("dimensions")
    return EmbedRequest(
        model=model,
        inputs=inputs,
        dimensions=None if dims is None else _int(dims, "dimensions", minimum=1),
        user=_opt_str(body.get("user"), "user"),
        encoding_format="base64" if fmt == "base64" else "float",
    )
