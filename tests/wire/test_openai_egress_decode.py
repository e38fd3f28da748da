"""OpenAI-shaped responses and streams -> neutral values."""

from __future__ import annotations

from typing import Any

import orjson
import pytest

from headway.errors import (
    ContextLengthExceeded,
    InvalidRequest,
    StreamInterrupted,
    UpstreamError,
    UpstreamRateLimited,
)
from headway.providers.base import SSEEvent
from headway.types import ChatChunk, ChatRequest, FinishReason, Message
from headway.wire.openai.decode import OpenAIStreamDecoder, parse_chat_response, parse_embeddings

REQ = ChatRequest(model="a", messages=(Message("user", "hello world"),))


def resp(message: dict[str, Any], finish: Any = "stop", **top: Any) -> bytes:
    body = {
        "id": "chatcmpl-1",
        "created": 5,
        "model": "gpt-4o",
        "choices": [{"index": 0, "message": message, "finish_reason": finish}],
    }
    body.update(top)
    return orjson.dumps(body)


def test_text_response_with_usage_details() -> None:
    usage = {
        "prompt_tokens": 19,
        "completion_tokens": 10,
        "total_tokens": 29,
        "prompt_tokens_details": {"cached_tokens": 16, "cache_write_tokens": 2},
        "completion_tokens_details": {"reasoning_tokens": 4},
    }
    r = parse_chat_response(resp({"role": "assistant", "content": "Hi"}, usage=usage))
    assert (r.id, r.model, r.created, r.content) == ("chatcmpl-1", "gpt-4o", 5, "Hi")
    u = r.usage
    assert (
        u.input_tokens,
        u.output_tokens,
        u.cached_input_tokens,
        u.cache_write_tokens,
        u.reasoning_tokens,
    ) == (19, 10, 16, 2, 4)
    assert not u.estimated


def test_tool_calls_refusal_and_finish() -> None:
    calls = [
        {"id": "call_1", "type": "function", "function": {"name": "f", "arguments": '{"x":1}'}}
    ]
    r = parse_chat_response(
        resp({"role": "assistant", "content": None, "tool_calls": calls}, "tool_calls")
    )
    assert r.finish_reason is FinishReason.TOOL_CALLS
    assert [(c.id, c.name, c.arguments) for c in r.tool_calls] == [("call_1", "f", '{"x":1}')]
    r = parse_chat_response(resp({"role": "assistant", "content": None, "refusal": "I can't."}))
    assert r.refusal == "I can't." and r.content is None


def test_local_server_quirks_in_a_response() -> None:
    # no ids, object arguments, odd finish reason, no usage
    calls = [{"function": {"name": "f", "arguments": {"x": 1}}}]
    body = orjson.dumps(
        {"choices": [{"message": {"content": "", "tool_calls": calls}, "finish_reason": "eos"}]}
    )
    r = parse_chat_response(body, model="llama")
    assert r.id.startswith("chatcmpl_") and r.model == "llama"
    assert r.tool_calls[0].id.startswith("call_") and r.tool_calls[0].arguments == '{"x":1}'
    assert r.finish_reason is FinishReason.TOOL_CALLS
    assert r.usage.estimated and r.usage.output_tokens > 0
    plain = orjson.dumps({"choices": [{"message": {"content": "hi"}, "finish_reason": "abort"}]})
    assert parse_chat_response(plain).finish_reason is FinishReason.STOP


def test_vllm_null_completion_tokens_come_from_the_total() -> None:
    body = resp(
        {"content": "x"}, usage={"prompt_tokens": 5, "completion_tokens": None, "total_tokens": 9}
    )
    assert parse_chat_response(body).usage.output_tokens == 4


def test_bad_bodies_are_upstream_errors() -> None:
    with pytest.raises(UpstreamError):
        parse_chat_response(b"<html>")
    with pytest.raises(UpstreamError):
        parse_chat_response(b'{"choices": []}')
    with pytest.raises(ContextLengthExceeded):
        parse_chat_response(
            b'{"error": {"message": "maximum context length exceeded", "code": 400}}'
        )


def test_embeddings_float_and_base64_sorted_by_index() -> None:
    body = {
        "model": "e",
        "data": [{"index": 1, "embedding": "AACAPw=="}, {"index": 0, "embedding": [0.5]}],
        "usage": {"prompt_tokens": 3},
    }
    out = parse_embeddings(orjson.dumps(body))
    assert out.vectors == [[0.5], [1.0]]
    assert out.usage.input_tokens == 3 and out.model == "e"
    with pytest.raises(UpstreamError):
        parse_embeddings(b'{"data": [{"index": 0, "embedding": null}]}')


# ---- streams -----------------------------------------------------------------------------------


def ev(obj: Any) -> SSEEvent:
    return SSEEvent(data=obj if isinstance(obj, str) else orjson.dumps(obj).decode())


def ch(delta: dict[str, Any], finish: str | None = None, **top: Any) -> SSEEvent:
    return ev(
        {
            "id": "c1",
            "created": 7,
            "model": "gpt-4o",
            "choices": [{"index": 0, "delta": delta, "finish_reason": finish}],
            **top,
        }
    )


def run(
    events: list[SSEEvent], request: ChatRequest = REQ
) -> tuple[list[ChatChunk], OpenAIStreamDecoder]:
    dec = OpenAIStreamDecoder(request, "gpt-4o")
    out: list[ChatChunk] = []
    for e in events:
        out += dec.feed(e)
    out += dec.finish()
    return out, dec


def test_text_stream_with_usage_chunk() -> None:
    usage = {
        "prompt_tokens": 9,
        "completion_tokens": 2,
        "total_tokens": 11,
        "prompt_tokens_details": {"cached_tokens": 4},
    }
    events = [
        ch({"role": "assistant", "content": ""}),
        ch({"content": "Hel"}),
        ch({"content": "lo"}),
        ch({}, "length"),
        ev({"id": "c1", "choices": [], "usage": usage}),
        ev("[DONE]"),
    ]
    out, dec = run(events)
    assert [(c.text, c.role) for c in out[:3]] == [("", "assistant"), ("Hel", None), ("lo", None)]
    assert all(c.id == "c1" and c.created == 7 for c in out)
    final = out[-1]
    assert final.finish_reason is FinishReason.LENGTH
    assert final.usage is not None and final.usage.cached_input_tokens == 4
    assert dec.done and dec.usage_reported


def test_missing_usage_is_counted_and_flagged() -> None:
    out, dec = run([ch({"content": "hello there"}), ch({}, "stop"), ev("[DONE]")])
    usage = out[-1].usage
    assert usage is not None and usage.estimated
    assert usage.output_tokens == 2 and usage.input_tokens > 2
    assert not dec.usage_reported


def test_tool_calls_without_index_and_whole_calls_at_index_zero() -> None:
    events = [
        ch({"tool_calls": [{"id": "a", "function": {"name": "f", "arguments": '{"x"'}}]}),
        ch({"tool_calls": [{"function": {"arguments": ":1}"}}]}),
        ch({"tool_calls": [{"index": 0, "id": "b", "function": {"name": "g", "arguments": "{}"}}]}),
        ch(
            {
                "tool_calls": [
                    {"index": 0, "id": "c", "function": {"name": "h", "arguments": {"y": 2}}}
                ]
            }
        ),
        ev("[DONE]"),
    ]
    out, _ = run(events)
    deltas = [d for c in out for d in c.tool_calls]
    assert [(d.index, d.id, d.name) for d in deltas if d.id] == [
        (0, "a", "f"),
        (1, "b", "g"),
        (2, "c", "h"),
    ]
    assert [d.arguments for d in deltas] == ['{"x"', ":1}", "{}", '{"y":2}']
    assert out[-1].finish_reason is FinishReason.TOOL_CALLS


def test_azure_prompt_filter_chunk_and_other_choices_are_skipped() -> None:
    events = [
        ev({"id": "", "choices": [], "prompt_filter_results": [{"prompt_index": 0}]}),
        ev({"id": "c9", "choices": [{"index": 1, "delta": {"content": "other"}}]}),
        ch({"content": "mine"}),
        ch({}, "content_filter"),
        ev("[DONE]"),
    ]
    out, _ = run(events)
    assert [c.text for c in out] == ["mine", ""]
    assert out[-1].finish_reason is FinishReason.CONTENT_FILTER


def test_comments_and_empty_events_are_ignored_and_nothing_follows_done() -> None:
    dec = OpenAIStreamDecoder(REQ, "m")
    assert dec.feed(SSEEvent(data="", event="ping")) == []
    assert len(dec.feed(ev("[DONE]"))) == 1
    assert dec.feed(ch({"content": "late"})) == []


def test_stream_without_done_is_interrupted() -> None:
    dec = OpenAIStreamDecoder(REQ, "m")
    dec.feed(ch({"content": "x"}, "stop"))
    with pytest.raises(StreamInterrupted, match=r"\[DONE\]"):
        dec.finish()


def test_events_are_decoded_from_their_bytes_and_bad_utf8_is_replaced() -> None:
    raw = b'{"id":"c1","choices":[{"index":0,"delta":{"content":"caf\xc3\xa9 \xff!"}}]}'
    (chunk,) = OpenAIStreamDecoder(REQ, "m").feed(SSEEvent(raw))
    assert chunk.text == "café \ufffd!"
    dec = OpenAIStreamDecoder(REQ, "m")
    assert dec.feed(SSEEvent(b"[DONE]"))[0].finish_reason is FinishReason.STOP and dec.done


@pytest.mark.parametrize("data", ['{"id": "c1", "choi', "[1, 2]", b"{\xff"])
def test_malformed_chunks_are_interrupted(data: str | bytes) -> None:
    with pytest.raises(StreamInterrupted):
        OpenAIStreamDecoder(REQ, "m").feed(SSEEvent(data=data))


@pytest.mark.parametrize(
    ("error", "expected"),
    [
        (
            {
                "message": "Rate limit. Please try again in 20ms.",
                "type": "tokens",
                "code": "rate_limit_exceeded",
            },
            UpstreamRateLimited,
        ),
        (
            {
                "message": "This model's maximum context length is 10",
                "type": "BadRequestError",
                "code": 400,
            },
            ContextLengthExceeded,
        ),
        ({"message": "bad", "type": "BadRequestError", "code": 400}, InvalidRequest),
        ({"message": "An error occurred", "type": "server_error", "code": None}, StreamInterrupted),
        ("plain string", StreamInterrupted),
    ],
)
def test_in_band_errors(error: Any, expected: type[Exception]) -> None:
    with pytest.raises(expected) as info:
        OpenAIStreamDecoder(REQ, "m").feed(ev({"error": error}))
    assert type(info.value) is expected


def test_a_streamed_refusal_is_handed_on_and_counted_as_output() -> None:
    dec = OpenAIStreamDecoder(REQ, "m")
    first = dec.feed(ch({"role": "assistant", "content": None, "refusal": ""}))
    assert [c.refusal for c in first] == [""]  # the role alone
    (piece,) = dec.feed(ch({"refusal": "I can't help with that."}))
    assert piece.refusal == "I can't help with that." and piece.text == ""
    assert dec.feed(ch({"refusal": None})) == []
    dec.feed(ch({}, "stop"))
    (last,) = dec.feed(ev("[DONE]"))
    assert last.usage is not None and last.usage.output_tokens > 0  # counted locally
