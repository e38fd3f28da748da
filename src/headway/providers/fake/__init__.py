"""Fake provider HTTP servers: the sim engine served in a vendor's wire format over real HTTP.

The yardstick headway's provider adapters are tested against (with the vendors' official SDKs as
clients), and the upstream of the gateway's benchmarks. See server.py for the control surface and
flavour.py for adding a vendor.
"""

from __future__ import annotations

from headway.providers.fake.flavour import FLAVOURS, Flavour, load_flavour
from headway.providers.fake.harness import FAST, RunningFake, fast_settings, running_fake
from headway.providers.fake.server import FakeOptions, FakeServer, FakeStats

__all__ = [
    "FAST",
    "FLAVOURS",
    "FakeOptions",
    "FakeServer",
    "FakeStats",
    "Flavour",
    "RunningFake",
    "fast_settings",
    "load_flavour",
    "running_fake",
]
