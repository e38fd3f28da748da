"""The scenarios of the performance issue; each adds rows and named figures to the report.

Every gateway figure is measured next to its direct baseline (the same wrk, the same concurrency,
straight at the upstream) in the same run. Targets are the issue's, shown for reading; nothing
here asserts a timing.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from pathlib import Path

from bench import configs, wrk
from bench.harness import Bench, Measured, probe, upstream_log
from bench.procs import Proc, cpu_seconds
from bench.report import Row

Scenario = Callable[[Bench], None]


def _latency_rows(
    b: Bench, scenario: str, label: str, direct: Measured, gw: Measured, targets: bool
) -> None:
    r = b.report
    r.add(
        Row(
            scenario,
            f"p50 {label}",
            "ms",
            gw.result.p50_ms,
            direct.result.p50_ms,
            "added",
            ("max", 0.5, "added") if targets else None,
        )
    )
    r.add(
        Row(
            scenario,
            f"p99 {label}",
            "ms",
            gw.result.p99_ms,
            direct.result.p99_ms,
            "added",
            ("max", 2.0, "added") if targets else None,
        )
    )


def _keep_rss(b: Bench, scenario: str, *ms: Measured) -> None:
    b.keep_rss(scenario, *(m.rss_peak_mb for m in ms))


def passthrough(b: Bench) -> None:
    """Non-streaming pass-through route at c=1, 16 and 64 (saturation); added latency at c=1."""
    up = b.upstream()
    gw = b.gateway("passthrough", up)
    f = b.report.figures
    for c in (1, 16, 64):
        d = b.measure("passthrough direct", up, c)
        g = b.measure("passthrough gateway", gw, c)
        target = ("min", 3000.0, "gateway") if c == 64 else None
        b.report.add(Row("passthrough", f"req/s c={c}", "req/s", g.rps, d.rps, "ratio", target))
        f[f"passthrough_rps_c{c}"] = g.rps
        f[f"passthrough_rps_c{c}_direct"] = d.rps
        if c == 1:
            _latency_rows(b, "passthrough", "c=1", d, g, targets=True)
            f["added_p50_ms_c1"] = g.result.p50_ms - d.result.p50_ms
            f["added_p99_ms_c1"] = g.result.p99_ms - d.result.p99_ms
        elif c == 16:
            # closed loop at zero delay: the gateway's queue is part of this latency
            _latency_rows(b, "passthrough", "c=16 (queueing)", d, g, targets=False)
            f["added_p50_ms_c16_zero_delay"] = g.result.p50_ms - d.result.p50_ms
            f["added_p99_ms_c16_zero_delay"] = g.result.p99_ms - d.result.p99_ms
        else:
            f["passthrough_rps"] = g.rps
            f["passthrough_cpu_us_per_req"] = g.cpu_us_per_req
        _keep_rss(b, "passthrough", g)


def streaming(b: Bench) -> None:
    """24-chunk SSE streams: saturation (c=64) and whole-stream latency at c=1."""
    up = b.upstream()
    gw = b.gateway("passthrough", up)
    f = b.report.figures
    d1 = b.measure("stream direct", up, 1, stream=True)
    g1 = b.measure("stream gateway", gw, 1, stream=True)
    _latency_rows(b, "streaming", "c=1 (whole stream)", d1, g1, targets=False)
    d = b.measure("stream direct", up, 64, stream=True)
    g = b.measure("stream gateway", gw, 64, stream=True)
    b.report.add(
        Row(
            "streaming",
            "streams/s c=64",
            "streams/s",
            g.rps,
            d.rps,
            "ratio",
            ("min", 1500.0, "gateway"),
        )
    )
    f["stream_sps"] = g.rps
    f["stream_sps_direct"] = d.rps
    f["stream_cpu_us_per_stream"] = g.cpu_us_per_req
    f["stream_added_p50_ms_c1"] = g1.result.p50_ms - d1.result.p50_ms
    f["stream_added_p99_ms_c1"] = g1.result.p99_ms - d1.result.p99_ms
    _keep_rss(b, "streaming", g1, g)


def slow(b: Bench) -> None:
    """A 50 ms upstream at c=16: throughput within 5% of direct, and added latency at c=16.

    The upstream times its answers with `b.upstream_timer` ("precise" by default; "loop" is the
    event loop's millisecond grid, which answers in bursts) and spreads them by
    `b.upstream_jitter_ms` (bench/timers.py). Each run also reports, from the upstream's own log,
    the share of answers written within 100 us of the previous one (bursts) and how late the
    timer fired, for the direct and the gateway run alike.
    """
    up = b.upstream(delay_ms=50)
    gw = b.gateway("passthrough", up)
    f = b.report.figures
    f["slow_upstream"] = {"timer": b.upstream_timer, "jitter_ms": b.upstream_jitter_ms}
    for stream in (False, True):
        kind = "stream" if stream else "non-stream"
        key = "slow_stream" if stream else "slow"
        d = _slow_run(b, f"50ms {kind} direct", up, up, stream, f"{key}_upstream_direct")
        g = _slow_run(b, f"50ms {kind} gateway", gw, up, stream, f"{key}_upstream_gateway")
        b.report.add(
            Row(
                "50ms upstream",
                f"{kind} req/s c=16",
                "req/s",
                g.rps,
                d.rps,
                "ratio",
                ("min", 0.95, "ratio"),
            )
        )
        f[f"{key}_rps"] = g.rps
        f[f"{key}_rps_direct"] = d.rps
        f[f"{key}_ratio"] = g.rps / d.rps if d.rps else None
        f[f"{key}_cpu_us_per_req"] = g.cpu_us_per_req
        if not stream:
            _latency_rows(b, "50ms upstream", "c=16", d, g, targets=True)
            f["added_p50_ms_c16"] = g.result.p50_ms - d.result.p50_ms
            f["added_p99_ms_c16"] = g.result.p99_ms - d.result.p99_ms
        _keep_rss(b, "slow", g)
    # The same latency with the connections' first requests spread over one upstream delay
    # (bench.wrk): clients out of step, as independent ones are, instead of wrk's lockstep.
    d = _slow_run(b, "50ms staggered direct", up, up, False, "slow_staggered_upstream_direct", 50)
    g = _slow_run(b, "50ms staggered gateway", gw, up, False, "slow_staggered_upstream_gateway", 50)
    _latency_rows(b, "50ms upstream", "c=16, staggered start", d, g, targets=False)
    f["added_p50_ms_c16_staggered"] = g.result.p50_ms - d.result.p50_ms
    f["added_p99_ms_c16_staggered"] = g.result.p99_ms - d.result.p99_ms


def _slow_run(
    b: Bench, label: str, target: Proc, up: Proc, stream: bool, name: str, stagger_ms: int = 0
) -> Measured:
    """One run of the slow scenario, with the upstream's log of its answers during it."""
    m = b.measure(
        label,
        target,
        16,
        stream=stream,
        before=lambda: upstream_log(up.port),
        stagger_ms=stagger_ms,
    )
    log = upstream_log(up.port)
    b.report.figures[name] = log
    b.say(
        f"    upstream: {log['bunched_share']:.0%} of answers <100 us after the previous, "
        f"timer late p50 {log['late_p50_us']:.0f} us, p99 {log['late_p99_us']:.0f} us"
    )
    return m


def cache(b: Bench) -> None:
    """Exact-cache hits: the same request again and again, answered without the upstream."""
    up = b.upstream()
    gw = b.gateway("cache", up)
    body = wrk.chat_body(configs.ROUTE, user="bench-user").encode()
    probe(gw.port, body)
    status, headers, data = probe(gw.port, body)
    if status != 200 or headers.get("x-headway-cache") != "exact":
        raise RuntimeError(f"cache scenario is not hitting: {status} {headers} {data[:200]!r}")
    d = b.measure("cache direct (upstream)", up, 64)
    g = b.measure("cache hit gateway", gw, 64)
    b.report.add(
        Row(
            "exact cache",
            "hits/s c=64",
            "req/s",
            g.rps,
            d.rps,
            "ratio",
            ("min", 10000.0, "gateway"),
        )
    )
    b.report.figures["cache_hit_rps"] = g.rps
    b.report.figures["cache_hit_cpu_us_per_req"] = g.cpu_us_per_req
    _keep_rss(b, "cache", g)


def _policies_run(b: Bench, kind: str, redis_url: str | None = None) -> tuple[Measured, Measured]:
    up = b.upstream()
    gw = b.gateway(kind, up, redis_url=redis_url)
    status, headers, data = probe(gw.port, wrk.chat_body(configs.ROUTE, user="u").encode())
    if status != 200 or headers.get("x-headway-cache") != "miss":
        raise RuntimeError(f"{kind} scenario misconfigured: {status} {headers} {data[:200]!r}")
    g1 = b.measure(f"{kind} gateway", gw, 1, vary=True)
    g = b.measure(f"{kind} gateway", gw, 64, vary=True)
    return g1, g


def policies(b: Bench) -> None:
    """Limits + budgets + exact-cache lookups (all missing) + metrics, memory backends."""
    d = b.measure("policies direct", b.upstream(), 64, vary=True)
    g1, g = _policies_run(b, "policies")
    b.report.add(
        Row(
            "policies (memory)",
            "req/s c=64",
            "req/s",
            g.rps,
            d.rps,
            "ratio",
            ("min", 2000.0, "gateway"),
        )
    )
    f = b.report.figures
    f["policies_rps"] = g.rps
    f["policies_cpu_us_per_req"] = g.cpu_us_per_req
    f["policies_p50_ms_c1"] = g1.result.p50_ms
    pt = f.get("passthrough_rps_c1")
    if isinstance(pt, float) and g1.rps:
        f["policies_added_p50_ms_c1_vs_passthrough"] = 1000.0 / g1.rps - 1000.0 / pt
    _keep_rss(b, "policies", g1, g)


def redis(b: Bench) -> None:
    """The same policies with Redis on loopback: throughput, and Redis commands per request."""
    import redis as redis_py

    server = b.procs.redis()
    url = f"redis://127.0.0.1:{server.port}/0"
    client = redis_py.Redis.from_url(url)
    try:
        gw = b.gateway("redis", b.upstream(), redis_url=url)
        status, headers, data = probe(gw.port, wrk.chat_body(configs.ROUTE, user="u").encode())
        if status != 200 or headers.get("x-headway-cache") != "miss":
            raise RuntimeError(f"redis scenario misconfigured: {status} {headers} {data[:200]!r}")
        # redis-server shares the load core with wrk and the upstream: its CPU per request, and
        # how busy that core was, tell whether Redis (or the load core) rather than the gateway
        # limits the throughput.
        marks: dict[str, float] = {}

        def before() -> None:
            client.config_resetstat()
            marks["redis"] = cpu_seconds(server.pid)
            marks["core"], marks["at"] = _busy_seconds(b.procs.cores.load), time.monotonic()

        g = b.measure("redis gateway", gw, 64, vary=True, before=before)
        redis_cpu = cpu_seconds(server.pid) - marks["redis"]
        core_busy = _busy_seconds(b.procs.cores.load) - marks["core"]
        wall = time.monotonic() - marks["at"]
        stats = client.info("commandstats")
    finally:
        client.close()
    calls = {k.removeprefix("cmdstat_"): int(v["calls"]) for k, v in stats.items()}
    for admin in ("info", "config|resetstat", "config"):
        calls.pop(admin, None)
    # calls still in flight when wrk stopped add a few commands: a slight overcount
    answered = g.result.requests
    per_req = {k: v / answered for k, v in calls.items() if answered}
    # time inside the commands (a script's includes the calls it makes); the rest of
    # redis-server's CPU is the network and the event loop
    usec = {k.removeprefix("cmdstat_"): float(v["usec"]) for k, v in stats.items()}
    exec_us = sum(usec.get(k, 0.0) for k in calls if k not in _NESTED) / answered if answered else 0
    memory = b.report.figures.get("policies_rps")
    b.report.add(
        Row(
            "policies (redis)",
            "req/s c=64 vs memory",
            "req/s",
            g.rps,
            memory if isinstance(memory, float) else None,
            "ratio",
            ("min", 0.70, "ratio"),
        )
    )
    b.report.add(
        Row(
            "policies (redis)",
            "redis commands per request",
            "cmds",
            sum(per_req.values()),
            None,
            "none",
        )
    )
    f = b.report.figures
    f["redis_rps"] = g.rps
    f["redis_ratio_vs_memory"] = g.rps / memory if isinstance(memory, float) and memory else None
    f["redis_cmds_per_request"] = sum(per_req.values())
    f["redis_cmds_per_request_by_command"] = per_req
    redis_us = redis_cpu / answered * 1e6 if answered else 0.0
    busy = core_busy / wall if wall > 0 and core_busy >= 0 else 0.0
    f["redis_server_cpu_us_per_req"] = redis_us
    f["redis_load_core_busy"] = busy
    f["redis_exec_us_per_req"] = exec_us
    mem_cpu = f.get("policies_cpu_us_per_req")
    if isinstance(mem_cpu, float) and g.cpu_us_per_req:
        # the throughput ratio a gateway-bound run would show, independent of the load core
        f["redis_gateway_cpu_ratio_vs_memory"] = mem_cpu / g.cpu_us_per_req
    b.say(
        f"  redis-server cpu {redis_us:.0f} us/req ({exec_us:.0f} in commands), "
        f"load core busy {100 * busy:.0f} %"
    )
    _keep_rss(b, "redis", g)


# commands that only run inside scripts: their time is already in the EVALSHA's
_NESTED = frozenset({"hmget", "hset", "pexpire", "time", "zadd", "zrem", "zcard", "zrange"})
_NESTED |= {"zremrangebyscore"}


def _busy_seconds(cpus: str | None) -> float:
    """Non-idle time of the listed CPUs ("1" or "1,2"; None: all), seconds, from /proc/stat;
    -1 when unreadable."""
    wanted = {f"cpu{c}" for c in cpus.split(",")} if cpus else {"cpu"}
    tick = os.sysconf("SC_CLK_TCK")
    try:
        lines = Path("/proc/stat").read_text().splitlines()
    except OSError:
        return -1.0
    total = 0
    for line in lines:
        name, *vals = line.split()
        if name in wanted:
            v = [int(x) for x in vals]
            total += sum(v[:8]) - v[3] - v[4]  # all but idle and iowait
    return total / tick
