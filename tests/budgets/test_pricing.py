"""Prices and cost: exact decimals, the shipped table, config overrides."""

from __future__ import annotations

from decimal import Decimal

from headway.budgets.pricing import (
    Price,
    PriceBook,
    cost_micro,
    lookup,
    shipped_table,
    worst_case_micro,
)
from headway.config.load import load
from headway.types import Usage


def test_the_shipped_table_has_the_documented_prices() -> None:
    t = shipped_table()
    assert t["gpt-4o"] == Price(Decimal("2.50"), Decimal("10.00"), Decimal("1.25"))
    assert t["gpt-4o-mini"].cached_input == Decimal("0.075")
    assert t["claude-sonnet-4-6"].cache_write == Decimal("3.75")
    assert t["gemini-2.5-pro"].long_threshold == 200_000


def test_snapshots_match_their_family_by_the_longest_prefix() -> None:
    t = shipped_table()
    assert lookup("gpt-4o-2024-08-06", t) is t["gpt-4o"]
    assert lookup("gpt-4o-mini-2024-07-18", t) is t["gpt-4o-mini"]
    assert lookup("claude-haiku-4-5-20251001", t) is t["claude-haiku-4-5"]
    assert lookup("gpt-4", t) is None


def test_cost_is_exact_in_micro_dollars() -> None:
    gpt4o = shipped_table()["gpt-4o"]
    # 1000 input of which 400 cached, 200 output: 600*2.5 + 400*1.25 + 200*10
    usage = Usage(input_tokens=1000, output_tokens=200, cached_input_tokens=400)
    assert cost_micro(usage, gpt4o) == Decimal("4000.00")
    # a million calls of one token each add up exactly: no float drift
    one = cost_micro(Usage(1, 0), shipped_table()["gpt-4o-mini"])
    assert sum([one] * 1_000_000, Decimal(0)) == Decimal("150000")


def test_cache_writes_and_long_context_prices() -> None:
    t = shipped_table()
    usage = Usage(
        input_tokens=1000, output_tokens=0, cached_input_tokens=100, cache_write_tokens=500
    )
    # 400 plain * 3 + 100 read * 0.30 + 500 written * 3.75
    assert cost_micro(usage, t["claude-sonnet-4-6"]) == Decimal("3105.00")
    assert cost_micro(Usage(300_000, 1000), t["gemini-2.5-pro"]) == Decimal("765000.00")


def test_the_worst_case_rounds_up_and_assumes_the_dearest_input() -> None:
    t = shipped_table()
    assert worst_case_micro(3, 1, t["gpt-4o-mini"]) == 2  # 0.45 + 0.6 = 1.05 -> 2
    assert worst_case_micro(100, 0, t["claude-sonnet-4-6"]) == 375  # the cache-write rate


def test_config_prices_override_the_table() -> None:
    runtime = load(
        text="""
providers: {oa: {kind: openai}}
models:
  plain: {provider: oa, model: gpt-4o}
  cheaper: {provider: oa, model: gpt-4o, input_price: 1.0}
  own: {provider: oa, model: my-model, input_price: 0.5, output_price: 1.5}
  unknown: {provider: oa, model: my-model}
budgets: {prices: {my-model: {input: 7, output: 8}}}
""",
        env={},
    )
    book = PriceBook(runtime)
    assert book.get("plain") == shipped_table()["gpt-4o"]
    cheaper = book.get("cheaper")
    assert cheaper is not None and (cheaper.input, cheaper.output) == (
        Decimal("1.0"),
        Decimal("10.00"),
    )
    own = book.get("own")
    assert own is not None and (own.input, own.output) == (Decimal("0.5"), Decimal("1.5"))
    unknown = book.get("unknown")
    assert unknown is not None and unknown.input == Decimal(7)
    assert book.unpriced() == []
