"""The LimitStore contract, run over MemoryLimitStore and RedisLimitStore alike.

The FakeClock starts at 2026-01-01T00:00:00Z, on an hour, day and month boundary.
"""

from __future__ import annotations

import pytest

from headway.clock import FakeClock
from headway.limits.store import LimitStore
from headway.limits.values import Outcome, Rejection, Reservation
from headway.limits.window import MONTH
from tests.limits.items import bucket, slots, window


def ok(outcome: Outcome) -> Reservation:
    assert isinstance(outcome, Reservation), outcome
    return outcome


def rejected(outcome: Outcome) -> Rejection:
    assert isinstance(outcome, Rejection), outcome
    return outcome


async def test_bucket_admits_up_to_its_limit_then_names_the_wait(
    store: LimitStore, fake_clock: FakeClock
) -> None:
    ok(await store.reserve([bucket("a", amount=4)]))
    res = ok(await store.reserve([bucket("a", amount=4)]))
    assert res.used == pytest.approx((8.0,))
    rej = rejected(await store.reserve([bucket("a", amount=4)]))
    assert rej.item.key == "a"
    # 2 tokens over a limit of 10 per 60 s: 12 s of refill
    assert rej.retry_after == pytest.approx(12.0)
    await fake_clock.advance(11.9)
    rejected(await store.reserve([bucket("a", amount=4)]))
    await fake_clock.advance(0.1)
    ok(await store.reserve([bucket("a", amount=4)]))


async def test_bucket_refills_continuously(store: LimitStore, fake_clock: FakeClock) -> None:
    ok(await store.reserve([bucket("a", amount=10)]))
    await fake_clock.advance(30)
    assert rejected(await store.reserve([bucket("a", amount=6)])).retry_after == pytest.approx(6)
    ok(await store.reserve([bucket("a", amount=5)]))


async def test_an_amount_over_the_limit_never_fits(store: LimitStore) -> None:
    rej = rejected(await store.reserve([bucket("a", limit=10, amount=11)]))
    assert rej.retry_after is None
    ok(await store.reserve([bucket("a", limit=10, amount=10)]))


async def test_reservation_is_all_or_nothing(store: LimitStore) -> None:
    ok(await store.reserve([bucket("b", limit=1, amount=1)]))
    rej = rejected(await store.reserve([bucket("a", amount=10), bucket("b", limit=1)]))
    assert rej.item.key == "b"
    ok(await store.reserve([bucket("a", amount=10)]))  # `a` was not charged


async def test_rejection_names_the_item_that_frees_up_last(store: LimitStore) -> None:
    ok(await store.reserve([bucket("fast", amount=10), bucket("slow", amount=10)]))
    items = [bucket("fast", amount=1), bucket("slow", amount=2)]
    rej = rejected(await store.reserve(items))
    assert rej.item.key == "slow"
    assert rej.retry_after == pytest.approx(12.0)


async def test_window_resets_at_its_boundary(store: LimitStore, fake_clock: FakeClock) -> None:
    await fake_clock.advance(600)
    ok(await store.reserve([window("w", limit=100, amount=100)]))
    rej = rejected(await store.reserve([window("w", limit=100, amount=1)]))
    assert rej.retry_after == pytest.approx(3000.0)
    await fake_clock.advance(2999)
    rejected(await store.reserve([window("w", limit=100, amount=1)]))
    await fake_clock.advance(1)
    res = ok(await store.reserve([window("w", limit=100, amount=100)]))
    assert res.used == (100.0,)


async def test_a_total_window_never_resets(store: LimitStore) -> None:
    ok(await store.reserve([window("t", limit=5, amount=5, period=0)]))
    assert rejected(await store.reserve([window("t", limit=5, period=0)])).retry_after is None


async def test_a_month_window_resets_on_the_first_of_the_month(
    store: LimitStore, fake_clock: FakeClock
) -> None:
    await fake_clock.advance(30 * 86400 + 23 * 3600)  # 2026-01-31T23:00Z
    ok(await store.reserve([window("m", limit=5, amount=5, period=MONTH)]))
    rej = rejected(await store.reserve([window("m", limit=5, period=MONTH)]))
    assert rej.retry_after == pytest.approx(3600.0)
    await fake_clock.advance(3600)
    ok(await store.reserve([window("m", limit=5, amount=5, period=MONTH)]))


async def test_concurrency_slots_are_released_at_settlement(
    store: LimitStore, fake_clock: FakeClock
) -> None:
    first = ok(await store.reserve([slots("c", limit=2, lease=600)]))
    await fake_clock.advance(100)
    ok(await store.reserve([slots("c", limit=2, lease=600)]))
    rej = rejected(await store.reserve([slots("c", limit=2, lease=600)]))
    assert rej.retry_after == pytest.approx(500.0)  # the oldest lease runs out then
    assert await store.settle(first, [1]) == (1.0,)
    ok(await store.reserve([slots("c", limit=2, lease=600)]))


async def test_concurrency_leases_expire(store: LimitStore, fake_clock: FakeClock) -> None:
    ok(await store.reserve([slots("c", limit=1, lease=10)]))
    rejected(await store.reserve([slots("c", limit=1, lease=10)]))
    await fake_clock.advance(10)
    ok(await store.reserve([slots("c", limit=1, lease=10)]))


async def test_settle_refunds_down_to_the_real_amount(store: LimitStore) -> None:
    res = ok(await store.reserve([bucket("a", amount=8), window("w", amount=80)]))
    assert await store.settle(res, [3, 30]) == pytest.approx((3.0, 30.0))
    ok(await store.reserve([bucket("a", amount=7), window("w", amount=70)]))
    rejected(await store.reserve([bucket("a", amount=1)]))


async def test_settle_above_the_reservation_charges_the_overrun(store: LimitStore) -> None:
    res = ok(await store.reserve([bucket("a", amount=5)]))
    assert await store.settle(res, [15]) == pytest.approx((15.0,))
    rej = rejected(await store.reserve([bucket("a", amount=1)]))
    assert rej.retry_after == pytest.approx(36.0)  # (15 + 1 - 10) tokens at 10 per 60 s


async def test_settling_after_a_window_boundary_leaves_the_new_window_alone(
    store: LimitStore, fake_clock: FakeClock
) -> None:
    old = ok(await store.reserve([window("w", limit=100, amount=50)]))
    await fake_clock.advance(3600)
    ok(await store.reserve([window("w", limit=100, amount=10)]))
    assert await store.settle(old, [0]) == (10.0,)
    res = ok(await store.reserve([window("w", limit=100, amount=90)]))
    assert res.used == (100.0,)


async def test_the_first_alternative_that_fits_is_charged(store: LimitStore) -> None:
    ok(await store.reserve([bucket("g1", amount=10)]))
    res = ok(
        await store.reserve(
            [bucket("m", amount=2)],
            [[bucket("g1", amount=2)], [bucket("g2", amount=2)], [bucket("g3", amount=2)]],
        )
    )
    assert res.choice == 1
    assert [i.key for i in res.items] == ["m", "g2"]
    assert res.used == pytest.approx((2.0, 2.0))
    rejected(await store.reserve([bucket("g1", amount=1)]))  # g1 untouched: still full
    ok(await store.reserve([bucket("g3", amount=10)]))  # g3 was not charged


async def test_when_no_alternative_fits_the_soonest_is_named(store: LimitStore) -> None:
    ok(await store.reserve([bucket("g1", amount=10), bucket("g2", amount=10)]))
    rej = rejected(await store.reserve([], [[bucket("g1", amount=2)], [bucket("g2", amount=1)]]))
    assert rej.item.key == "g2" and rej.retry_after == pytest.approx(6.0)
    ok(await store.reserve([bucket("m", amount=10)]))
    rej = rejected(await store.reserve([bucket("m", amount=5)], [[bucket("g1", amount=2)]]))
    assert rej.item.key == "m" and rej.retry_after == pytest.approx(30.0)


async def test_alternatives_that_can_never_fit(store: LimitStore) -> None:
    rej = rejected(
        await store.reserve(
            [], [[bucket("g1", limit=1, amount=2)], [bucket("g2", limit=1, amount=3)]]
        )
    )
    assert rej.retry_after is None


async def test_extra_items_are_charged_at_settlement(store: LimitStore) -> None:
    res = ok(await store.reserve([bucket("a", amount=5)]))
    levels = await store.settle(res, [5], extra=[bucket("elsewhere", amount=7)])
    assert levels == pytest.approx((5.0, 7.0))
    rejected(await store.reserve([bucket("elsewhere", amount=4)]))


async def test_release_gives_everything_back(store: LimitStore) -> None:
    items = [bucket("a", amount=10), window("w", limit=10, amount=10), slots("c", limit=1)]
    res = ok(await store.reserve(items))
    await store.release(res)
    ok(await store.reserve(items))
