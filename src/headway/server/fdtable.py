"""Growing the process's file descriptor table once, at start-up, instead of under load.

Linux keeps a process's open files in a table that starts at 64 slots and doubles when a new
descriptor does not fit (at 64, 128, 256, 512, 1024, 2048... connections). In a process with
more than one thread (the gateway has a few: SQLite, the tokenizer's loader) each doubling waits
for an RCU grace period (`synchronize_rcu` in `expand_fdtable`) before the old table is freed,
and the `accept`, `socket` or `connect` that needed the room blocks the event loop for it:
10-16 ms at every doubling on this project's machine (`perf trace`, bench scenario
`streams1000`: `accept4` returning descriptor 512 took 13.7 ms; the socket of descriptor 256 and
1024 stalled the loop 9.6 and 13.4 ms). Every stream in flight then waits that long, which was
the whole 1,000-stream TTFT tail of a freshly started gateway.

The table never shrinks, so one descriptor opened at the top of the expected range, and closed at
once, sizes it for the process's life. Done before any thread exists, it waits for nothing.

The range itself is the soft RLIMIT_NOFILE, which many systems set to 1,024 while allowing far
more: every stream holds two descriptors (the caller's connection and the upstream's), so 1,000
open streams need over 2,000. A server raises its soft limit to the hard one, as `raise_limit`
does (an unprivileged call; the hard limit stays the administrator's).
"""

from __future__ import annotations

import fcntl
import os
import resource

#: the table covers this many descriptors at most (~0.5 MB of kernel memory for 65,536); past it a
#: worker grows as before. Connections per worker rarely come near it.
MAX_RESERVED = 65_536


def raise_limit() -> int:
    """Raise the soft RLIMIT_NOFILE to the hard one (to `MAX_RESERVED` when the hard one is
    unlimited); returns the soft limit now in force."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    target = MAX_RESERVED if hard == resource.RLIM_INFINITY else hard
    if soft == resource.RLIM_INFINITY or soft >= target:
        return soft
    try:
        resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
    except (ValueError, OSError):  # a sandbox that refuses: keep the soft limit
        return soft
    return target


def reserve(slots: int = MAX_RESERVED) -> int:
    """Make room for min(`slots`, the soft RLIMIT_NOFILE) descriptors; returns how many the
    table now holds at least (0 when there was nothing to do or it could not be done).

    `F_DUPFD` takes the lowest free descriptor at or above its argument, so no open descriptor
    is ever replaced (as `dup2` would)."""
    soft, _ = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft != resource.RLIM_INFINITY:
        slots = min(slots, soft)
    if slots <= 64:  # the table's initial size
        return 0
    source = os.open(os.devnull, os.O_RDONLY | os.O_CLOEXEC)
    try:
        os.close(fcntl.fcntl(source, fcntl.F_DUPFD_CLOEXEC, slots - 1))
    except OSError:  # the limit moved, or descriptors are exhausted: start without it
        return 0
    finally:
        os.close(source)
    return slots
