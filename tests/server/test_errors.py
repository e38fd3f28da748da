"""Every failure is an OpenAI-shaped answer the SDK maps to its typed exception; never a 500 for
bad input, and the server stays up after a bug."""

from __future__ import annotations

from typing import Any, cast

import aiohttp
import openai
import pytest
from openai.types.chat import ChatCompletionMessageParam

from headway.errors import BudgetExceeded, UpstreamError, UpstreamRateLimited
from headway.server.http import Request, Response
from headway.server.routes import MOUNTS, Router, ServerContext
from tests.server.helpers import Scripted, fails, running, scripted_gateway

USER: list[ChatCompletionMessageParam] = [{"role": "user", "content": "hi"}]


def client(base: str, key: str = "sk-test") -> openai.AsyncOpenAI:
    return openai.AsyncOpenAI(base_url=f"{base}/v1", api_key=key, max_retries=0)


async def post(base: str, path: str, data: bytes | str, **headers: str) -> tuple[int, Any, Any]:
    async with (
        aiohttp.ClientSession() as session,
        session.post(base + path, data=data, headers=headers) as resp,
    ):
        return resp.status, await resp.json(content_type=None), resp.headers


def assert_openai_error(body: Any, type_: str, code: str | None, param: str | None) -> None:
    assert set(body) == {"error"}
    assert set(body["error"]) == {"message", "type", "param", "code"}
    assert body["error"]["message"]
    assert (body["error"]["type"], body["error"]["code"], body["error"]["param"]) == (
        type_,
        code,
        param,
    )


async def test_malformed_json_is_400() -> None:
    async with running(scripted_gateway()) as base:
        status, body, headers = await post(base, "/v1/chat/completions", "{not json")
        status2, body2, _ = await post(base, "/v1/chat/completions", "[1, 2]")
    assert status == 400 and status2 == 400
    assert_openai_error(body, "invalid_request_error", None, None)
    assert "JSON" in body["error"]["message"] and "object" in body2["error"]["message"]
    assert headers["x-request-id"].startswith("req_") and headers["x-should-retry"] == "false"


@pytest.mark.parametrize(
    ("payload", "param"),
    [
        ({"messages": USER}, "model"),
        ({"model": "m"}, "messages"),
        ({"model": "m", "messages": [{"content": "x"}]}, "messages[0].role"),
        ({"model": "m", "messages": [{"role": "user"}]}, "messages[0].content"),
        ({"model": "m", "messages": USER, "max_tokens": "ten"}, "max_tokens"),
    ],
)
async def test_missing_or_mistyped_fields_name_the_param(
    payload: dict[str, Any], param: str
) -> None:
    import orjson

    async with running(scripted_gateway()) as base:
        status, body, _ = await post(base, "/v1/chat/completions", orjson.dumps(payload))
    assert status == 400
    assert_openai_error(body, "invalid_request_error", None, param)


async def test_sdk_gets_bad_request_errors_with_param() -> None:
    async with running(scripted_gateway()) as base, client(base) as c:
        with pytest.raises(openai.BadRequestError) as role:
            await c.chat.completions.create(
                model="m", messages=cast(Any, [{"role": "wizard", "content": "x"}])
            )
        with pytest.raises(openai.BadRequestError) as temp:
            await c.chat.completions.create(model="m", messages=USER, temperature=3)
        with pytest.raises(openai.BadRequestError) as tokens:
            await c.chat.completions.create(model="m", messages=USER, max_tokens=0)
        with pytest.raises(openai.BadRequestError) as tools:
            await c.chat.completions.create(
                model="m",
                messages=USER,
                tools=[{"type": "function", "function": {"name": "has space"}}],
            )
    assert role.value.param == "messages[0].role" and role.value.status_code == 400
    assert temp.value.param == "temperature"
    assert tokens.value.param == "max_tokens"
    assert tools.value.param == "tools[0].function.name"


async def test_unknown_model_is_not_found() -> None:
    async with running(scripted_gateway()) as base, client(base) as c:
        with pytest.raises(openai.NotFoundError) as chat:
            await c.chat.completions.create(model="gpt-17", messages=USER)
        with pytest.raises(openai.NotFoundError) as stream:
            await c.chat.completions.create(model="gpt-17", messages=USER, stream=True)
        with pytest.raises(openai.NotFoundError) as embed:
            await c.embeddings.create(model="m9", input="x")
    for exc in (chat, stream, embed):
        assert exc.value.code == "model_not_found" and exc.value.param == "model"


async def test_master_key_auth() -> None:
    async with running(scripted_gateway(master_key="sk-master")) as base:
        async with client(base, "sk-wrong") as c:
            with pytest.raises(openai.AuthenticationError) as wrong:
                await c.chat.completions.create(model="m", messages=USER)
            with pytest.raises(openai.AuthenticationError):
                await c.models.list()
        async with client(base, "sk-master") as c:
            ok = await c.chat.completions.create(model="m", messages=USER)
        status, body, _ = await post(base, "/v1/chat/completions", b"{}")
        status_x, _, _ = await post(
            base,
            "/v1/chat/completions",
            b'{"model":"m","messages":[{"role":"user","content":"x"}]}',
            **{"x-api-key": "sk-master"},
        )
        async with aiohttp.ClientSession() as session, session.get(base + "/health") as health:
            assert health.status == 200  # liveness needs no key
    assert wrong.value.code == "invalid_api_key" and wrong.value.status_code == 401
    assert ok.choices[0].message.content == "Hello there!"
    assert status == 401 and body["error"]["code"] == "missing_api_key"
    assert status_x == 200


async def test_oversize_body_is_413_from_header_and_while_reading() -> None:
    big = b'{"model":"m","messages":[{"role":"user","content":"' + b"x" * 5000 + b'"}]}'

    async def chunks() -> Any:  # no Content-Length: the limit must hold while reading
        for i in range(0, len(big), 1000):
            yield big[i : i + 1000]

    async with running(scripted_gateway(), max_body_bytes=2048) as base:
        status, body, _ = await post(base, "/v1/chat/completions", big)
        async with (
            aiohttp.ClientSession() as session,
            session.post(base + "/v1/chat/completions", data=chunks()) as resp,
        ):
            status_chunked, body_chunked = resp.status, await resp.json()
        async with client(base) as c:
            with pytest.raises(openai.APIStatusError) as sdk:
                await c.chat.completions.create(
                    model="m", messages=[{"role": "user", "content": "x" * 5000}]
                )
    assert status == 413 and status_chunked == 413 and sdk.value.status_code == 413
    assert_openai_error(body, "invalid_request_error", "request_too_large", None)
    assert body_chunked["error"]["code"] == "request_too_large"


async def test_wrong_method_and_unknown_path() -> None:
    async with running(scripted_gateway()) as base, aiohttp.ClientSession() as session:
        async with session.get(base + "/v1/chat/completions") as resp:
            status405, body405, allow = resp.status, await resp.json(), resp.headers["allow"]
        async with session.post(base + "/v1/nothing", data=b"{}") as resp:
            status404, body404 = resp.status, await resp.json()
    assert status405 == 405 and allow == "POST"
    assert_openai_error(body405, "invalid_request_error", "method_not_allowed", None)
    assert status404 == 404 and body404["error"]["code"] == "unknown_url"


def mount_buggy(router: Router, server: ServerContext) -> None:
    async def boom(req: Request) -> Response:
        raise ZeroDivisionError("a bug")

    router.get("/v1/boom", boom, auth="none")


async def test_a_bug_is_a_logged_500_and_the_server_stays_up(
    caplog: pytest.LogCaptureFixture,
) -> None:
    mounts = (*MOUNTS, "tests.server.test_errors:mount_buggy")
    async with (
        running(scripted_gateway(), mounts=mounts) as base,
        aiohttp.ClientSession() as session,
    ):
        async with session.get(base + "/v1/boom") as resp:
            status, body, rid = resp.status, await resp.json(), resp.headers["x-request-id"]
        async with session.get(base + "/health") as resp:
            assert resp.status == 200
    assert status == 500
    assert_openai_error(body, "server_error", "internal_error", None)
    assert rid in body["error"]["message"]
    assert any(rid in r.getMessage() and r.exc_info for r in caplog.records)


async def test_stream_failure_before_first_token_is_a_plain_http_error() -> None:
    gw = scripted_gateway(fails(UpstreamError("upstream down", upstream_status=503)))
    async with running(gw) as base, client(base) as c:
        with pytest.raises(openai.InternalServerError) as exc:
            await c.chat.completions.create(model="solo", messages=USER, stream=True)
    assert exc.value.status_code == 502 and exc.value.code == "upstream_error"


async def test_stream_failure_after_first_token_is_in_band_apierror() -> None:
    gw = scripted_gateway(Scripted("m", fail_after=UpstreamError("connection reset"), fail_at=2))
    seen: list[str] = []
    async with running(gw) as base, client(base) as c:
        stream = await c.chat.completions.create(model="solo", messages=USER, stream=True)
        with pytest.raises(openai.APIError) as exc:
            async for chunk in stream:
                seen.append(chunk.choices[0].delta.content or "")
    assert not isinstance(exc.value, openai.APIStatusError)
    assert "connection reset" in exc.value.message
    assert "".join(seen) == "Hello there"


async def test_retry_steering_headers() -> None:
    limited = fails(UpstreamRateLimited("slow down", retry_after=2.5))
    both = scripted_gateway(
        fails(UpstreamError("a down")), Scripted("m2", fail_before=UpstreamError("b down"))
    )
    payload = b'{"model":"%s","messages":[{"role":"user","content":"x"}]}'
    async with running(scripted_gateway(limited)) as base:
        status, body, headers = await post(base, "/v1/chat/completions", payload % b"solo")
    assert status == 429 and body["error"]["type"] == "rate_limit_exceeded"
    assert headers["retry-after"] == "3" and headers["retry-after-ms"] == "2500"
    assert "x-should-retry" not in headers  # one attempt: the client may retry after the delay
    async with running(both) as base:
        status, body, headers = await post(base, "/v1/chat/completions", payload % b"both")
    assert status == 502 and body["error"]["code"] == "all_attempts_failed"
    assert headers["x-should-retry"] == "false"  # headway already tried every deployment
    async with running(scripted_gateway(fails(BudgetExceeded("budget spent")))) as base:
        status, body, headers = await post(base, "/v1/chat/completions", payload % b"m")
    assert status == 429 and body["error"]["type"] == "insufficient_quota"
    assert headers["x-should-retry"] == "false"
