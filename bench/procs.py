"""Starting and stopping what a benchmark measures: the fake upstream, the gateway, redis-server.

Every process is started by this module, remembered, and stopped by its own pid (never by name).
Ports are chosen by the processes themselves (`--port 0`) and read back from their first line of
output, so two runs on one machine never collide. Placement on cores goes through `taskset`: on a
machine with two or more cores the gateway gets the first core and everything that produces load
(wrk, the upstream, Redis, the TTFT client) the second, as the performance issue prescribes.
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


@dataclass(slots=True, frozen=True)
class Cores:
    """Which CPUs the gateway and the load side run on (None: no pinning), and whether they run
    at real-time priority.

    `realtime` (`chrt -f 20`, needs root or CAP_SYS_NICE) is for a machine that other work
    shares: pinning keeps the bench's processes apart but not other processes off their cores,
    and a gateway that waits for a time slice adds milliseconds to every latency figure (measured
    at a load average of 6: +6-9 ms added p50 at c=16, against +1.0 ms with `realtime`). CPU
    per request barely depends on it."""

    gateway: str | None
    load: str | None
    realtime: bool = False

    @staticmethod
    def detect(pin: bool = True, realtime: bool = False) -> Cores:
        cpus = sorted(os.sched_getaffinity(0))
        if not pin or len(cpus) < 2 or shutil.which("taskset") is None:
            return Cores(None, None, realtime)
        return Cores(str(cpus[0]), ",".join(str(c) for c in cpus[1:]), realtime)

    def prefix(self, where: str | None) -> list[str]:
        rt = ["chrt", "-f", "20"] if self.realtime else []
        return [*rt, "taskset", "-c", where] if where is not None else rt


@dataclass(slots=True)
class Proc:
    name: str
    popen: subprocess.Popen[str]
    log: Path
    port: int = 0

    @property
    def pid(self) -> int:
        return self.popen.pid

    def alive(self) -> bool:
        return self.popen.poll() is None

    def stop(self, grace: float = 5.0) -> None:
        if not self.alive():
            return
        self.popen.send_signal(signal.SIGTERM)
        try:
            self.popen.wait(grace)
        except subprocess.TimeoutExpired:
            self.popen.kill()
            self.popen.wait(grace)


@dataclass(slots=True)
class Procs:
    """All processes of one bench run; `stop_all` in a `finally` leaves nothing behind."""

    workdir: Path
    cores: Cores
    running: list[Proc] = field(default_factory=list)

    def _start(self, name: str, argv: list[str], where: str | None, ready: str) -> Proc:
        log = self.workdir / f"{name}.log"
        # stdout goes to a file so that a chatty process can never block on a full pipe
        out = log.open("w")
        popen = subprocess.Popen(
            [*self.cores.prefix(where), *argv],
            stdout=out,
            stderr=subprocess.STDOUT,
            text=True,
            cwd=ROOT,
            env={**os.environ, "PYTHONUNBUFFERED": "1"},
        )
        out.close()
        proc = Proc(name, popen, log)
        self.running.append(proc)
        proc.port = _wait_for_port(proc, re.compile(ready))
        return proc

    def upstream(
        self,
        delay_ms: float = 0.0,
        chunks: int = 24,
        interval_ms: float = 0.0,
        name: str = "",
        timer: str = "precise",
        jitter_ms: float = 0.0,
    ) -> Proc:
        """The fake upstream; `timer` and `jitter_ms` shape its delays (see bench.timers)."""
        argv = [sys.executable, "-m", "bench.upstream", "--port", "0", "--chunks", str(chunks)]
        argv += ["--delay-ms", str(delay_ms), "--interval-ms", str(interval_ms)]
        argv += ["--timer", timer, "--jitter-ms", str(jitter_ms)]
        label = name or f"upstream-{delay_ms:g}ms"
        return self._start(label, argv, self.cores.load, r"http://[\d.]+:(\d+)/v1")

    def gateway(
        self, config: Path, workers: int = 1, pin: bool = True, http: str | None = None
    ) -> Proc:
        """`headway serve` exactly as a user runs it (its default HTTP server unless `http`
        names one: "native" or "uvicorn")."""
        argv = [sys.executable, "-m", "headway", "serve", "--config", str(config)]
        argv += ["--port", "0", "--workers", str(workers), "--log-level", "warning"]
        if http is not None:
            argv += ["--http", http]
        where = self.cores.gateway if pin and workers == 1 else None
        proc = self._start(f"gateway-{config.stem}", argv, where, r"listening\s+http://[^:]+:(\d+)")
        _wait_http(proc, "/health")
        return proc

    def floor(self, mode: str, upstream_port: int) -> Proc:
        """A reference server from bench.floor, on the gateway's core."""
        argv = [sys.executable, "-m", "bench.floor", "--mode", mode]
        argv += ["--upstream-port", str(upstream_port)]
        proc = self._start(
            f"floor-{mode}", argv, self.cores.gateway, r"listening\s+http://[^:]+:(\d+)"
        )
        _wait_http(proc, "/health")
        return proc

    def redis(self) -> Proc:
        exe = shutil.which("redis-server")
        if exe is None:
            raise RuntimeError(
                "redis-server is not installed (Debian: apt-get install redis-server)"
            )
        port = free_port()
        argv = [exe, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly"]
        argv += ["no", "--protected-mode", "no", "--dir", str(self.workdir)]
        proc = self._start("redis", argv, self.cores.load, r"(Ready to accept connections)")
        proc.port = port
        return proc

    def stop(self, proc: Proc) -> None:
        proc.stop()
        if proc in self.running:
            self.running.remove(proc)

    def stop_all(self) -> None:
        for proc in reversed(self.running):
            proc.stop()
        self.running.clear()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def _wait_for_port(proc: Proc, pattern: re.Pattern[str], timeout: float = 60.0) -> int:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        text = proc.log.read_text(errors="replace")
        m = pattern.search(text)
        if m:
            group = m.group(1)
            return int(group) if group.isdigit() else 0
        if not proc.alive():
            raise RuntimeError(f"{proc.name} exited at start-up:\n{text[-2000:]}")
        time.sleep(0.05)
    raise RuntimeError(f"{proc.name} did not start within {timeout:.0f}s")


def _wait_http(proc: Proc, path: str, timeout: float = 30.0) -> None:
    request = f"GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n".encode()
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", proc.port), timeout=2) as s:
                s.sendall(request)
                if s.recv(64).startswith(b"HTTP/1.1 200"):
                    return
        except OSError:
            pass
        if not proc.alive():
            raise RuntimeError(
                f"{proc.name} exited:\n{proc.log.read_text(errors='replace')[-2000:]}"
            )
        time.sleep(0.1)
    raise RuntimeError(f"{proc.name} did not answer {path} within {timeout:.0f}s")


def rss_mb(pid: int) -> float:
    """Resident memory of `pid` and its children (workers), MB."""
    total = 0
    for p in [pid, *_children(pid)]:
        try:
            for line in Path(f"/proc/{p}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    total += int(line.split()[1])
        except OSError:
            continue
    return total / 1024.0


def _children(pid: int) -> list[int]:
    out: list[int] = []
    try:
        kids = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
    except OSError:
        return out
    for kid in kids:
        out.append(int(kid))
        out.extend(_children(int(kid)))
    return out


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of `pid` and its live children, seconds."""
    tick = os.sysconf("SC_CLK_TCK")
    total = 0.0
    for p in [pid, *_children(pid)]:
        try:
            fields = Path(f"/proc/{p}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        total += (int(fields[11]) + int(fields[12])) / tick
    return total
