"""Sampling the gateway under load with py-spy, and reading the samples back as a ranking.

`python -m bench --profile DIR` records every saturation run of a gateway (c=64) into
`DIR/<label>.txt` (py-spy's raw "collapsed stacks", one line per distinct stack) and prints the
functions that take the most samples, by own time and including callees. The sampler runs on the
load core, so the gateway's core only pays for the stack reads.

    python -m bench.profile DIR/passthrough-gateway.txt [--top 30] [--callers FUNCTION]
"""

from __future__ import annotations

import argparse
import re
import shutil
import subprocess
import sys
from collections import Counter
from pathlib import Path

_LINE = re.compile(r":\d+\)$")


def py_spy() -> str | None:
    beside = Path(sys.executable).parent / "py-spy"
    if beside.exists():
        return str(beside)
    return shutil.which("py-spy")


def record(
    pid: int, seconds: float, out: Path, prefix: list[str]
) -> subprocess.Popen[bytes] | None:
    exe = py_spy()
    if exe is None:
        return None
    argv = [*prefix, exe, "record", "-p", str(pid), "-d", str(max(1, int(seconds)))]
    argv += ["-r", "250", "-f", "raw", "-o", str(out), "--nonblocking"]
    return subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def _frame(raw: str) -> str:
    return _LINE.sub(")", raw)


def load(path: Path) -> list[tuple[list[str], int]]:
    stacks = []
    for line in path.read_text().splitlines():
        if not line.strip():
            continue
        stack, count = line.rsplit(" ", 1)
        stacks.append(([_frame(f) for f in stack.split(";")], int(count)))
    return stacks


def ranking(stacks: list[tuple[list[str], int]], top: int = 25) -> str:
    own: Counter[str] = Counter()
    total: Counter[str] = Counter()
    samples = 0
    for frames, n in stacks:
        samples += n
        own[frames[-1]] += n
        for f in set(frames):
            total[f] += n
    if not samples:
        return "no samples"
    lines = [f"{samples} samples", "by component:", components(stacks), "own time:"]
    lines += [f"  {100 * c / samples:5.1f}%  {f}" for f, c in own.most_common(top)]
    lines.append("including callees:")
    lines += [f"  {100 * c / samples:5.1f}%  {f}" for f, c in total.most_common(top * 2)]
    return "\n".join(lines)


_LIBS = {
    "aiohttp": "aiohttp (upstream client)",
    "yarl": "aiohttp (upstream client)",
    "multidict": "aiohttp (upstream client)",
    "aiohappyeyeballs": "aiohttp (upstream client)",
    "uvicorn": "uvicorn (server)",
    "httptools": "server (httptools parser)",
    "prometheus_client": "prometheus_client",
    "redis": "redis-py",
    "tiktoken": "tiktoken",
}


_LOOP = "event loop (uvloop, syscalls)"


def component(frame: str) -> str | None:
    """The part of the program a frame belongs to; None for the standard library (which is
    charged to whoever called it)."""
    start = frame.rfind("(")
    path = frame[start + 1 : -1] if start >= 0 else ""
    if frame.startswith("run_worker "):
        return _LOOP  # uvloop runs in C below the worker's `runner.run`: py-spy stops here
    if path.startswith("headway/"):
        parts = path.split("/")
        return "headway." + (parts[1].removesuffix(".py") if len(parts) > 2 else parts[1])
    first = path.split("/", 1)[0]
    return _LIBS.get(first)


def components(stacks: list[tuple[list[str], int]]) -> str:
    """Own time by component: each sample goes to its innermost frame that is not standard
    library; samples that are standard library all the way down are the event loop itself."""
    shares: Counter[str] = Counter()
    samples = 0
    for frames, n in stacks:
        samples += n
        owner = _LOOP
        for f in reversed(frames):
            found = component(f)
            if found is not None:
                owner = found
                break
        shares[owner] += n
    if not samples:
        return "no samples"
    return "\n".join(f"  {100 * c / samples:5.1f}%  {name}" for name, c in shares.most_common())


def callers(stacks: list[tuple[list[str], int]], needle: str, top: int = 15) -> str:
    seen: Counter[str] = Counter()
    samples = sum(n for _, n in stacks)
    for frames, n in stacks:
        for i, f in enumerate(frames):
            if needle in f and i > 0:
                seen[frames[i - 1]] += n
                break
    return "\n".join(f"  {100 * c / samples:5.1f}%  {f}" for f, c in seen.most_common(top))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("raw", type=Path)
    parser.add_argument("--top", type=int, default=30)
    parser.add_argument("--callers", default=None, help="who calls functions matching this")
    parser.add_argument("--components", action="store_true", help="own time by component only")
    args = parser.parse_args()
    stacks = load(args.raw)
    if args.callers:
        print(callers(stacks, args.callers, args.top))
    elif args.components:
        print(components(stacks))
    else:
        print(ranking(stacks, args.top))


if __name__ == "__main__":
    main()
