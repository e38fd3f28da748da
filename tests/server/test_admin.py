"""The admin API over real HTTP: master-key protection, keys, usage, OpenAI-shaped errors."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from headway.context import Call, Principal
from headway.gateway import Gateway
from headway.types import ChatRequest, Message, Usage
from tests.server.helpers import running, sim_gateway

MASTER = "sk-master-test"


class Admin:
    """A tiny admin client: every call returns (status, JSON body)."""

    def __init__(self, session: aiohttp.ClientSession, base: str, key: str | None = MASTER):
        self.session = session
        self.base = base
        self.key = key

    async def call(
        self, method: str, path: str, *, json: Any = None, data: bytes | None = None
    ) -> tuple[int, Any]:
        headers = {"authorization": f"Bearer {self.key}"} if self.key else {}
        async with self.session.request(
            method, self.base + path, json=json, data=data, headers=headers
        ) as resp:
            return resp.status, await resp.json(content_type=None)


@pytest.fixture
async def served(tmp_path: Path) -> AsyncIterator[tuple[Gateway, Admin]]:
    gateway = sim_gateway(tmp_path, master_key=MASTER)
    async with running(gateway) as base, aiohttp.ClientSession() as session:
        yield gateway, Admin(session, base)


def assert_openai_error(body: Any, *, param: str | None = None) -> None:
    error = body["error"]
    assert isinstance(error["message"], str) and error["message"]
    assert "type" in error and "code" in error
    if param is not None:
        assert error["param"] == param


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("POST", "/admin/keys"),
        ("GET", "/admin/keys"),
        ("GET", "/admin/keys/key_x"),
        ("DELETE", "/admin/keys/key_x"),
        ("GET", "/admin/usage"),
    ],
)
async def test_admin_routes_need_the_master_key(
    served: tuple[Gateway, Admin], method: str, path: str
) -> None:
    _, admin = served
    anonymous = Admin(admin.session, admin.base, key=None)
    status, body = await anonymous.call(method, path, json={})
    assert status == 401
    assert_openai_error(body)
    wrong = Admin(admin.session, admin.base, key="hw-wrong")
    status, _ = await wrong.call(method, path, json={})
    assert status == 401


async def test_a_client_key_is_not_an_admin_key(served: tuple[Gateway, Admin]) -> None:
    _, admin = served
    _, created = await admin.call("POST", "/admin/keys", json={"tenant": "acme"})
    client = Admin(admin.session, admin.base, key=created["key"])
    status, body = await client.call("GET", "/admin/keys")
    assert status == 403
    assert_openai_error(body)


async def test_create_shows_the_plaintext_once(served: tuple[Gateway, Admin]) -> None:
    _, admin = served
    status, created = await admin.call(
        "POST",
        "/admin/keys",
        json={
            "tenant": "acme",
            "name": "ci",
            "user": "ann",
            "team": "ads",
            "allowed_models": ["sim-small"],
            "limits": {"rpm": 60},
            "budgets": {"usd_per_day": 5},
        },
    )
    assert status == 201
    assert created["key"].startswith("hw-") and created["key"].startswith(created["prefix"])
    assert created["id"].startswith("key_") and created["status"] == "active"
    assert (created["tenant"], created["user"], created["team"]) == ("acme", "ann", "ads")
    assert created["allowed_models"] == ["sim-small"]
    assert created["limits"] == {"rpm": 60} and created["budgets"] == {"usd_per_day": 5}
    status, listed = await admin.call("GET", "/admin/keys")
    assert status == 200 and listed["object"] == "list"
    (shown,) = listed["data"]
    assert shown["id"] == created["id"]
    assert "key" not in shown and "key_hash" not in shown
    assert created["key"] not in str(listed)
    status, one = await admin.call("GET", f"/admin/keys/{created['id']}")
    assert status == 200 and one["id"] == created["id"] and "key" not in one


@pytest.mark.parametrize(
    ("body", "param"),
    [
        ({"tenant": ""}, "tenant"),
        ({"allowed_models": "sim-small"}, "allowed_models"),
        ({"limits": {"rpm": -5}}, "limits.rpm"),
        ({"budgets": {"usd_per_year": 5}}, "budgets.usd_per_year"),
        ({"owner": "x"}, "owner"),
    ],
)
async def test_bad_create_bodies_are_400(
    served: tuple[Gateway, Admin], body: dict[str, Any], param: str
) -> None:
    _, admin = served
    status, answer = await admin.call("POST", "/admin/keys", json=body)
    assert status == 400
    assert_openai_error(answer, param=param)
    assert answer["error"]["type"] == "invalid_request_error"


async def test_malformed_json_and_non_objects_are_400(served: tuple[Gateway, Admin]) -> None:
    _, admin = served
    status, answer = await admin.call("POST", "/admin/keys", data=b"{nope")
    assert status == 400
    assert_openai_error(answer)
    status, _ = await admin.call("POST", "/admin/keys", json=[1, 2])
    assert status == 400


async def test_revoke_then_list_and_unknown_ids(served: tuple[Gateway, Admin]) -> None:
    _, admin = served
    _, a = await admin.call("POST", "/admin/keys", json={"name": "a"})
    _, b = await admin.call("POST", "/admin/keys", json={"name": "b"})
    status, revoked = await admin.call("DELETE", f"/admin/keys/{a['id']}")
    assert status == 200 and revoked["deleted"] is True and revoked["status"] == "revoked"
    _, listed = await admin.call("GET", "/admin/keys")
    assert [k["id"] for k in listed["data"]] == [b["id"]]
    _, every = await admin.call("GET", "/admin/keys?include_revoked=true")
    assert {k["id"] for k in every["data"]} == {a["id"], b["id"]}
    status, _ = await admin.call("GET", "/admin/keys?include_revoked=maybe")
    assert status == 400
    for method in ("GET", "DELETE"):
        status, answer = await admin.call(method, "/admin/keys/key_unknown")
        assert status == 404
        assert_openai_error(answer)


async def test_keys_list_filters_by_tenant(served: tuple[Gateway, Admin]) -> None:
    _, admin = served
    await admin.call("POST", "/admin/keys", json={"tenant": "acme"})
    await admin.call("POST", "/admin/keys", json={"tenant": "globex"})
    _, listed = await admin.call("GET", "/admin/keys?tenant=globex")
    assert [k["tenant"] for k in listed["data"]] == ["globex"]


def settle(gateway: Gateway, n: int, principal: Principal, model: str, cost: float) -> None:
    """What the limits stage does after each call: emit `call.settled`."""
    request = ChatRequest(model="default", messages=(Message("user", "hi"),))
    call = Call(request=request, principal=principal, request_id=f"req_admin_{model}_{n}")
    gateway.services.events.emit(
        "call.settled", call=call, usage=Usage(100, 20), cost_usd=cost, deployment=model
    )


async def test_usage_groups_what_was_settled(served: tuple[Gateway, Admin]) -> None:
    gateway, admin = served
    ann = Principal(tenant="acme", user="ann", team="ads", key_id="key_a")
    bob = Principal(tenant="acme", user="bob", team="ads", key_id="key_b")
    for i in range(3):
        settle(gateway, i, ann, "sim-large", 0.01)
    settle(gateway, 9, bob, "sim-small", 0.001)
    status, body = await admin.call("GET", "/admin/usage?group_by=key")
    assert status == 200 and body["group_by"] == "key"
    assert [(r["key"], r["requests"]) for r in body["data"]] == [("key_a", 3), ("key_b", 1)]
    assert body["data"][0]["cost_usd"] == pytest.approx(0.03)
    assert body["total"]["requests"] == 4 and body["total"]["input_tokens"] == 400
    _, by_model = await admin.call("GET", "/admin/usage?group_by=model&user=bob")
    assert [(r["model"], r["requests"]) for r in by_model["data"]] == [("sim-small", 1)]
    _, by_day = await admin.call("GET", "/admin/usage?group_by=day")
    assert len(by_day["data"]) == 1 and by_day["data"][0]["requests"] == 4
    _, none = await admin.call("GET", "/admin/usage?group_by=team&until=2001-01-01")
    assert none["data"] == [] and none["total"]["requests"] == 0


@pytest.mark.parametrize(
    ("query", "param"),
    [("group_by=colour", "group_by"), ("since=yesterday", "since"), ("limit=0", "limit")],
)
async def test_bad_usage_queries_are_400(
    served: tuple[Gateway, Admin], query: str, param: str
) -> None:
    _, admin = served
    status, body = await admin.call("GET", f"/admin/usage?{query}")
    assert status == 400
    assert_openai_error(body, param=param)
