"""Budgets as store items, and the key-style mapping API keys use."""

from __future__ import annotations

from decimal import Decimal

import pytest

from headway.budgets.items import budget_items, budgets_from_mapping
from headway.budgets.values import BudgetSpec
from headway.limits.values import LimitSpec
from headway.limits.window import MONTH


def test_each_budget_becomes_a_window_counter() -> None:
    items = budget_items(
        "user",
        "t:alice",
        [BudgetSpec("hour", usd=Decimal("1.5")), BudgetSpec("month", tokens=1000)],
        tokens=300,
        cost_micro=4200,
    )
    assert [(i.key, i.limit, i.period, i.amount, i.label) for i in items] == [
        ("b:user:t:alice:usd:hour", 1_500_000, 3600.0, 4200, "usd/hour"),
        ("b:user:t:alice:tokens:month", 1000, MONTH, 300, "tokens/month"),
    ]
    assert all(i.budget and i.kind == "window" for i in items)


def test_key_style_budgets_and_limits() -> None:
    got = budgets_from_mapping({"usd_per_day": 5, "tokens_per_day": 1000, "usd_per_month": 100.5})
    assert set(got) == {
        BudgetSpec("day", usd=Decimal(5), tokens=1000),
        BudgetSpec("month", usd=Decimal("100.5")),
    }
    with pytest.raises(ValueError):
        budgets_from_mapping({"euros_per_day": 5})
    assert LimitSpec.from_mapping({"rpm": 60, "tpm": 4e4}) == LimitSpec(rpm=60, tpm=40000)
    with pytest.raises(ValueError):
        LimitSpec.from_mapping({"rps": 1})


def test_limit_overrides_merge_per_metric() -> None:
    base = LimitSpec(rpm=100, tpm=1000)
    assert base.merged(LimitSpec(rpm=5)) == LimitSpec(rpm=5, tpm=1000)
    assert base.merged(None) is base
