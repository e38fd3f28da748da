"""End to end: a key made through the admin API, used with the official `openai` SDK, its spend
seen through `/admin/usage`, then revoked and refused."""

from __future__ import annotations

from pathlib import Path

import aiohttp
import openai
import pytest
from openai.types.chat import ChatCompletionMessageParam

from headway.config.load import load
from headway.gateway import Gateway
from tests.server.helpers import running, sim_config_text, sim_gateway
from tests.server.test_admin import MASTER, Admin

USER: list[ChatCompletionMessageParam] = [{"role": "user", "content": "Say hello."}]


def client(base: str, key: str) -> openai.AsyncOpenAI:
    return openai.AsyncOpenAI(base_url=f"{base}/v1", api_key=key, max_retries=0)


async def test_key_lifecycle_with_the_openai_sdk(tmp_path: Path) -> None:
    gateway = sim_gateway(tmp_path, master_key=MASTER)
    async with running(gateway) as base, aiohttp.ClientSession() as session:
        admin = Admin(session, base)
        status, created = await admin.call("POST", "/admin/keys", json={"tenant": "acme"})
        assert status == 201
        token, key_id = created["key"], created["id"]
        async with client(base, token) as c:
            reply = await c.chat.completions.create(model="default", messages=USER)
            assert reply.choices[0].message.content

        status, _ = await admin.call("DELETE", f"/admin/keys/{key_id}")
        assert status == 200
        async with client(base, token) as c:
            with pytest.raises(openai.AuthenticationError) as info:
                await c.chat.completions.create(model="default", messages=USER)
        assert info.value.status_code == 401
        assert info.value.code == "invalid_api_key"


def limited_gateway(tmp_path: Path) -> Gateway:
    """The sim behind the limits stage, which settles each call and emits `call.settled`."""
    text = sim_config_text(tmp_path, master_key=MASTER) + "limits:\n  enabled: true\n"
    return Gateway(load(text=text, env={}))


@pytest.mark.parametrize("limits", [True, False], ids=["limits-on", "defaults"])
async def test_spend_of_sdk_calls_shows_in_admin_usage(tmp_path: Path, limits: bool) -> None:
    # with limits and budgets off (the default) the settle-only stage records the spend
    gateway = limited_gateway(tmp_path) if limits else sim_gateway(tmp_path, master_key=MASTER)
    async with running(gateway) as base, aiohttp.ClientSession() as session:
        admin = Admin(session, base)
        _, created = await admin.call(
            "POST", "/admin/keys", json={"tenant": "acme", "user": "ann", "team": "ads"}
        )
        key_id = created["id"]
        async with client(base, created["key"]) as c:
            reply = await c.chat.completions.create(model="default", messages=USER)
            stream = await c.chat.completions.create(
                model="default",
                messages=USER,
                stream=True,
                stream_options={"include_usage": True},
            )
            chunks = [chunk async for chunk in stream]
        assert reply.usage is not None
        streamed = chunks[-1].usage
        assert streamed is not None

        status, usage = await admin.call("GET", f"/admin/usage?group_by=key&key={key_id}")
        assert status == 200
        (row,) = usage["data"]
        assert row["key"] == key_id and row["requests"] == 2
        assert row["input_tokens"] == reply.usage.prompt_tokens + streamed.prompt_tokens
        assert row["output_tokens"] == reply.usage.completion_tokens + streamed.completion_tokens
        assert row["cost_usd"] > 0
        _, by_user = await admin.call("GET", "/admin/usage?group_by=user")
        assert [(r["user"], r["requests"]) for r in by_user["data"]] == [("ann", 2)]
        _, by_team = await admin.call("GET", "/admin/usage?group_by=team")
        assert [(r["team"], r["requests"]) for r in by_team["data"]] == [("ads", 2)]


async def test_a_key_limited_to_some_models_is_refused_others(tmp_path: Path) -> None:
    gateway = sim_gateway(tmp_path, master_key=MASTER)
    async with running(gateway) as base, aiohttp.ClientSession() as session:
        admin = Admin(session, base)
        _, created = await admin.call("POST", "/admin/keys", json={"allowed_models": ["sim-small"]})
        async with client(base, created["key"]) as c:
            ok = await c.chat.completions.create(model="sim-small", messages=USER)
            assert ok.choices[0].message.content
            models = await c.models.list()
            assert "sim-large" not in {m.id for m in models.data}
            with pytest.raises(openai.APIStatusError) as info:
                await c.chat.completions.create(model="sim-large", messages=USER)
            with pytest.raises(openai.PermissionDeniedError) as denied:
                await c.embeddings.create(model="sim-embed", input="x")
            with pytest.raises(openai.NotFoundError):  # unknown to everyone: 404 first
                await c.embeddings.create(model="no-such-embed", input="x")
        assert info.value.status_code in (403, 404)
        assert denied.value.status_code == 403 and "sim-embed" in denied.value.message


async def test_unknown_keys_are_401_for_the_sdk(tmp_path: Path) -> None:
    gateway = sim_gateway(tmp_path, master_key=MASTER)
    async with running(gateway) as base, client(base, "hw-never-issued") as c:
        with pytest.raises(openai.AuthenticationError):
            await c.chat.completions.create(model="default", messages=USER)


async def test_a_keys_own_rate_limit_applies(tmp_path: Path) -> None:
    gateway = limited_gateway(tmp_path)
    async with running(gateway) as base, aiohttp.ClientSession() as session:
        admin = Admin(session, base)
        _, created = await admin.call("POST", "/admin/keys", json={"limits": {"rpm": 1}})
        _, other = await admin.call("POST", "/admin/keys", json={})
        async with client(base, created["key"]) as c:
            await c.chat.completions.create(model="default", messages=USER)
            with pytest.raises(openai.RateLimitError):
                await c.chat.completions.create(model="default", messages=USER)
        async with client(base, other["key"]) as c:  # another key is not held back
            await c.chat.completions.create(model="default", messages=USER)
