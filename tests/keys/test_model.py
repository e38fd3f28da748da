"""Key values: generation, hashing, validation of create requests, what is shown."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest

from headway.errors import InvalidRequest
from headway.keys.model import (
    KEY_PREFIX,
    ApiKey,
    generate_key,
    hash_key,
    parse_key_spec,
    principal_for,
    same_hash,
)


def test_generated_keys_are_prefixed_random_and_hash_stably() -> None:
    (a, id_a), (b, id_b) = generate_key(), generate_key()
    assert a.startswith(KEY_PREFIX) and len(a) >= 40
    assert a != b and id_a != id_b and id_a.startswith("key_")
    assert hash_key(a) == hash_key(a) != hash_key(b)
    assert same_hash(hash_key(a), hash_key(a)) and not same_hash(hash_key(a), hash_key(b))


def test_a_full_spec_is_parsed() -> None:
    spec = parse_key_spec(
        {
            "tenant": "acme",
            "name": " ci ",
            "user": "ann",
            "team": "ads",
            "allowed_models": ["a", "b", "a"],
            "limits": {"rpm": 60, "tpm": 1e5},
            "budgets": {"usd_per_day": 2.5, "tokens_per_month": None},
            "expires_in_s": 3600,
        },
        now=1000.0,
    )
    assert (spec.tenant, spec.name, spec.user, spec.team) == ("acme", "ci", "ann", "ads")
    assert spec.allowed_models == ("a", "b")
    assert spec.limits == {"rpm": 60, "tpm": 100000}
    assert spec.budgets == {"usd_per_day": 2.5}
    assert spec.expires_at == 4600.0


def test_defaults_are_the_default_tenant_and_every_model() -> None:
    spec = parse_key_spec({}, now=0)
    assert spec.tenant == "default" and spec.allowed_models is None and spec.limits == {}


@pytest.mark.parametrize(
    ("body", "param"),
    [
        ({"colour": "red"}, "colour"),
        ({"tenant": ""}, "tenant"),
        ({"tenant": 5}, "tenant"),
        ({"user": "x" * 201}, "user"),
        ({"allowed_models": "sim"}, "allowed_models"),
        ({"allowed_models": [""]}, "allowed_models"),
        ({"limits": [1]}, "limits"),
        ({"limits": {"rph": 1}}, "limits.rph"),
        ({"limits": {"rpm": -1}}, "limits.rpm"),
        ({"limits": {"rpm": True}}, "limits.rpm"),
        ({"budgets": {"usd_per_day": "5"}}, "budgets.usd_per_day"),
        ({"expires_in_s": 0}, "expires_in_s"),
    ],
)
def test_bad_input_names_the_field(body: dict[str, Any], param: str) -> None:
    with pytest.raises(InvalidRequest) as info:
        parse_key_spec(body, now=0)
    assert info.value.param == param


def test_public_view_hides_the_hash_and_reports_status() -> None:
    key = ApiKey(id="key_1", key_hash="h" * 64, prefix="hw-abc", tenant="t", expires_at=10.0)
    shown = key.public(now=5.0)
    assert "key_hash" not in shown and "h" * 64 not in str(shown)
    assert shown["status"] == "active"
    assert key.public(now=10.0)["status"] == "expired"
    assert principal_for(key).allowed_models is None


def test_principal_carries_the_keys_own_limits_and_budgets() -> None:
    key = ApiKey(
        id="key_1",
        key_hash="h" * 64,
        prefix="hw-abc",
        tenant="t",
        limits={"rpm": 60, "tpm": 1000},
        budgets={"usd_per_day": 2.5, "tokens_per_month": 1000},
    )
    p = principal_for(key)
    assert p.limits is not None and (p.limits.rpm, p.limits.tpm, p.limits.tpd) == (60, 1000, None)
    assert p.budgets is not None
    by_period = {b.period: b for b in p.budgets}
    assert by_period["day"].usd == Decimal("2.5") and by_period["month"].tokens == 1000
    bare = principal_for(ApiKey(id="k", key_hash="h", prefix="p", tenant="t"))
    assert bare.limits is None and bare.budgets is None  # the tier defaults apply


def test_limits_and_token_budgets_must_be_whole() -> None:
    with pytest.raises(InvalidRequest) as info:
        parse_key_spec({"limits": {"rpm": 1.5}}, now=0)
    assert info.value.param == "limits.rpm"
    with pytest.raises(InvalidRequest):
        parse_key_spec({"budgets": {"tokens_per_day": 0.5}}, now=0)
    spec = parse_key_spec({"budgets": {"usd_per_week": 0.25}, "limits": {"concurrency": 4}}, now=0)
    assert spec.budgets == {"usd_per_week": 0.25} and spec.limits == {"concurrency": 4}
