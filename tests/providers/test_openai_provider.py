"""HttpProvider with the OpenAI wire format, over real HTTP to a scripted loopback server."""

from __future__ import annotations

import base64
import struct

import pytest

from headway.errors import (
    ContextLengthExceeded,
    InvalidRequest,
    StreamInterrupted,
    UpstreamError,
    UpstreamModelNotFound,
    UpstreamOverloaded,
    UpstreamRateLimited,
)
from headway.providers.base import RateLimitSnapshot
from headway.services import Services
from headway.types import EmbedRequest, FinishReason, Message, ToolSpec
from tests.providers.openai_helpers import REQUEST, collect, collect_until_error, ctx, make
from tests.providers.openai_server import (
    DONE,
    Reply,
    ScriptedServer,
    chunk,
    completion,
    error_body,
    text_stream,
    usage,
)

RATE_HEADERS = {
    "x-ratelimit-limit-requests": "5000",
    "x-ratelimit-remaining-requests": "4999",
    "x-ratelimit-reset-requests": "12ms",
    "x-ratelimit-limit-tokens": "160000",
    "x-ratelimit-remaining-tokens": "159976",
    "x-ratelimit-reset-tokens": "6m0s",
}


async def test_chat_sends_openai_body_and_parses_the_answer(
    upstream: ScriptedServer, services: Services
) -> None:
    body = completion("Hello!", usage_body=usage(19, 3, cached=8, reasoning=1))
    upstream.script(Reply(json=body, headers=RATE_HEADERS))
    provider = make(upstream.url + "/v1", services, headers={"OpenAI-Organization": "org-1"})
    snapshots: list[RateLimitSnapshot] = []
    reply = await provider.chat(
        REQUEST, ctx(on_ratelimit=snapshots.append, extra_headers={"x-trace": "t1"})
    )
    assert reply.content == "Hello!"
    assert reply.finish_reason is FinishReason.STOP
    assert (reply.usage.input_tokens, reply.usage.output_tokens) == (19, 3)
    assert (reply.usage.cached_input_tokens, reply.usage.reasoning_tokens) == (8, 1)
    assert not reply.usage.estimated
    seen = upstream.seen[0]
    assert (seen.method, seen.path) == ("POST", "/v1/chat/completions")
    assert seen.headers["authorization"] == "Bearer sk-test"
    assert seen.headers["openai-organization"] == "org-1"
    assert seen.headers["x-trace"] == "t1"
    assert seen.headers["content-type"] == "application/json"
    assert seen.body == {
        "model": "gpt-4o-mini",
        "messages": [{"role": "user", "content": "Say hello"}],
        "max_tokens": 16,
    }
    assert len(snapshots) == 1
    snap = snapshots[0]
    assert snap.remaining_tokens == 159976
    assert snap.reset_tokens_at == pytest.approx(snap.observed_at + 360)


async def test_stream_yields_text_then_one_final_chunk_with_finish_and_usage(
    upstream: ScriptedServer, services: Services
) -> None:
    upstream.script(Reply(frames=text_stream("Hel", "lo!")))
    chunks = await collect(make(upstream.url + "/v1", services))
    assert [c.text for c in chunks] == ["Hel", "lo!", ""]
    # the bare role announcement rides on the first real chunk
    assert chunks[0].role == "assistant"
    final = chunks[-1]
    assert final.finish_reason is FinishReason.STOP
    assert final.usage is not None and not final.usage.estimated
    assert (final.usage.input_tokens, final.usage.output_tokens) == (9, 2)
    assert all(c.finish_reason is None and c.usage is None for c in chunks[:-1])
    sent = upstream.seen[0].body
    assert sent["stream"] is True
    assert sent["stream_options"] == {"include_usage": True}


async def test_stream_of_tool_call_fragments(upstream: ScriptedServer, services: Services) -> None:
    first = {"index": 0, "id": "call_abc", "type": "function"}
    frames = [
        chunk(
            {
                "role": "assistant",
                "content": None,
                "tool_calls": [{**first, "function": {"name": "get_weather", "arguments": ""}}],
            }
        ),
        chunk({"tool_calls": [{"index": 0, "function": {"arguments": '{"city":'}}]}),
        chunk({"tool_calls": [{"index": 0, "function": {"arguments": '"Paris"}'}}]}),
        chunk({}, "tool_calls"),
        DONE,
    ]
    upstream.script(Reply(frames=frames))
    request = REQUEST.__class__(
        model="m",
        messages=(Message("user", "weather?"),),
        tools=(ToolSpec("get_weather", parameters={"type": "object"}),),
        tool_choice="get_weather",
    )
    chunks = await collect(make(upstream.url, services), request)
    deltas = [d for c in chunks for d in c.tool_calls]
    assert deltas[0].id == "call_abc" and deltas[0].name == "get_weather"
    assert "".join(d.arguments for d in deltas) == '{"city":"Paris"}'
    assert chunks[-1].finish_reason is FinishReason.TOOL_CALLS
    assert chunks[-1].usage is not None and chunks[-1].usage.estimated  # no usage was sent
    sent = upstream.seen[0].body
    assert sent["tool_choice"] == {"type": "function", "function": {"name": "get_weather"}}


async def test_stream_cut_without_done_raises_after_the_text(
    upstream: ScriptedServer, services: Services
) -> None:
    upstream.script(Reply(frames=text_stream("partial", with_usage=False, done=False)[:2]))
    chunks, exc = await collect_until_error(make(upstream.url, services))
    assert [c.text for c in chunks] == ["partial"]
    assert isinstance(exc, StreamInterrupted)
    assert exc.provider == "up"


async def test_connection_dropped_mid_stream_is_interrupted(
    upstream: ScriptedServer, services: Services
) -> None:
    upstream.script(Reply(frames=text_stream("a", "b")[:2], reset_after=True))
    chunks, exc = await collect_until_error(make(upstream.url, services))
    assert [c.text for c in chunks] == ["a"]
    assert isinstance(exc, StreamInterrupted)


async def test_in_band_error_is_classified(upstream: ScriptedServer, services: Services) -> None:
    err = error_body(
        "Rate limit reached. Please try again in 1.4s.", "tokens", "rate_limit_exceeded"
    )
    upstream.script(Reply(frames=[*text_stream("x")[:2], b"data: " + _json(err) + b"\n\n", DONE]))
    chunks, exc = await collect_until_error(make(upstream.url, services))
    assert [c.text for c in chunks] == ["x"]
    assert isinstance(exc, UpstreamRateLimited)
    assert exc.retry_after == pytest.approx(1.4)


async def test_vllm_in_band_error_with_integer_code(
    upstream: ScriptedServer, services: Services
) -> None:
    err = error_body("boom", "InternalServerError", 500)
    upstream.script(Reply(frames=[b"data: " + _json(err) + b"\n\n", DONE]))
    chunks, exc = await collect_until_error(make(upstream.url, services, kind="openai-compatible"))
    assert chunks == []
    assert isinstance(exc, StreamInterrupted)


async def test_429_with_retry_after_ms_on_chat_and_stream(
    upstream: ScriptedServer, services: Services
) -> None:
    body = error_body("Rate limit reached for gpt-4o", "requests", "rate_limit_exceeded")
    reply = Reply(status=429, json=body, headers={"retry-after-ms": "1500", "retry-after": "2"})
    upstream.script(reply, reply)
    provider = make(upstream.url, services)
    with pytest.raises(UpstreamRateLimited) as info:
        await provider.chat(REQUEST, ctx())
    assert info.value.retry_after == pytest.approx(1.5)
    assert info.value.upstream_status == 429
    chunks, exc = await collect_until_error(provider)
    assert chunks == [] and isinstance(exc, UpstreamRateLimited)


@pytest.mark.parametrize(
    ("status", "body", "expected"),
    [
        (500, error_body("The server had an error", "server_error", None), UpstreamError),
        (503, error_body("overloaded", "server_error", None), UpstreamOverloaded),
        (
            404,
            error_body("The model `x` does not exist", "invalid_request_error", "model_not_found"),
            UpstreamModelNotFound,
        ),
        (
            400,
            {
                "object": "error",
                "message": "This model's maximum context length is 4096 tokens.",
                "type": "BadRequestError",
                "param": None,
                "code": 400,
            },
            ContextLengthExceeded,
        ),
        (
            400,
            error_body("bad temperature", "invalid_request_error", "invalid_value", "temperature"),
            InvalidRequest,
        ),
    ],
)
async def test_error_statuses_are_classified(
    upstream: ScriptedServer,
    services: Services,
    status: int,
    body: dict[str, object],
    expected: type[Exception],
) -> None:
    upstream.script(Reply(status=status, json=body))
    with pytest.raises(expected) as info:
        await make(upstream.url, services).chat(REQUEST, ctx())
    assert type(info.value) is expected


async def test_non_json_error_page_is_an_upstream_error(
    upstream: ScriptedServer, services: Services
) -> None:
    upstream.script(Reply(status=502, raw=b"<html>Bad Gateway</html>"))
    with pytest.raises(UpstreamError, match="Bad Gateway"):
        await make(upstream.url, services).chat(REQUEST, ctx())


async def test_azure_paths_api_key_and_string_429_code(
    upstream: ScriptedServer, services: Services
) -> None:
    body = {"error": {"code": "429", "message": "Please retry after 6 seconds."}}
    upstream.script(Reply(json=completion("ok")), Reply(status=429, json=body))
    provider = make(upstream.url, services, kind="azure", model="my-dep", api_version="2024-10-21")
    assert (await provider.chat(REQUEST, ctx())).content == "ok"
    seen = upstream.seen[0]
    assert seen.path == "/openai/deployments/my-dep/chat/completions"
    assert seen.query == {"api-version": "2024-10-21"}
    assert seen.headers["api-key"] == "sk-test"
    assert "authorization" not in seen.headers
    with pytest.raises(UpstreamRateLimited) as info:
        await provider.chat(REQUEST, ctx())
    assert info.value.retry_after == 6.0


async def test_azure_base_url_with_openai_suffix_and_v1_plane(
    upstream: ScriptedServer, services: Services
) -> None:
    classic = make(upstream.url + "/openai", services, kind="azure", model="d", api_version="v")
    await classic.chat(REQUEST, ctx())
    v1 = make(upstream.url + "/openai/v1", services, kind="azure", model="d", api_version="v")
    await v1.chat(REQUEST, ctx())
    assert [s.path for s in upstream.seen] == [
        "/openai/deployments/d/chat/completions",
        "/openai/v1/chat/completions",
    ]


async def test_compatible_server_quirks(upstream: ScriptedServer, services: Services) -> None:
    # Ollama: whole tool call in one chunk, role repeated, odd finish reason, no usage.
    call = {"index": 0, "function": {"name": "f", "arguments": {"a": 1}}}
    frames = [
        chunk({"role": "assistant", "content": "x"}),
        chunk({"role": "assistant", "tool_calls": [call]}),
        chunk({"role": "assistant"}, "eos"),
        DONE,
    ]
    upstream.script(Reply(frames=frames))
    request = REQUEST.__class__(
        model="m",
        messages=(Message("developer", "be brief"), Message("user", "hi")),
        max_tokens=5,
    )
    provider = make(upstream.url, services, kind="openai-compatible", model="llama3.2")
    chunks = await collect(provider, request)
    assert [c.role for c in chunks] == ["assistant", None, None]
    call_delta = chunks[1].tool_calls[0]
    assert call_delta.id and call_delta.arguments == '{"a":1}'
    final = chunks[-1]
    assert final.finish_reason is FinishReason.TOOL_CALLS
    assert final.usage is not None and final.usage.estimated
    assert final.usage.input_tokens > 0 and final.usage.output_tokens > 0
    sent = upstream.seen[0].body
    assert sent["max_tokens"] == 5 and "max_completion_tokens" not in sent
    assert sent["messages"][0]["role"] == "system"


async def test_server_ignoring_stream_answers_json(
    upstream: ScriptedServer, services: Services
) -> None:
    upstream.script(Reply(json=completion("whole")))
    chunks = await collect(make(upstream.url, services))
    assert [c.text for c in chunks] == ["whole", ""]
    assert chunks[-1].finish_reason is FinishReason.STOP and chunks[-1].usage is not None


def _b64(values: list[float]) -> str:
    return base64.b64encode(struct.pack(f"<{len(values)}f", *values)).decode()


async def test_embeddings_base64_and_float(upstream: ScriptedServer, services: Services) -> None:
    b64 = {
        "object": "list",
        "model": "text-embedding-3-small",
        "data": [
            {"object": "embedding", "index": 1, "embedding": _b64([0.5, -1.0])},
            {"object": "embedding", "index": 0, "embedding": _b64([0.25, 2.0])},
        ],
        "usage": {"prompt_tokens": 2, "total_tokens": 2},
    }
    floats = {**b64, "data": [{"object": "embedding", "index": 0, "embedding": [0.1, 0.2]}]}
    upstream.script(Reply(json=b64), Reply(json=floats))
    provider = make(upstream.url, services, model="text-embedding-3-small", embeddings=True)
    assert provider.capabilities.embeddings
    result = await provider.embed(EmbedRequest(model="e", inputs=("a", "b"), dimensions=2), ctx())
    assert result.vectors == [[0.25, 2.0], [0.5, -1.0]]
    assert result.usage.input_tokens == 2
    assert upstream.seen[0].path == "/embeddings"
    assert upstream.seen[0].body == {
        "model": "text-embedding-3-small",
        "input": ["a", "b"],
        "encoding_format": "base64",
        "dimensions": 2,
    }
    result = await provider.embed(EmbedRequest(model="e", inputs=("a",)), ctx())
    assert result.vectors == [[0.1, 0.2]]


def _json(obj: object) -> bytes:
    import orjson

    return orjson.dumps(obj)
