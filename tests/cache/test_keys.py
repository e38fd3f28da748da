"""Normalisation, the canonical request key, the TTL policy and the entry encoding."""

from __future__ import annotations

from dataclasses import replace

from headway.cache.config import CacheConfig, RouteCacheConfig
from headway.cache.entry import Entry, StreamAssembler, decode, encode, replay
from headway.cache.keys import request_key, scope_of, single_turn_text
from headway.cache.normalize import normalize_text
from headway.cache.ttl import TtlPolicy
from headway.types import (
    ChatRequest,
    ChatResponse,
    FinishReason,
    Message,
    ToolCall,
    ToolSpec,
    Usage,
)


def req(text: str, **kw: object) -> ChatRequest:
    return ChatRequest(model="default", messages=(Message("user", text),), **kw)  # type: ignore[arg-type]


def test_normalisation_folds_case_space_punctuation_and_filler() -> None:
    assert normalize_text("  Hi, could you please tell me  the Capital of Peru?? Thanks! ") == (
        "tell me the capital of peru"
    )
    assert normalize_text("Why can't I log in?") == normalize_text("why can not i log in")


def test_normalisation_keeps_meaning_words_and_code() -> None:
    assert "not" in normalize_text("Please do not delete it")
    assert "50" in normalize_text("Just convert 50 USD")
    assert "paris" in normalize_text("Maybe Paris?")
    assert "`X = a[1]`" in normalize_text("Fix `X = a[1]` please")


def test_key_ignores_phrasing_noise_only() -> None:
    base = request_key(req("What is the capital of Peru?"), "t1")
    assert request_key(req("what is the capital of peru"), "t1") == base
    assert request_key(req("Please, what is the capital of Peru? Thanks!"), "t1") == base
    assert request_key(req("What is not the capital of Peru?"), "t1") != base


def test_key_covers_everything_that_changes_the_answer() -> None:
    r = req("hi there, what is 2+2")
    base = request_key(r, "t1")
    variants = [
        replace(r, model="other"),
        replace(r, temperature=0.5),
        replace(r, top_p=0.9),
        replace(r, seed=7),
        replace(r, response_format={"type": "json_object"}),
        replace(r, tools=(ToolSpec("calc", "adds", {"type": "object"}),)),
        replace(r, tool_choice="none"),
        replace(r, messages=(Message("system", "Answer in French."), *r.messages)),
    ]
    keys = {request_key(v, "t1") for v in variants}
    assert base not in keys and len(keys) == len(variants)
    assert request_key(r, "t2") != base
    assert base.startswith("hw1.1:t1:")


def test_scope_and_single_turn() -> None:
    r = replace(req("hello"), messages=(Message("system", "Be brief."), Message("user", "hello")))
    s = scope_of(r, "acme")
    assert s.tenant == "acme" and s.system != "-" and s.tools == "-"
    assert single_turn_text(r) == "hello"
    multi = replace(r, messages=(*r.messages, Message("assistant", "hi"), Message("user", "more")))
    assert single_turn_text(multi) is None


def test_ttl_policy_per_task_and_sampling() -> None:
    policy = TtlPolicy(
        CacheConfig(ttl={"qa": 7200}, routes={"poet": RouteCacheConfig(cache_sampled=True)})
    )
    assert policy.cacheable(req("x"), "classification").ttl_s == 48 * 3600
    assert policy.cacheable(req("x"), "qa").ttl_s == 7200
    assert not policy.cacheable(req("x"), "creative").store
    assert policy.cacheable(req("x", temperature=0.7), "qa").reason == "sampled"
    assert policy.cacheable(replace(req("x", temperature=0.7), model="poet"), "qa").store
    assert policy.cacheable(req("x", temperature=0.0), None).ttl_s == 3600


def _response() -> ChatResponse:
    return ChatResponse(
        id="c1",
        model="m",
        content="Lima is the capital.",
        finish_reason=FinishReason.STOP,
        usage=Usage(10, 5),
        tool_calls=(ToolCall("t1", "calc", '{"a": 1}'),),
        created=3,
    )


def test_entry_round_trip_and_stream_replay_reassembles() -> None:
    entry = Entry(_response(), 100.0, 200.0, "t1", "default", "q")
    back = decode(encode(entry))
    assert back == entry
    assembler = StreamAssembler()
    chunks = list(replay(_response(), piece=4))
    assert chunks[0].role == "assistant" and chunks[-1].finish_reason == FinishReason.STOP
    for chunk in chunks:
        assembler.add(chunk)
    assert assembler.complete
    assert assembler.response() == _response()


def test_assembler_is_incomplete_without_finish() -> None:
    assembler = StreamAssembler()
    for chunk in list(replay(_response()))[:-1]:
        assembler.add(chunk)
    assert not assembler.complete


def test_tenant_with_separator_cannot_collide() -> None:
    a = request_key(req("q"), "a:b")
    assert a.split(":")[1] == "a%3Ab"
    assert request_key(req("q"), "a%3Ab") != a


def _sequential_contractions(text: str) -> str:
    """The reference: every contraction pass, in order, whatever the text."""
    from headway.cache.normalize import _CONTRACTIONS

    for pattern, repl in _CONTRACTIONS:
        text = pattern.sub(repl, text)
    return text


def test_contraction_shortcuts_give_the_same_text_as_every_pass() -> None:
    from headway.cache.normalize import expand_contractions

    samples = [
        "no apostrophe here",
        "i cannot see it",
        "cannot, can't, won't",
        "wouldn't've",  # a later pass rewrites an earlier one's output
        "don't's",
        "it's the ticket's category; how'd she'd we're they've you'll i'm let's ain't shan't",
        "cannotx xcannot",
        "",
    ]
    for text in samples:
        assert expand_contractions(text) == _sequential_contractions(text), text
    # and the exact key's normal form of non-ASCII text still goes through NFKC
    assert normalize_text("Ｗorld ﬁle café") == "world file café"
    assert normalize_text("Don’t `Keep Case`") == "do not `Keep Case`"
