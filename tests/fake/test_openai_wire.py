"""The OpenAI fake's exact bytes: SSE framing, fault shapes, headers, control and stats."""

from __future__ import annotations

import asyncio
import re
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import orjson
import pytest
from multidict import CIMultiDict

from headway.providers.fake import RunningFake, running_fake

GO_DURATION = re.compile(r"^(?:(\d+)h)?(?:(\d+)m(?!s))?(?:(\d+(?:\.\d+)?)s)?(?:(\d+)ms)?$")
BODY: dict[str, Any] = {
    "model": "gpt-4o-mini",
    "messages": [{"role": "user", "content": "framing sim:tokens=5"}],
}
TOOL = {
    "type": "function",
    "function": {
        "name": "lookup",
        "parameters": {
            "type": "object",
            "properties": {"q": {"type": "string"}},
            "required": ["q"],
        },
    },
}


@pytest.fixture
async def fake() -> AsyncIterator[RunningFake]:
    async with running_fake("openai") as running:
        yield running


@pytest.fixture
async def http() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as session:
        yield session


async def post(
    http: aiohttp.ClientSession,
    fake: RunningFake,
    body: dict[str, Any],
    path: str = "/chat/completions",
) -> tuple[int, CIMultiDict[str], bytes]:
    async with http.post(fake.url + path, json=body) as resp:
        return resp.status, resp.headers.copy(), await resp.read()


def events(raw: bytes) -> list[str]:
    text = raw.decode()
    assert text.endswith("\n\n")
    frames = text[:-2].split("\n\n")
    for frame in frames:
        assert "\n" not in frame and frame.startswith("data: ")  # one data line, no event: lines
    return [f[len("data: ") :] for f in frames]


async def test_stream_framing_with_usage(fake: RunningFake, http: aiohttp.ClientSession) -> None:
    body = {**BODY, "stream": True, "stream_options": {"include_usage": True}}
    status, headers, raw = await post(http, fake, body)
    assert status == 200
    assert headers["Content-Type"].startswith("text/event-stream")
    data = events(raw)
    assert data[-1] == "[DONE]"
    chunks = [orjson.loads(d) for d in data[:-1]]
    assert len({(c["id"], c["created"], c["model"]) for c in chunks}) == 1
    assert all(c["object"] == "chat.completion.chunk" for c in chunks)
    assert all("usage" in c for c in chunks)
    role, *content, finish, usage = chunks
    assert role["choices"][0]["delta"] == {"role": "assistant", "content": "", "refusal": None}
    assert len(content) == 5
    assert all(set(c["choices"][0]["delta"]) == {"content"} for c in content)
    assert all(c["choices"][0]["finish_reason"] is None and c["usage"] is None for c in content)
    assert finish["choices"][0]["delta"] == {}
    assert finish["choices"][0]["finish_reason"] == "stop"
    assert usage["choices"] == []
    assert usage["usage"]["completion_tokens"] == 5
    assert usage["usage"]["total_tokens"] == usage["usage"]["prompt_tokens"] + 5


async def test_stream_without_usage_has_no_usage_key(
    fake: RunningFake, http: aiohttp.ClientSession
) -> None:
    _, _, raw = await post(http, fake, {**BODY, "stream": True})
    chunks = [orjson.loads(d) for d in events(raw)[:-1]]
    assert all("usage" not in c for c in chunks)
    assert chunks[-1]["choices"][0]["finish_reason"] == "stop"


async def test_tool_call_fragments(fake: RunningFake, http: aiohttp.ClientSession) -> None:
    body = {**BODY, "stream": True, "tools": [TOOL], "tool_choice": "required"}
    _, _, raw = await post(http, fake, body)
    chunks = [orjson.loads(d) for d in events(raw)[:-1]]
    first = chunks[0]["choices"][0]["delta"]
    assert first["role"] == "assistant" and first["content"] is None
    (opening,) = first["tool_calls"]
    assert opening["index"] == 0 and opening["type"] == "function"
    assert opening["id"].startswith("call_")
    assert opening["function"] == {"name": "lookup", "arguments": ""}
    rest = [c["choices"][0]["delta"]["tool_calls"][0] for c in chunks[1:-1]]
    assert all(
        set(r) == {"index", "function"} and set(r["function"]) == {"arguments"} for r in rest
    )
    args = orjson.loads("".join(r["function"]["arguments"] for r in rest))
    assert isinstance(args["q"], str)
    assert chunks[-1]["choices"][0] == {
        "index": 0,
        "delta": {},
        "logprobs": None,
        "finish_reason": "tool_calls",
    }


async def test_cut_stream_ends_without_done_or_usage(
    fake: RunningFake, http: aiohttp.ClientSession
) -> None:
    await fake.control(cut_after_tokens=2)
    body = {**BODY, "stream": True, "stream_options": {"include_usage": True}}
    _, _, raw = await post(http, fake, body)
    data = events(raw)
    assert "[DONE]" not in data
    chunks = [orjson.loads(d) for d in data]
    assert len(chunks) == 3  # role chunk + two tokens
    assert all(c["choices"] for c in chunks)


async def test_cut_in_reset_mode_drops_the_connection(
    fake: RunningFake, http: aiohttp.ClientSession
) -> None:
    await fake.control(cut_after_tokens=2, cut_mode="reset")
    with pytest.raises(aiohttp.ClientPayloadError):
        await post(http, fake, {**BODY, "stream": True})


async def test_malformed_chunk(fake: RunningFake, http: aiohttp.ClientSession) -> None:
    await fake.control(malformed_after_tokens=1)
    _, _, raw = await post(http, fake, {**BODY, "stream": True})
    data = events(raw)
    orjson.loads(data[0])
    with pytest.raises(orjson.JSONDecodeError):
        orjson.loads(data[-1])
    assert "[DONE]" not in data


async def test_in_band_error_event(fake: RunningFake, http: aiohttp.ClientSession) -> None:
    await fake.control(error_after_tokens=0)
    _, _, raw = await post(http, fake, {**BODY, "stream": True})
    data = events(raw)
    error = orjson.loads(data[-1])
    assert set(error) == {"error"}
    assert error["error"]["type"] == "server_error"
    assert "[DONE]" not in data


async def test_every_response_carries_the_headers(
    fake: RunningFake, http: aiohttp.ClientSession
) -> None:
    await fake.control(rpm=3, tpm=90_000)
    _, ok, _ = await post(http, fake, BODY)
    status, missing, raw = await post(http, fake, {"model": "gpt-4o-mini"})
    assert status == 400
    err = orjson.loads(raw)["error"]
    assert (err["type"], err["param"]) == ("invalid_request_error", "messages")
    assert set(err) == {"message", "type", "param", "code"}
    async with http.get(fake.url + "/models") as resp:
        listed = resp.headers.copy()
    for headers in (ok, missing, listed):
        assert headers["x-request-id"].startswith("req_")
        assert headers["x-ratelimit-limit-requests"] == "3"
        assert headers["x-ratelimit-limit-tokens"] == "90000"
        assert GO_DURATION.match(headers["x-ratelimit-reset-requests"])
        assert GO_DURATION.match(headers["x-ratelimit-reset-tokens"])
    assert ok["x-ratelimit-remaining-requests"] == "2"
    # one of 3 requests a minute refills in 20 s, less the (real) time since it was taken
    assert re.fullmatch(r"20s|19\.9\d*s", ok["x-ratelimit-reset-requests"])
    assert ok["x-request-id"] != missing["x-request-id"]


@pytest.mark.parametrize(
    ("body", "param"),
    [
        ({"messages": [{"role": "user", "content": "x"}]}, "model"),
        ({**BODY, "messages": [{"role": "robot", "content": "x"}]}, "messages[0].role"),
        ({**BODY, "stream_options": {"include_usage": True}}, "stream_options"),
        ({**BODY, "tool_choice": "auto"}, "tool_choice"),
        ({**BODY, "max_tokens": 0}, "max_tokens"),
        ({**BODY, "temperature": 3}, "temperature"),
    ],
)
async def test_invalid_requests_are_400(
    fake: RunningFake, http: aiohttp.ClientSession, body: dict[str, Any], param: str
) -> None:
    status, _, raw = await post(http, fake, body)
    assert status == 400
    assert orjson.loads(raw)["error"]["param"] == param


async def test_unparseable_body_and_unknown_url(
    fake: RunningFake, http: aiohttp.ClientSession
) -> None:
    async with http.post(fake.url + "/chat/completions", data=b"{nope") as resp:
        assert resp.status == 400
        assert (await resp.json())["error"]["type"] == "invalid_request_error"
    async with http.post(fake.url + "/nothing/here", json={}) as resp:
        assert resp.status == 404
        assert (await resp.json())["error"]["code"] == "unknown_url"


async def test_embeddings_float_and_errors(fake: RunningFake, http: aiohttp.ClientSession) -> None:
    body = {"model": "text-embedding-3-small", "input": [[1, 2, 3], [4, 5]], "dimensions": 8}
    status, _, raw = await post(http, fake, body, "/embeddings")
    assert status == 200
    reply = orjson.loads(raw)
    assert reply["object"] == "list"
    assert [len(d["embedding"]) for d in reply["data"]] == [8, 8]
    assert reply["usage"] == {"prompt_tokens": 5, "total_tokens": 5}
    status, _, raw = await post(http, fake, {"model": "m", "input": ""}, "/embeddings")
    assert (status, orjson.loads(raw)["error"]["param"]) == (400, "input")
    bad_format = {"model": "m", "input": "x", "encoding_format": "hex"}
    assert (await post(http, fake, bad_format, "/embeddings"))[0] == 400


async def test_known_models_only() -> None:
    async with (
        running_fake("openai", models=["a-model"], known_models_only=True) as fake,
        aiohttp.ClientSession() as http,
    ):
        assert (await post(http, fake, {**BODY, "model": "a-model"}))[0] == 200
        status, _, raw = await post(http, fake, BODY)
        assert status == 404
        assert orjson.loads(raw)["error"]["code"] == "model_not_found"


async def test_control_validation_and_reset(fake: RunningFake) -> None:
    with pytest.raises(ValueError, match="no_such"):
        await fake.control(no_such=1)
    with pytest.raises(ValueError):
        await fake.control(cut_mode="explode")
    state = await fake.control(error_rate=0.5, rpm=10, outage=30)
    assert state["settings"]["error_rate"] == 0.5 and state["outages"] == 1
    state = await fake.reset()
    assert state["settings"]["error_rate"] == 0.0 and state["settings"]["rpm"] is None
    assert state["outages"] == 0
    assert (await fake.stats())["requests"] == 0


async def test_outage_over_http(fake: RunningFake, http: aiohttp.ClientSession) -> None:
    await fake.control(outage=True)
    status, _, raw = await post(http, fake, BODY)
    assert status == 503
    assert orjson.loads(raw)["error"]["type"] == "server_error"
    await fake.control(outage=False)
    assert (await post(http, fake, BODY))[0] == 200
    assert (await fake.stats())["errors_injected"] == 1


async def test_a_hung_request_ends_when_the_client_gives_up(
    fake: RunningFake, http: aiohttp.ClientSession
) -> None:
    await fake.control(hang=True)
    task = asyncio.ensure_future(post(http, fake, BODY))
    for _ in range(500):  # wait for the request to reach the engine (I/O, not a timer)
        if fake.engine.stats.hangs:
            break
        await asyncio.sleep(0.002)
    assert fake.engine.stats.in_flight == 1
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    for _ in range(500):
        if fake.engine.stats.in_flight == 0:
            break
        await asyncio.sleep(0.002)
    assert fake.engine.stats.in_flight == 0
    assert (await fake.stats())["max_concurrent"] == 1
