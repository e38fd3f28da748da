"""Instructions headway executes per call, counted by valgrind's callgrind.

CPU time on a shared machine moves by 30-100 % between identical runs; an instruction count is the
same from run to run whatever else the machine does, so a change to headway is judged by it
(docs/performance.md, 2b). Each path runs in its own process under `valgrind --tool=callgrind`
with PYTHONHASHSEED=0: `--warmup` calls, then calls up to N1, then on up to N2. At N1 and at N2 the
process calls `os.getppid()`, which nothing else calls, and callgrind writes its totals there
(`--dump-before=getppid`): total(N1) and total(N2) come from one run, and
(total(N2) - total(N1)) / (N2 - N1) is the count per call, without start-up, imports, warm-up or
shutdown. The paths run in parallel (`--jobs`); valgrind is ~50x slower than the CPU, so the
defaults take ~3 minutes on an idle 2-core machine.

    python -m bench.instr                                  # every path, a table, a JSON line
    python -m bench.instr --paths raw_client,inproc_passthrough --n1 100 --n2 400 --warmup 300
    python -m bench.instr --json-only                      # the JSON line alone
    PYTHONPATH=/elsewhere/src python -m bench.instr        # count another tree's headway

Paths (instr_<path> in the JSON line):
  raw_client             headway's HTTP client, `Transport.request` + `orjson.loads`, to the bench
                         upstream over loopback (the upstream runs outside valgrind)
  gateway_chat           `Gateway.chat`, no policies, canned transport (bench.inproc's): headway's
                         own work above the HTTP client; a library call is this plus raw_client
  gateway_chat_policies  the same with limits, budgets and an exact cache that misses
  inproc_passthrough     the real ASGI app and pipeline, canned transport (bench.inproc's variants)
  inproc_stream          ... a stream of 24 events
  inproc_policies        ... limits, budgets, a cache miss, metrics
  inproc_cache_hit       ... an exact-cache hit
  inproc_redis           ... inproc_policies with limits, budgets and the cache in Redis (a
                         redis-server of its own, outside valgrind: only Python is counted)
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import importlib.util
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from concurrent.futures import Future, ThreadPoolExecutor, as_completed
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import orjson

from bench.procs import ROOT, Cores, Procs

if TYPE_CHECKING:
    from bench.harness import Bench

Call = Callable[[int], Awaitable[object]]

PATHS = (
    "raw_client",
    "gateway_chat",
    "gateway_chat_policies",
    "inproc_passthrough",
    "inproc_stream",
    "inproc_policies",
    "inproc_cache_hit",
    "inproc_redis",
)
#: paths whose calls go to the bench upstream over a socket
NEEDS_UPSTREAM = frozenset({"raw_client"})
#: the libc function whose entry makes callgrind write its totals (`os.getppid()` calls it)
MARK = "getppid"
MISSING = (
    "valgrind not found: bench.instr counts instructions with `valgrind --tool=callgrind` "
    "(apt-get install valgrind)"
)


# ---- the measured process ---------------------------------------------------------------------


@contextlib.asynccontextmanager
async def _call(path: str, port: int) -> AsyncIterator[Call]:
    """The call a path makes, and its setup and teardown around it. Imports are made where
    needed: under valgrind each one costs seconds."""
    from bench import library

    workdir = Path(tempfile.gettempdir())  # only named in configs; the ledger is off
    if path == "raw_client":
        from headway.transport.http import Transport

        transport = Transport()
        yield library.client_call(transport, port)
        await transport.aclose()
        return
    from bench import inproc

    if path.startswith("gateway_chat"):
        import yaml

        from bench import configs
        from headway.config.load import load
        from headway.gateway import Gateway
        from headway.services import Services

        kind = "policies" if path.endswith("policies") else "passthrough"
        runtime = load(text=yaml.safe_dump(configs.build(kind, 9, workdir)))
        async with Gateway(runtime, services=Services(transport=inproc.CannedTransport())) as gw:
            yield library.chat_call(gw)
    else:
        app, call = await inproc.variant(path.removeprefix("inproc_"), workdir)
        yield call
        await app.shutdown()


def _check(path: str, answer: object) -> None:
    """A path that fails would count the failure's instructions: stop instead."""
    status = answer[0] if isinstance(answer, tuple) else 200
    if status != 200 or answer is None:
        raise RuntimeError(f"{path}: the call failed: {str(answer)[:300]}")


async def _measure(path: str, port: int, warmup: int, marks: tuple[int, int]) -> None:
    async with _call(path, port) as call:
        _check(path, await call(-1))
        for i in range(1, warmup):
            await call(-1 - i)  # numbered apart from the measured calls (the cache must miss)
        done = 0
        for mark in marks:
            for i in range(done, mark):
                await call(i)
            done = mark
            os.getppid()  # callgrind writes its totals here


def _child(args: argparse.Namespace) -> int:
    from bench.streams import loop_factory

    with asyncio.Runner(loop_factory=loop_factory()) as runner:
        runner.run(_measure(args.child, args.upstream_port, args.warmup, (args.n1, args.n2)))
    return 0


# ---- counting ---------------------------------------------------------------------------------


def totals(text: str) -> int:
    """The instruction total of one callgrind out file (its `totals:` or `summary:` line)."""
    found: dict[str, int] = {}
    for line in text.splitlines():
        key, _, rest = line.partition(":")
        if key in ("totals", "summary") and rest.split():
            found.setdefault(key, int(rest.split()[0]))
    if not found:
        raise ValueError("no totals: or summary: line in the callgrind output")
    return found.get("totals", found.get("summary", 0))


def per_call(total1: int, total2: int, n1: int, n2: int) -> float:
    """Instructions per call: what N2 calls cost beyond N1, spread over the difference."""
    if n2 <= n1:
        raise ValueError(f"N2 ({n2}) must be larger than N1 ({n1})")
    return (total2 - total1) / (n2 - n1)


def cumulative(out: Path) -> tuple[int, int]:
    """total(N1) and total(N2) from the dumps callgrind wrote at the two marks (`out.1`, `out.2`;
    `out` itself holds the shutdown, which is left out)."""
    parts = sorted(out.parent.glob(out.name + ".*"), key=lambda p: int(p.suffix[1:]))
    if len(parts) != 2:
        raise RuntimeError(
            f"expected 2 callgrind dumps (one per mark), found {len(parts)}: "
            f"something else called {MARK}() or the run failed"
        )
    first, second = (totals(p.read_text()) for p in parts)
    return first, first + second


@dataclass(slots=True, frozen=True)
class Plan:
    warmup: int
    n1: int
    n2: int
    upstream_port: int = 0


def command(path: str, plan: Plan, out: Path) -> list[str]:
    valgrind = ["valgrind", "--tool=callgrind", f"--callgrind-out-file={out}"]
    valgrind += [f"--dump-before={MARK}"]
    child = [sys.executable, "-m", "bench.instr", "--child", path, "--warmup", str(plan.warmup)]
    child += ["--n1", str(plan.n1), "--n2", str(plan.n2)]
    return [*valgrind, *child, "--upstream-port", str(plan.upstream_port)]


def count(path: str, plan: Plan, workdir: Path, timeout: float) -> float:
    """Run one path under callgrind; its instructions per call."""
    folder = workdir / path
    folder.mkdir()
    out = folder / "callgrind.out"
    log = folder / "log"
    env = {**os.environ, "PYTHONHASHSEED": "0"}
    with log.open("w") as sink:
        done = subprocess.run(
            command(path, plan, out),
            stdout=sink,
            stderr=subprocess.STDOUT,
            cwd=ROOT,
            env=env,
            timeout=timeout,
            check=False,
        )
    if done.returncode != 0:
        tail = log.read_text(errors="replace")[-2000:]
        raise RuntimeError(f"{path}: exit code {done.returncode}\n{tail}")
    total1, total2 = cumulative(out)
    return per_call(total1, total2, plan.n1, plan.n2)


# ---- the command ------------------------------------------------------------------------------


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(
        prog="python -m bench.instr",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--paths", default=",".join(PATHS), help=f"from: {', '.join(PATHS)}")
    p.add_argument("--n1", type=int, default=100, help="calls at the first mark (default 100)")
    p.add_argument("--n2", type=int, default=400, help="calls at the second mark (default 400)")
    p.add_argument("--warmup", type=int, default=300, help="calls before both (default 300)")
    p.add_argument(
        "--jobs", type=int, default=min(2, os.cpu_count() or 1), help="paths run at once"
    )
    p.add_argument("--timeout", type=float, default=1800.0, help="seconds per path at most")
    p.add_argument("--json-only", action="store_true", help="print the JSON line alone")
    p.add_argument("--child", default=None, help=argparse.SUPPRESS)
    p.add_argument("--upstream-port", type=int, default=0, help=argparse.SUPPRESS)
    return p.parse_args(argv)


def _invalid(args: argparse.Namespace, names: list[str]) -> str | None:
    unknown = [n for n in names if n not in PATHS]
    if unknown or not names:
        return f"unknown path(s): {', '.join(unknown) or '(none given)'}; known: {', '.join(PATHS)}"
    if not 0 <= args.n1 < args.n2:
        return f"need 0 <= --n1 < --n2 (got {args.n1}, {args.n2})"
    if args.warmup < 1 or args.jobs < 1:
        return "--warmup and --jobs must be at least 1"
    return None


def _run_all(
    names: list[str], plan: Plan, args: argparse.Namespace, say: Callable[[str], None]
) -> dict[str, float]:
    results: dict[str, float] = {}
    with (
        tempfile.TemporaryDirectory(prefix="headway-instr-") as tmp,
        ThreadPoolExecutor(args.jobs) as pool,
    ):
        workdir = Path(tmp)
        procs = Procs(workdir, Cores(None, None))
        try:
            if NEEDS_UPSTREAM.intersection(names):
                plan = Plan(plan.warmup, plan.n1, plan.n2, procs.upstream().port)
            started = time.monotonic()
            running: dict[Future[float], str] = {
                pool.submit(count, name, plan, workdir, args.timeout): name for name in names
            }
            for future in as_completed(running):
                name = running[future]
                results[name] = future.result()
                took = time.monotonic() - started
                say(f"instr: {name:<22} {results[name]:>12,.0f} instructions/call  ({took:.0f}s)")
        finally:
            procs.stop_all()
    return results


def _headway_at() -> str:
    spec = importlib.util.find_spec("headway")
    origin = spec.origin if spec is not None else None
    return str(Path(origin).parent) if origin else "?"


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.child is not None:
        return _child(args)
    names = [n.strip() for n in args.paths.split(",") if n.strip()]
    problem = _invalid(args, names)
    if problem is not None:
        print(problem, file=sys.stderr)
        return 2
    if shutil.which("valgrind") is None:
        print(MISSING, file=sys.stderr)
        return 2

    def say(line: str) -> None:
        if not args.json_only:
            print(line, flush=True)

    say(
        f"bench.instr: {len(names)} path(s) under callgrind, warm-up {args.warmup}, "
        f"N1={args.n1}, N2={args.n2}, {args.jobs} at once; headway from {_headway_at()}"
    )
    plan = Plan(args.warmup, args.n1, args.n2)
    try:
        results = _run_all(names, plan, args, say)
    except (RuntimeError, OSError, subprocess.TimeoutExpired) as exc:
        print(f"bench.instr failed: {exc}", file=sys.stderr)
        return 1
    say("")
    say(f"{'path':<24}{'instructions/call':>18}")
    for name in names:
        say(f"{name:<24}{results[name]:>18,.0f}")
    say("")
    figures: dict[str, object] = {f"instr_{n}": round(results[n], 1) for n in names}
    figures["instr_n"] = [args.warmup, args.n1, args.n2]
    print(orjson.dumps(figures).decode(), flush=True)
    return 0


def scenario(b: Bench) -> None:
    """Instructions per call under callgrind (bench.instr; valgrind, ~3 min, opt-in)."""
    from bench.report import Row

    out = b.run_json(["-m", "bench.instr", "--json-only"], None, timeout=3600)
    for name in PATHS:
        value = out[f"instr_{name}"]
        assert isinstance(value, int | float)
        b.report.add(Row("instructions", name, "instr/call", float(value), None, "none"))
    b.report.figures.update(out)


if __name__ == "__main__":
    sys.exit(main())
