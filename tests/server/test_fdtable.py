"""The file descriptor table grown at start-up (headway.server.fdtable).

Each check runs in a fresh interpreter: the table only grows, so the test process's own table
(already large from the suite's sockets) would prove nothing. Linux reports the table's size as
`FDSize` in /proc/self/status.
"""

from __future__ import annotations

import subprocess
import sys
import textwrap

import pytest

pytestmark = pytest.mark.skipif(sys.platform != "linux", reason="FDSize is Linux's")

PRELUDE = """
import os, resource
from headway.server import fdtable

def fdsize():
    for line in open("/proc/self/status"):
        if line.startswith("FDSize:"):
            return int(line.split()[1])

def open_fds():
    return sorted(int(n) for n in os.listdir("/proc/self/fd"))
"""


def run(body: str) -> str:
    code = PRELUDE + textwrap.dedent(body)
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=False
    )
    assert done.returncode == 0, done.stderr
    return done.stdout.strip()


def test_the_table_is_sized_once_for_the_connections_to_come_and_nothing_stays_open() -> None:
    out = run(
        """
        before, fds = fdsize(), open_fds()
        got = fdtable.reserve(4096)
        after = open_fds()
        print(before, got, fdsize(), after == fds)
        """
    )
    before, got, size, same = out.split()
    assert int(before) < 4096  # a fresh interpreter starts small
    assert int(got) == 4096
    assert int(size) >= 4096
    assert same == "True"


def test_an_open_descriptor_at_the_top_is_left_alone() -> None:
    # dup2 would have replaced it; F_DUPFD takes the next free one
    out = run(
        """
        r, w = os.pipe()
        os.dup2(w, 4095)
        got = fdtable.reserve(4096)
        os.write(4095, b"still open")
        print(got, os.read(r, 100).decode())
        """
    )
    assert out == "4096 still open"


def test_the_soft_limit_caps_it_and_a_tiny_limit_is_left_as_it_is() -> None:
    out = run(
        """
        hard = resource.getrlimit(resource.RLIMIT_NOFILE)[1]
        resource.setrlimit(resource.RLIMIT_NOFILE, (1000, hard))
        capped = fdtable.reserve(4096)
        size = fdsize()
        resource.setrlimit(resource.RLIMIT_NOFILE, (64, hard))
        print(capped, size, fdtable.reserve(4096))
        """
    )
    capped, size, tiny = map(int, out.split())
    assert capped == 1000
    assert 1000 <= size < 4096
    assert tiny == 0


def test_the_soft_limit_is_raised_to_the_hard_one_before_the_table_is_sized() -> None:
    out = run(
        """
        hard = resource.getrlimit(resource.RLIMIT_NOFILE)[1]
        low = 1024 if hard == resource.RLIM_INFINITY else min(1024, hard // 2)
        resource.setrlimit(resource.RLIMIT_NOFILE, (low, hard))
        got = fdtable.raise_limit()
        now = resource.getrlimit(resource.RLIMIT_NOFILE)
        print(got == now[0], now[1] == hard, now[0] > low, fdtable.raise_limit() == now[0])
        """
    )
    assert out == "True True True True"  # raised once, and a second call changes nothing
