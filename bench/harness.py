"""What every scenario shares: processes started once per run, one measured wrk run, progress.

A measurement is: an optional warm-up (connection pools, first-call imports), a pause until the
gateway has finished the requests the warm-up's wrk left in flight (`wait_idle`: one of them
loads the tokenizer), then one wrk run on the load core while a thread samples the gateway's RSS
and its CPU time is read before and after, so every gateway figure also comes with CPU
microseconds per request. That figure does not depend on how busy the rest of the machine is,
which throughput on a shared machine does.
"""

from __future__ import annotations

import http.client
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import orjson

from bench import configs, profile, wrk
from bench.procs import Proc, Procs, cpu_seconds, rss_mb
from bench.report import Report
from bench.timers import DEFAULT_JITTER_MS

DIRECT_MODEL = "bench-model"
PATH = "/v1/chat/completions"


@dataclass(slots=True, frozen=True)
class Measured:
    result: wrk.WrkResult
    rss_peak_mb: float = 0.0
    cpu_us_per_req: float = 0.0

    @property
    def rps(self) -> float:
        return self.result.rps


class RssSampler:
    """Peak (and every) RSS of a process tree while a measurement runs."""

    def __init__(self, pid: int, every: float = 0.25) -> None:
        self.pid = pid
        self.every = every
        self.samples: list[float] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.is_set():
            self.samples.append(rss_mb(self.pid))
            self._stop.wait(self.every)

    def __enter__(self) -> RssSampler:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()
        self.samples.append(rss_mb(self.pid))

    @property
    def peak(self) -> float:
        return max(self.samples, default=0.0)


@dataclass(slots=True)
class Bench:
    procs: Procs
    report: Report
    duration: float = 5.0
    warmup: float = 1.0
    streams_connections: int = 1000
    library_calls: int = 2000
    soak_s: float = 600.0
    quiet: bool = False
    #: folder for py-spy recordings of the gateway's saturation runs (None: no profiling)
    profile_dir: Path | None = None
    #: how a delayed upstream times its answers (bench.timers): "precise" or "loop" (quantised)
    upstream_timer: str = "precise"
    #: each delayed answer spread uniformly by +/- this much (bench.timers.Delayed)
    upstream_jitter_ms: float = DEFAULT_JITTER_MS
    _upstreams: dict[tuple[float, float], Proc] = field(default_factory=dict)
    _gateways: dict[tuple[str, int, int, bool], Proc] = field(default_factory=dict)
    _scripts: dict[tuple[str, bool, bool, tuple[int, int] | None], Path] = field(
        default_factory=dict
    )
    #: scenario -> the gateway's peak RSS under its load
    rss_peaks: dict[str, float] = field(default_factory=dict)

    def keep_rss(self, scenario: str, *peaks_mb: float) -> None:
        """Note a scenario's peak RSS under load (figures `rss_mb`, `rss_mb_by_scenario`)."""
        self.rss_peaks[scenario] = max(self.rss_peaks.get(scenario, 0.0), *peaks_mb)
        self.report.figures["rss_mb"] = max(self.rss_peaks.values())
        self.report.figures["rss_mb_by_scenario"] = dict(self.rss_peaks)

    @property
    def workdir(self) -> Path:
        return self.procs.workdir

    def say(self, text: str) -> None:
        if not self.quiet:
            print(text, flush=True)

    # ---- processes ----------------------------------------------------------------------------

    def upstream(self, delay_ms: float = 0.0, interval_ms: float = 0.0) -> Proc:
        key = (delay_ms, interval_ms)
        if key not in self._upstreams:
            self._upstreams[key] = self.procs.upstream(
                delay_ms,
                interval_ms=interval_ms,
                timer=self.upstream_timer,
                jitter_ms=self.upstream_jitter_ms,
            )
        return self._upstreams[key]

    def gateway(
        self,
        kind: str,
        upstream: Proc,
        workers: int = 1,
        pin: bool = True,
        redis_url: str | None = None,
    ) -> Proc:
        key = (kind, upstream.port, workers, pin)
        proc = self._gateways.get(key)
        if proc is None or not proc.alive():
            name = f"{kind}-{upstream.port}-w{workers}"
            path = configs.write(kind, upstream.port, self.workdir, redis_url, name=name)
            started = time.monotonic()
            proc = self._gateways[key] = self.procs.gateway(path, workers, pin)
            self.say(
                f"  started gateway {name} (pid {proc.pid}) in {time.monotonic() - started:.1f}s"
            )
        return proc

    def stop(self, proc: Proc) -> None:
        self.procs.stop(proc)
        for key, value in list(self._gateways.items()):
            if value is proc:
                del self._gateways[key]

    def script(
        self,
        model: str,
        stream: bool = False,
        vary: bool = False,
        stagger: tuple[int, int] | None = None,
    ) -> Path:
        key = (model, stream, vary, stagger)
        if key not in self._scripts:
            name = f"{model}{'-stream' if stream else ''}{'-vary' if vary else ''}"
            name += f"-stagger{stagger[0]}x{stagger[1]}.lua" if stagger else ".lua"
            user = "bench-user" if model == configs.ROUTE else None
            self._scripts[key] = wrk.script(self.workdir / name, model, stream, vary, user, stagger)
        return self._scripts[key]

    # ---- one measurement ----------------------------------------------------------------------

    def measure(
        self,
        label: str,
        target: Proc,
        connections: int,
        stream: bool = False,
        vary: bool = False,
        gateway: bool | None = None,
        pin: bool = True,
        seconds: float | None = None,
        before: Callable[[], object] | None = None,
        stagger_ms: int = 0,
    ) -> Measured:
        """`before` runs after the warm-up, right before the measured run (resetting counters);
        `stagger_ms` spreads the connections' first requests over that many ms (bench.wrk)."""
        is_gateway = target.name.startswith("gateway") if gateway is None else gateway
        model = configs.ROUTE if is_gateway else DIRECT_MODEL
        lua = self.script(model, stream, vary, (connections, stagger_ms) if stagger_ms else None)
        url = f"http://127.0.0.1:{target.port}{PATH}"
        cores = self.procs.cores
        prefix = cores.prefix(cores.load) if pin else []
        if self.warmup > 0:
            wrk.run(url, lua, connections, self.warmup, prefix)
            if is_gateway:
                wait_idle(target.port)
        if before is not None:
            before()
        watched = target.pid if is_gateway else None
        cpu0 = cpu_seconds(watched) if watched else 0.0
        sampler = RssSampler(watched) if watched else None
        run_s = seconds or self.duration
        recording, raw = None, None
        if watched and self.profile_dir is not None and connections >= 64:
            raw = self.profile_dir / (label.replace(" ", "-").replace("/", "-") + ".txt")
            recording = profile.record(watched, run_s - 0.5, raw, prefix)
        if sampler is not None:
            with sampler:
                result = wrk.run(url, lua, connections, run_s, prefix)
        else:
            result = wrk.run(url, lua, connections, run_s, prefix)
        if recording is not None and raw is not None:
            recording.wait(30)
            if raw.exists():
                (raw.with_suffix(".top.txt")).write_text(profile.ranking(profile.load(raw)))
                self.say(f"  profile: {raw} (+ .top.txt)")
        cpu = (cpu_seconds(watched) - cpu0) if watched else 0.0
        peak = sampler.peak if sampler is not None else 0.0
        m = Measured(result, peak, cpu / result.requests * 1e6 if result.requests else 0.0)
        extra = f", gateway cpu {m.cpu_us_per_req:.0f} us/req, rss {peak:.0f} MB" if watched else ""
        errors = f", {result.errors} ERRORS" if result.errors else ""
        self.say(
            f"  {label} c={connections}: {m.rps:,.0f} req/s, p50 {result.p50_ms:.3f} ms, "
            f"p99 {result.p99_ms:.3f} ms{extra}{errors}"
        )
        if result.errors:
            errs = self.report.figures.setdefault("wrk_errors", {})
            assert isinstance(errs, dict)
            errs[label] = result.errors
        return m

    def run_json(self, argv: list[str], where: str | None, timeout: float) -> dict[str, object]:
        """Run a helper module (`python -m bench.X ...`) on a core; its last line is JSON."""
        cmd = [*self.procs.cores.prefix(where), sys.executable, *argv]
        done = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)
        if done.returncode != 0:
            raise RuntimeError(f"{' '.join(argv)} failed:\n{done.stderr[-3000:]}")
        out: dict[str, object] = orjson.loads(done.stdout.strip().splitlines()[-1])
        return out


#: how long a warm-up's cut requests may still wait for their upstream (the slowest delay used)
SETTLE_S = 0.25


def wait_idle(port: int) -> None:
    """Return once the gateway has finished what a warm-up left behind.

    wrk stops with requests in flight. The gateway finishes them when their upstream answers
    (up to the upstream's delay later), and a stream cut before its usage is settled by counting
    its tokens, which loads the tokenizer the first time: measured 0.3-1.7 s with the event loop
    blocked and +45 MB RSS, which landed in the measured run (the 50 ms streams' p99 of
    1.1-2.5 s). After the upstream's delay, a request answered shows that work is over.
    """
    time.sleep(SETTLE_S)
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
    try:
        conn.request("GET", "/health")
        conn.getresponse().read()
    finally:
        conn.close()


def upstream_log(port: int) -> dict[str, float]:
    """The fake upstream's log of its delayed answers since the last call (bench.timers)."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    try:
        conn.request("GET", "/bench/stats")
        out: dict[str, float] = orjson.loads(conn.getresponse().read())
        return out
    finally:
        conn.close()


def probe(
    port: int, body: bytes, headers: dict[str, str] | None = None
) -> tuple[int, dict[str, str], bytes]:
    """One request, for checking a scenario is set up as intended before it is measured."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    try:
        conn.request("POST", PATH, body, {"Content-Type": "application/json", **(headers or {})})
        resp = conn.getresponse()
        data = resp.read()
        return resp.status, {k.lower(): v for k, v in resp.getheaders()}, data
    finally:
        conn.close()
