"""Small builders of store items for the tests."""

from __future__ import annotations

from headway.limits.values import Item


def bucket(key: str, limit: int = 10, amount: int = 1, period: float = 60.0) -> Item:
    return Item(key, "bucket", limit, period, amount, "user", "tokens", "tpm")


def window(key: str, limit: int = 100, amount: int = 1, period: float = 3600.0) -> Item:
    return Item(key, "window", limit, period, amount, "user", "usd", "usd/hour", budget=True)


def slots(key: str, limit: int = 2, lease: float = 600.0) -> Item:
    return Item(key, "concurrency", limit, lease, 1, "key", "slots", "concurrency")
