"""The sim engine's content: deterministic answers, exact usage, tools, prefill, JSON, embeddings."""

from __future__ import annotations

import math
from typing import Any

import orjson
import pytest

from headway import tokens
from headway.config.schema import SimSettings
from headway.errors import InvalidRequest
from headway.providers.sim import SimEngine, StreamFault
from headway.providers.sim.generate import vocabulary, words
from headway.types import (
    ChatChunk,
    ChatRequest,
    EmbedRequest,
    FinishReason,
    Message,
    ToolCall,
    ToolSpec,
)

FAST: dict[str, Any] = {"latency_p50_ms": 0, "ttft_p50_ms": 0, "ms_per_token": 0}


def engine(**overrides: Any) -> SimEngine:
    return SimEngine(SimSettings(**{**FAST, **overrides}))


def ask(text: str, **kw: Any) -> ChatRequest:
    return ChatRequest(model="sim-large", messages=(Message("user", text),), **kw)


WEATHER = ToolSpec(
    "get_weather",
    "Current weather",
    {
        "type": "object",
        "properties": {
            "city": {"type": "string"},
            "days": {"type": "integer"},
            "scale": {"type": "string", "enum": ["c", "f"]},
            "note": {"type": "string"},
        },
        "required": ["city", "days", "scale"],
    },
)
TIME = ToolSpec("get_time", "Current time", {"type": "object", "properties": {}})


async def collect(e: SimEngine, request: ChatRequest) -> list[ChatChunk | StreamFault]:
    return [item async for item in e.stream(request)]


async def test_same_prompt_same_answer_different_prompt_different_answer() -> None:
    a, b = engine(), engine()
    first = await a.chat(ask("What is a token bucket?"))
    again = await b.chat(ask("What is a token bucket?"))
    other = await a.chat(ask("What is a leaky bucket?"))
    assert first.content == again.content
    assert first.content != other.content
    assert (await engine(seed=7).chat(ask("What is a token bucket?"))).content != first.content


@pytest.mark.parametrize("encoding", ["o200k_base", "cl100k_base"])
async def test_output_usage_is_the_exact_token_count(encoding: str) -> None:
    e = engine(encoding=encoding)
    for i in range(40):
        reply = await e.chat(ask(f"question number {i}: tell me something"))
        assert reply.content is not None
        assert reply.usage.output_tokens == tokens.count(reply.content, encoding)
        assert reply.finish_reason is FinishReason.STOP


async def test_input_usage_follows_the_documented_formula() -> None:
    request = ChatRequest(
        model="m",
        messages=(Message("system", "You are terse."), Message("user", "hello world")),
    )
    reply = await engine().chat(request)
    # 3 to prime the reply, 3 per message plus its text
    assert reply.usage.input_tokens == 3 + (3 + tokens.count("You are terse.")) + (3 + 2)


async def test_answer_length_comes_from_the_prompt_and_the_directive() -> None:
    e = engine(answer_tokens_min=5, answer_tokens_max=9)
    lengths = {(await e.chat(ask(f"prompt {i}"))).usage.output_tokens for i in range(30)}
    assert lengths <= set(range(5, 10))
    assert len(lengths) > 1
    exact = await e.chat(ask("please answer at length sim:tokens=250"))
    assert exact.usage.output_tokens == 250


async def test_max_tokens_caps_the_answer_with_finish_length() -> None:
    reply = await engine().chat(ask("long one sim:tokens=50", max_tokens=7))
    assert reply.usage.output_tokens == 7
    assert reply.finish_reason is FinishReason.LENGTH
    full = await engine().chat(ask("long one sim:tokens=50"))
    assert full.content is not None and reply.content is not None
    assert full.content.startswith(reply.content)


async def test_stop_sequences_end_the_answer_before_them() -> None:
    whole = await engine().chat(ask("two sentences sim:tokens=40"))
    assert whole.content is not None and "." in whole.content[:-1]
    stopped = await engine().chat(ask("two sentences sim:tokens=40", stop=(".",)))
    assert stopped.finish_reason is FinishReason.STOP
    assert stopped.content == whole.content[: whole.content.index(".")]
    assert stopped.usage.output_tokens == tokens.count(stopped.content)


async def test_stream_is_the_same_answer_one_token_per_chunk() -> None:
    e = engine()
    request = ask("stream me sim:tokens=30")
    whole = await e.chat(request)
    items = await collect(e, request)
    chunks = [i for i in items if isinstance(i, ChatChunk)]
    assert len(chunks) == len(items) == 31
    assert chunks[0].role == "assistant"
    assert all(c.role is None for c in chunks[1:])
    assert "".join(c.text for c in chunks) == whole.content
    assert all(tokens.count(c.text) == 1 for c in chunks[:-1])
    last = chunks[-1]
    assert last.finish_reason is FinishReason.STOP
    assert last.usage is not None
    assert (last.usage.input_tokens, last.usage.output_tokens) == (
        whole.usage.input_tokens,
        whole.usage.output_tokens,
    )
    assert len({c.id for c in chunks}) == 1


async def test_a_mentioned_tool_is_called_with_valid_arguments() -> None:
    reply = await engine().chat(ask("Use get_weather for Paris", tools=(WEATHER, TIME)))
    assert reply.finish_reason is FinishReason.TOOL_CALLS
    assert reply.content is None
    (call,) = reply.tool_calls
    assert call.name == "get_weather"
    assert call.id.startswith("call_")
    args = orjson.loads(call.arguments)
    assert set(args) == {"city", "days", "scale"}
    assert isinstance(args["city"], str) and args["city"]
    assert isinstance(args["days"], int)
    assert args["scale"] in ("c", "f")
    assert reply.usage.output_tokens == tokens.count("get_weather") + tokens.count(call.arguments)


async def test_tool_choice_rules() -> None:
    e = engine()
    plain = ask("hello there", tools=(WEATHER, TIME))
    assert not (await e.chat(plain)).tool_calls
    forced = ask("hello there", tools=(WEATHER, TIME), tool_choice="get_time")
    assert [c.name for c in (await e.chat(forced)).tool_calls] == ["get_time"]
    required = ask("hello there", tools=(WEATHER, TIME), tool_choice="required")
    assert [c.name for c in (await e.chat(required)).tool_calls] == ["get_weather"]
    none = ask("use get_weather", tools=(WEATHER,), tool_choice="none")
    assert not (await e.chat(none)).tool_calls
    both = ask("use get_weather and get_time", tools=(WEATHER, TIME))
    assert [c.name for c in (await e.chat(both)).tool_calls] == ["get_weather", "get_time"]
    single = ask("use get_weather and get_time", tools=(WEATHER, TIME), parallel_tool_calls=False)
    assert len((await e.chat(single)).tool_calls) == 1
    with pytest.raises(InvalidRequest):
        await e.chat(ask("x", tools=(WEATHER,), tool_choice="no_such_tool"))


async def test_after_a_tool_result_the_answer_is_text() -> None:
    call = ToolCall("call_1", "get_weather", '{"city":"Paris"}')
    request = ChatRequest(
        model="m",
        messages=(
            Message("user", "use get_weather"),
            Message("assistant", None, tool_calls=(call,)),
            Message("tool", '{"temp_c": 18}', tool_call_id="call_1"),
        ),
        tools=(WEATHER,),
    )
    reply = await engine().chat(request)
    assert reply.finish_reason is FinishReason.STOP
    assert reply.content and not reply.tool_calls


async def test_tool_call_streams_as_fragments_that_reassemble() -> None:
    e = engine()
    request = ask("call get_weather", tools=(WEATHER,))
    whole = await e.chat(request)
    chunks = [i for i in await collect(e, request) if isinstance(i, ChatChunk)]
    deltas = [d for c in chunks for d in c.tool_calls]
    assert deltas[0].id == whole.tool_calls[0].id and deltas[0].name == "get_weather"
    assert all(d.id is None and d.name is None for d in deltas[1:])
    assert "".join(d.arguments for d in deltas) == whole.tool_calls[0].arguments
    assert chunks[-1].finish_reason is FinishReason.TOOL_CALLS
    assert chunks[-1].usage is not None
    assert chunks[-1].usage.output_tokens == whole.usage.output_tokens


async def test_prefill_of_the_own_answer_continues_it_exactly() -> None:
    e = engine()
    question = Message("user", "explain backoff sim:tokens=40")
    whole = await e.chat(ChatRequest(model="m", messages=(question,)))
    assert whole.content is not None
    pieces = e.plan(ChatRequest(model="m", messages=(question,))).pieces
    for k in (0, 1, 17, 39):
        prefix = "".join(pieces[:k])
        request = ChatRequest(model="m", messages=(question, Message("assistant", prefix)))
        rest = await e.chat(request)
        assert prefix + (rest.content or "") == whole.content
        assert rest.usage.output_tokens == 40 - k


async def test_a_foreign_prefill_gets_a_deterministic_continuation() -> None:
    request = ChatRequest(
        model="m", messages=(Message("user", "hi"), Message("assistant", "Well, actually"))
    )
    a, b = await engine().chat(request), await engine().chat(request)
    assert a.content and a.content == b.content
    assert a.content.startswith(" ")


async def test_json_modes_produce_json() -> None:
    schema = {
        "type": "object",
        "properties": {"name": {"type": "string"}, "score": {"type": "number"}},
        "required": ["name", "score"],
    }
    fmt = {"type": "json_schema", "json_schema": {"name": "A", "schema": schema}}
    reply = await engine().chat(ask("rate it", response_format=fmt))
    assert reply.content is not None
    value = orjson.loads(reply.content)
    assert isinstance(value["name"], str) and isinstance(value["score"], float | int)
    assert reply.usage.output_tokens == tokens.count(reply.content)
    plain = await engine().chat(ask("json please", response_format={"type": "json_object"}))
    assert isinstance(orjson.loads(plain.content or ""), dict)


def test_generated_words_are_one_token_each() -> None:
    for encoding in tokens.ENCODINGS:
        vocab = vocabulary(encoding)
        assert len(vocab.words) > 150
        for seed in range(20):
            pieces = words(bytes([seed]) * 16, 60, vocab)
            assert tokens.count("".join(pieces), encoding) == len(pieces) == 60
            assert pieces[-1] == "."


async def test_embeddings_are_deterministic_unit_vectors() -> None:
    e = engine()
    texts = ("the cat sat on the mat", "the cat sat on a mat", "quarterly revenue grew")
    reply = await e.embed(EmbedRequest("sim-embed", texts))
    a, b, c = reply.vectors
    assert len(a) == 256
    for vec in reply.vectors:
        assert math.isclose(sum(x * x for x in vec), 1.0, rel_tol=1e-9)
    again = await engine().embed(EmbedRequest("sim-embed", texts[:1]))
    assert again.vectors[0] == a

    def cos(x: list[float], y: list[float]) -> float:
        return sum(p * q for p, q in zip(x, y, strict=True))

    assert cos(a, b) > 0.7 > 0.3 > abs(cos(a, c))
    assert reply.usage.input_tokens == sum(tokens.count(t) for t in texts)
    small = await e.embed(EmbedRequest("sim-embed", ("hello",), dimensions=64))
    assert len(small.vectors[0]) == 64
    ids = await e.embed(EmbedRequest("sim-embed", ((1, 2, 3),)))
    assert ids.usage.input_tokens == 3
    assert len((await engine(embedding_dim=32).embed(EmbedRequest("m", ("x",)))).vectors[0]) == 32
