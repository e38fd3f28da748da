"""Settlement's shortcuts give what the general rules give: the usual call's amounts, a plain
`Actual`, and a settle-only stream cut before its usage still counted."""

from __future__ import annotations

import random
from decimal import Decimal

from headway.clock import FakeClock
from headway.limits.settle import Actual, settlement
from headway.limits.settle_only import SettleStage
from headway.limits.values import Item
from headway.tokens import count
from headway.types import Usage
from tests.limits.rig import call
from tests.limits.test_settle_only import pipeline

_MEASURES = ("requests", "tokens", "input", "output", "usd", "slots")


def test_the_usual_settlement_charges_every_item_what_was_used() -> None:
    rng = random.Random(3)
    for _ in range(500):
        items = [
            Item(f"k{i}", "bucket", 100, 60.0, rng.randint(0, 99), tier, measure, "x")  # type: ignore[arg-type]
            for i, (tier, measure) in enumerate(
                (rng.choice(("key", "user", "global", "deployment")), rng.choice(_MEASURES))
                for _ in range(rng.randint(0, 8))
            )
        ]
        usage = Usage(rng.randint(0, 500), rng.randint(0, 500), rng.randint(0, 600))
        cost = rng.choice((None, Decimal(rng.randint(0, 10_000)) / 7))
        actual = Actual(usage, cost)
        amounts = actual.amounts()
        got = settlement(items, actual, reserved_dep="a", served_dep="a")
        assert got == [amounts[i.measure] for i in items]
        assert amounts["input"] == max(0, usage.input_tokens - usage.cached_input_tokens)
        assert amounts["usd"] == actual.cost_int


async def test_a_cut_stream_is_counted_in_settle_only_mode(fake_clock: FakeClock) -> None:
    _, _, events, _, stage = pipeline("", fake_clock)
    assert isinstance(stage, SettleStage)
    stage.settle(call(), None, started=True, parts=["hello world ", "hello world "])
    [event] = events
    assert event.data["usage"] == Usage(8, count("hello world hello world "))


async def test_a_call_that_never_started_costs_nothing_in_settle_only_mode(
    fake_clock: FakeClock,
) -> None:
    _, _, events, _, stage = pipeline("", fake_clock)
    assert isinstance(stage, SettleStage)
    stage.settle(call(), None, started=False)
    [event] = events
    assert event.data["usage"] == Usage()
