"""The event bus: who hears what, in which order, and what `wants` answers."""

from __future__ import annotations

from headway.observe.events import Event, EventBus


def test_listeners_hear_their_kind_then_the_catch_alls_in_subscription_order() -> None:
    bus = EventBus()
    heard: list[str] = []
    bus.subscribe(None, lambda e: heard.append(f"any1:{e.kind}"))
    bus.subscribe("a.x", lambda e: heard.append(f"own:{e.kind}"))
    bus.subscribe(None, lambda e: heard.append(f"any2:{e.kind}"))
    bus.emit("a.x", n=1)
    bus.emit("b.y")
    assert heard == ["own:a.x", "any1:a.x", "any2:a.x", "any1:b.y", "any2:b.y"]


def test_a_catch_all_can_leave_out_a_prefix_and_then_costs_those_emitters_nothing() -> None:
    bus = EventBus()
    seen: list[Event] = []
    bus.subscribe(None, seen.append, except_prefix="call.")
    assert bus.wants("breaker.opened")
    assert not bus.wants("call.settled")
    bus.emit("call.settled", x=1)
    bus.emit("breaker.opened", deployment="d")
    assert [e.kind for e in seen] == ["breaker.opened"]
    assert seen[0].data == {"deployment": "d"}


def test_a_later_subscription_is_heard_even_after_a_kind_was_resolved() -> None:
    bus = EventBus()
    bus.subscribe(None, lambda e: None, except_prefix="call.")
    assert not bus.wants("call.settled")  # resolved and remembered
    got: list[Event] = []
    bus.subscribe("call.settled", got.append)
    assert bus.wants("call.settled")
    bus.emit("call.settled", y=2)
    assert [e.data for e in got] == [{"y": 2}]


def test_a_failing_listener_does_not_stop_the_others() -> None:
    bus = EventBus()
    got: list[str] = []

    def broken(event: Event) -> None:
        raise RuntimeError("boom")

    bus.subscribe("k", broken)
    bus.subscribe(None, lambda e: got.append(e.kind))
    bus.emit("k")
    assert got == ["k"]
