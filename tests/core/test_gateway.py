from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from headway.config.load import load
from headway.context import Call, Principal
from headway.errors import (
    AllAttemptsFailed,
    ContentFiltered,
    ModelNotFound,
    PermissionDenied,
    UpstreamError,
)
from headway.gateway import Gateway
from headway.pipeline import ChatHandler, PassThrough, StreamHandler, compose
from headway.types import ChatChunk, ChatRequest, ChatResponse, FinishReason, Message, Usage
from tests.stubs import StubProvider

CONFIG = """
providers: {p: {kind: sim}}
models:
  a: {provider: p, model: a}
  b: {provider: p, model: b}
  e: {provider: p, model: e, embeddings: true}
routes:
  default: {chain: [a, b]}
"""


def gateway(a: StubProvider | None = None, b: StubProvider | None = None) -> Gateway:
    providers = {"a": a or StubProvider("a"), "b": b or StubProvider("b"), "e": StubProvider("e")}
    return Gateway(load(text=CONFIG, env={}), providers=providers)


async def test_chat_with_keyword_arguments() -> None:
    async with gateway() as gw:
        reply = await gw.chat(model="default", messages=[{"role": "user", "content": "hi"}])
    assert reply.content == "a: hi"
    assert reply.finish_reason is FinishReason.STOP


async def test_fallback_to_the_next_deployment_records_depth() -> None:
    a = StubProvider("a", fail=UpstreamError("down"))
    async with gateway(a=a) as gw:
        call = Call(ChatRequest(model="default", messages=(Message("user", "x"),)))
        reply = await gw.chat(call=call)
    assert reply.content == "b: x"
    assert call.served.deployment == "b"
    assert call.served.fallback_depth == 1
    assert call.served.route == "default"


async def test_errors_that_cannot_succeed_elsewhere_are_not_routed_around() -> None:
    a = StubProvider("a", fail=ContentFiltered("blocked"))
    b = StubProvider("b")
    async with gateway(a=a, b=b) as gw:
        with pytest.raises(ContentFiltered):
            await gw.chat(model="default", messages=[{"role": "user", "content": "x"}])
    assert b.calls == 0


async def test_all_attempts_failed_lists_each_attempt() -> None:
    a = StubProvider("a", fail=UpstreamError("a broke"))
    b = StubProvider("b", fail=UpstreamError("b broke"))
    async with gateway(a=a, b=b) as gw:
        with pytest.raises(AllAttemptsFailed) as err:
            await gw.chat(model="default", messages=[{"role": "user", "content": "x"}])
    assert [att.deployment for att in err.value.attempts] == ["a", "b"]
    assert "a broke" in str(err.value) and "b broke" in str(err.value)


async def test_stream_falls_back_before_the_first_chunk() -> None:
    a = StubProvider("a", fail=UpstreamError("down"))
    async with gateway(a=a) as gw:
        text = "".join(
            [
                c.text
                async for c in gw.stream(
                    model="default", messages=[{"role": "user", "content": "y z"}]
                )
            ]
        )
    assert text == "b: y z"


async def test_unknown_model_and_disallowed_model() -> None:
    async with gateway() as gw:
        with pytest.raises(ModelNotFound) as err:
            await gw.chat(model="nope", messages=[{"role": "user", "content": "x"}])
        assert "default" in str(err.value)
        call = Call(
            ChatRequest(model="a", messages=(Message("user", "x"),)),
            principal=Principal(allowed_models=frozenset({"b"})),
        )
        with pytest.raises(PermissionDenied):
            await gw.chat(call=call)


async def test_embed_and_models() -> None:
    async with gateway() as gw:
        out = await gw.embed(model="e", input=["one", "two"])
        assert len(out.vectors) == 2
        with pytest.raises(ModelNotFound):
            await gw.embed(model="a", input="x")
        only_b = Principal(allowed_models=frozenset({"b"}))
        with pytest.raises(PermissionDenied):
            await gw.embed(model="e", input="x", principal=only_b)
        allowed = Principal(allowed_models=frozenset({"e"}))
        assert len((await gw.embed(model="e", input="x", principal=allowed)).vectors) == 1
        ids = [m.id for m in gw.models()]
    assert ids[0] == "default" and {"a", "b", "e"} <= set(ids)


async def test_reload_swaps_routes_atomically() -> None:
    async with gateway() as gw:
        new = CONFIG.replace("[a, b]", "[b, a]")
        await gw.reload(load(text=new, env={}))
        reply = await gw.chat(model="default", messages=[{"role": "user", "content": "x"}])
    assert reply.content == "b: x"


class Tag(PassThrough):
    def __init__(self, tag: str, log: list[str]) -> None:
        self.name = tag
        self.log = log

    async def chat(self, call: Call, nxt: ChatHandler) -> ChatResponse:
        self.log.append(f"{self.name}>")
        out = await nxt(call)
        self.log.append(f"<{self.name}")
        return out

    async def stream(self, call: Call, nxt: StreamHandler) -> AsyncIterator[ChatChunk]:
        self.log.append(f"{self.name}>")
        async for chunk in nxt(call):
            yield chunk
        self.log.append(f"<{self.name}")


class Echo:
    async def chat(self, call: Call) -> ChatResponse:
        return ChatResponse("id", "m", "ok", FinishReason.STOP, Usage())

    async def stream(self, call: Call) -> AsyncIterator[ChatChunk]:
        yield ChatChunk("id", "m", text="ok")


async def test_compose_orders_stages_outermost_first() -> None:
    log: list[str] = []
    chat, stream = compose([Tag("outer", log), Tag("inner", log)], Echo())
    call = Call(ChatRequest(model="m", messages=(Message("user", "x"),)))
    await chat(call)
    assert log == ["outer>", "inner>", "<inner", "<outer"]
    log.clear()
    assert [c.text async for c in stream(call)] == ["ok"]
    assert log == ["outer>", "inner>", "<inner", "<outer"]


async def test_entering_loads_the_encodings_the_deployments_are_counted_in(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Loading a vocabulary holds the event loop for a quarter of a second or more: it happens
    at start-up (and before a reload swaps configs), not on the first call that counts tokens."""
    from headway import tokens

    loaded: list[str] = []
    monkeypatch.setattr(tokens, "get_encoding", lambda name: loaded.append(name))
    text = CONFIG.replace("model: b}", "model: gpt-4}")
    async with Gateway(load(text=text, env={})) as gw:
        assert sorted(loaded) == ["cl100k_base", "o200k_base"]
        loaded.clear()
        await gw.reload(load(text=CONFIG, env={}))
        assert loaded == ["o200k_base"]
