from __future__ import annotations

import dataclasses

from headway.context import Principal
from headway.limits.values import LimitSpec


def test_with_user_keeps_every_other_field() -> None:
    # every field set to a non-default value, so a field `with_user` forgot would show
    principal = Principal(
        tenant="t",
        user=None,
        team="blue",
        key_id="k1",
        allowed_models=frozenset({"a"}),
        is_admin=True,
        limits=LimitSpec(),
        budgets=(),
    )
    for f in dataclasses.fields(Principal):
        if f.name != "user":
            assert getattr(principal, f.name) != f.default, f.name
    assert principal.with_user("u") == dataclasses.replace(principal, user="u")
    assert principal.user is None  # still frozen and unchanged
