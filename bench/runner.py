"""`python -m bench` (`make bench`): every scenario, a table, then one JSON line of named figures.

    python -m bench                                  # the default set, ~5 s per measurement
    python -m bench --scenarios passthrough,library  # a selection
    python -m bench --quick                          # smoke run: 1 s measurements, 100 streams
    python -m bench --scenarios soak --soak-s 600    # the 10-minute RSS soak (not in the default set)
    python -m bench --scenarios instr                # instructions per call (bench.instr; opt-in)
    python -m bench --scenarios slow --realtime      # latency on a shared machine (chrt -f 20)
    python -m bench --scenarios slow --upstream-timer loop --upstream-jitter-ms 0
                                                     # ... with the old, quantised upstream

The gateway runs on the first core and everything that makes load on the other (taskset), as the
performance issue's method prescribes; `--no-pin` turns that off. The machine's load average is
printed and recorded, because on a shared machine it explains more than anything else does.
The delayed upstream of the slow scenario answers each request 50 ms +/- 1 ms after it arrived,
on a precise timer; `--upstream-timer loop` and `--upstream-jitter-ms 0` bring back the event
loop's millisecond grid and fixed delays (bench/timers.py says why they were replaced).
"""

from __future__ import annotations

import argparse
import os
import resource
import shutil
import sys
import tempfile
import time
from pathlib import Path

from bench import instr, profile, scenarios, scenarios_more, wrk
from bench.harness import Bench
from bench.procs import Cores, Procs
from bench.report import Report
from bench.scenarios import Scenario
from bench.timers import DEFAULT_JITTER_MS, TIMERS

SCENARIOS: dict[str, Scenario] = {
    "passthrough": scenarios.passthrough,
    "streaming": scenarios.streaming,
    "slow": scenarios.slow,
    "cache": scenarios.cache,
    "policies": scenarios.policies,
    "redis": scenarios.redis,
    "streams1000": scenarios_more.streams1000,
    "rss": scenarios_more.rss,
    "workers": scenarios_more.workers,
    "library": scenarios_more.library,
    "floors": scenarios_more.floors,
    "inproc": scenarios_more.inproc,
    "soak": scenarios_more.soak,
    "instr": instr.scenario,
}
OPT_IN = frozenset({"soak", "instr"})
DEFAULT = tuple(name for name in SCENARIOS if name not in OPT_IN)
#: scenarios that need no wrk
NO_WRK = frozenset({"streams1000", "library", "inproc", "instr"})


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(
        prog="python -m bench",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument(
        "--scenarios",
        default=",".join(DEFAULT),
        help=f"comma-separated, from: {', '.join(SCENARIOS)} (default: all but soak and instr)",
    )
    p.add_argument(
        "--duration",
        type=float,
        default=None,
        help="seconds per measured run (default 5; --quick: 1)",
    )
    p.add_argument(
        "--warmup",
        type=float,
        default=None,
        help="seconds of warm-up before each run (default 1; --quick: 0)",
    )
    p.add_argument("--quick", action="store_true", help="a smoke run: short and small")
    p.add_argument(
        "--connections",
        type=int,
        default=None,
        help="connections in the streams1000 scenario (default 1000; --quick: 100)",
    )
    p.add_argument(
        "--library-calls",
        type=int,
        default=None,
        help="sequential calls per library variant (default 2000; --quick: 200)",
    )
    p.add_argument("--soak-s", type=float, default=600.0, help="length of the soak scenario")
    p.add_argument(
        "--profile",
        type=Path,
        default=None,
        metavar="DIR",
        help="record the gateway's c=64 runs with py-spy into DIR (pip install py-spy)",
    )
    p.add_argument(
        "--upstream-timer",
        choices=sorted(TIMERS),
        default="precise",
        help="how the delayed upstream (slow scenario) times its answers: 'precise' (default) "
        "or 'loop', the event loop's millisecond-quantised timers (see bench/timers.py)",
    )
    p.add_argument(
        "--upstream-jitter-ms",
        type=float,
        default=DEFAULT_JITTER_MS,
        help="spread each delayed answer uniformly by +/- this much "
        f"(default {DEFAULT_JITTER_MS:g}; see bench/timers.py)",
    )
    p.add_argument("--no-pin", action="store_true", help="do not pin processes to cores")
    p.add_argument(
        "--realtime",
        action="store_true",
        help="run every measured process at real-time priority (chrt -f 20, needs root): "
        "latency figures on a machine other work shares",
    )
    p.add_argument("--keep", action="store_true", help="keep the work folder (configs, logs)")
    return p.parse_args(argv)


def _raise_fd_limit() -> None:
    # 1,000 streams need ~2,000 descriptors in the gateway; children inherit this limit
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard == resource.RLIM_INFINITY or soft < hard:
        resource.setrlimit(
            resource.RLIMIT_NOFILE,
            (hard if hard != resource.RLIM_INFINITY else max(soft, 65536), hard),
        )


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    names = [n.strip() for n in args.scenarios.split(",") if n.strip()]
    unknown = [n for n in names if n not in SCENARIOS]
    if unknown:
        print(f"unknown scenario(s): {', '.join(unknown)}; known: {', '.join(SCENARIOS)}")
        return 2
    if not wrk.available() and any(n not in NO_WRK for n in names):
        print(wrk.INSTALL_HINT)
        return 2
    _raise_fd_limit()
    cores = Cores.detect(pin=not args.no_pin, realtime=args.realtime)
    if cores.realtime and shutil.which("chrt") is None:
        print("--realtime needs chrt (util-linux)")
        return 2
    workdir = Path(tempfile.mkdtemp(prefix="headway-bench-"))
    report = Report()
    bench = Bench(
        Procs(workdir, cores),
        report,
        duration=args.duration if args.duration is not None else (1.0 if args.quick else 5.0),
        warmup=args.warmup if args.warmup is not None else (0.0 if args.quick else 1.0),
        streams_connections=args.connections or (100 if args.quick else 1000),
        library_calls=args.library_calls or (200 if args.quick else 2000),
        soak_s=args.soak_s,
        upstream_timer=args.upstream_timer,
        upstream_jitter_ms=args.upstream_jitter_ms,
    )
    if args.profile is not None:
        if profile.py_spy() is None:
            print("--profile needs py-spy: pip install py-spy")
            return 2
        args.profile.mkdir(parents=True, exist_ok=True)
        bench.profile_dir = args.profile.resolve()
    load = os.getloadavg()
    f = report.figures
    f["machine"] = {
        "cpus": os.cpu_count(),
        "load_avg_start": [round(x, 2) for x in load],
        "pinned": cores.gateway is not None,
        "realtime": cores.realtime,
        "gateway_core": cores.gateway,
        "load_core": cores.load,
        "python": sys.version.split()[0],
    }
    f["duration_s"] = bench.duration
    f["scenarios"] = names
    print(
        f"headway bench: {', '.join(names)}; {bench.duration:g}s per run, "
        f"{bench.warmup:g}s warm-up; gateway on cpu {cores.gateway}, load on cpu {cores.load}"
    )
    print(
        f"load average {load[0]:.2f} {load[1]:.2f} {load[2]:.2f}"
        + ("  (busy machine: figures will be low and noisy)" if load[0] > 1.0 else "")
    )
    started = time.monotonic()
    failed: dict[str, str] = {}
    try:
        for name in names:
            doc = (SCENARIOS[name].__doc__ or "").strip().splitlines()
            print(f"[{name}] {doc[0] if doc else ''}", flush=True)
            t0 = time.monotonic()
            try:
                SCENARIOS[name](bench)
            except (RuntimeError, OSError, AssertionError) as exc:
                failed[name] = str(exc)[:500]
                print(f"[{name}] FAILED: {exc}", flush=True)
            print(f"[{name}] done in {time.monotonic() - t0:.0f}s", flush=True)
    finally:
        bench.procs.stop_all()
        if not args.keep:
            shutil.rmtree(workdir, ignore_errors=True)
        else:
            print(f"work folder kept: {workdir}")
    f["failed"] = failed
    f["elapsed_s"] = time.monotonic() - started
    f["machine"]["load_avg_end"] = [round(x, 2) for x in os.getloadavg()]  # type: ignore[index]
    print()
    print(report.table())
    print()
    print(report.json_line(), flush=True)
    return 1 if failed else 0
