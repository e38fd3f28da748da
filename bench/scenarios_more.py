"""Scenarios beyond one wrk run: 1,000 open streams, memory, workers, and the library path."""

from __future__ import annotations

import time

from bench import wrk
from bench.harness import Bench, RssSampler, probe
from bench.procs import rss_mb
from bench.report import Row

#: upstream pacing for the 1,000-stream scenario: 24 events 100 ms apart, 2.5 s a stream
STREAM_INTERVAL_MS = 100.0


def _streams(b: Bench, port: int, model: str) -> dict[str, object]:
    argv = ["-m", "bench.streams", "--url", f"http://127.0.0.1:{port}/v1/chat/completions"]
    argv += ["--model", model, "--connections", str(b.streams_connections)]
    argv += ["--duration", str(b.duration), "--ramp", "1"]
    return b.run_json(argv, b.procs.cores.load, timeout=b.duration + 120)


def _brief(d: dict[str, object]) -> str:
    return (
        f"{d['completed']} completed, {d['failed']} failed {d['errors'] or ''}, "
        f"{d['open_max']} open at once, TTFT p50 {_num(d, 'ttft_p50_ms'):.2f} ms "
        f"p99 {_num(d, 'ttft_p99_ms'):.2f} ms (first byte p99 {_num(d, 'ttfb_p99_ms'):.2f} ms), "
        f"client used {_num(d, 'client_cpu_share'):.0%} "
        "of its core"
    )


def _num(d: dict[str, object], key: str) -> float:
    value = d[key]
    assert isinstance(value, int | float)
    return float(value)


def streams1000(b: Bench) -> None:
    """1,000 concurrent streaming connections (paced upstream): all complete, added TTFT p99."""
    up = b.upstream(interval_ms=STREAM_INTERVAL_MS)
    gw = b.gateway("passthrough", up)
    n = b.streams_connections
    direct = _streams(b, up.port, "bench-model")
    b.say(f"  {n} streams direct: {_brief(direct)}")
    with RssSampler(gw.pid) as rss:
        via = _streams(b, gw.port, "bench")
    b.say(f"  {n} streams gateway: {_brief(via)}, rss peak {rss.peak:.0f} MB")
    r, f = b.report, b.report.figures
    r.add(
        Row(
            f"{n} streams",
            "completed",
            "streams",
            _num(via, "completed"),
            _num(direct, "completed"),
            "ratio",
        )
    )
    r.add(
        Row(
            f"{n} streams",
            "failed",
            "streams",
            _num(via, "failed"),
            _num(direct, "failed"),
            "none",
            ("max", 0.0, "gateway"),
        )
    )
    r.add(
        Row(
            f"{n} streams",
            "TTFT p50",
            "ms",
            _num(via, "ttft_p50_ms"),
            _num(direct, "ttft_p50_ms"),
            "added",
        )
    )
    r.add(
        Row(
            f"{n} streams",
            "TTFT p99",
            "ms",
            _num(via, "ttft_p99_ms"),
            _num(direct, "ttft_p99_ms"),
            "added",
            ("max", 5.0, "added"),
        )
    )
    f["streams_connections"] = n
    f["streams_open_max"] = via["open_max"]
    f["streams_completed"] = via["completed"]
    f["streams_failed"] = via["failed"]
    f["streams_added_ttft_p50_ms"] = _num(via, "ttft_p50_ms") - _num(direct, "ttft_p50_ms")
    f["streams_added_ttft_p99_ms"] = _num(via, "ttft_p99_ms") - _num(direct, "ttft_p99_ms")
    f["streams_client_cpu_share"] = via["client_cpu_share"]
    f["streams_rss_mb"] = rss.peak
    b.keep_rss("streams1000", rss.peak)


def rss(b: Bench) -> None:
    """RSS with the local embedder loaded (semantic cache on), idle and under load."""
    up = b.upstream()
    gw = b.gateway("embedder", up)
    probe(gw.port, wrk.chat_body("bench", user="u").encode())  # loads the embedder
    idle = rss_mb(gw.pid)
    m = b.measure("embedder gateway (every call embeds)", gw, 16, vary=True)
    b.report.add(
        Row("memory", "RSS, embedder loaded, under load", "MB", m.rss_peak_mb, None, "none")
    )
    f = b.report.figures
    f["rss_mb_embedder"] = m.rss_peak_mb
    f["rss_mb_embedder_idle"] = idle
    f["embedder_rps"] = m.rps
    b.stop(gw)
    peaks = b.rss_peaks
    if not peaks:
        return
    b.report.add(
        Row(
            "memory",
            "RSS under load, no embedder",
            "MB",
            max(peaks.values()),
            None,
            "none",
            ("max", 120.0, "gateway"),
        )
    )
    # The policies scenario sends every request once, so its exact cache (memory, the default
    # bound) grows for the whole run, filling up on a fast machine: its peak is the gateway
    # plus the cache's data. Shown apart so the two are not read as one figure.
    if "policies" in peaks and len(peaks) > 1:
        rest = max(v for k, v in peaks.items() if k != "policies")
        b.report.add(
            Row(
                "memory",
                "RSS, policies (exact cache growing to its bound)",
                "MB",
                peaks["policies"],
                None,
                "none",
            )
        )
        b.report.add(Row("memory", "RSS, every other scenario (max)", "MB", rest, None, "none"))


def soak(b: Bench) -> None:
    """Policies on (cache bounded at 4 MB), c=16, for `soak_s`: RSS growth after the first tenth."""
    up = b.upstream()
    gw = b.gateway("soak", up)
    lua = b.script("bench", vary=True)
    url = f"http://127.0.0.1:{gw.port}/v1/chat/completions"
    prefix = b.procs.cores.prefix(b.procs.cores.load)
    b.say(f"  soak for {b.soak_s:.0f}s ...")
    started = time.monotonic()
    with RssSampler(gw.pid, every=max(0.5, b.soak_s / 100)) as sampler:
        result = wrk.run(url, lua, 16, b.soak_s, prefix)
    samples = sampler.samples
    early = samples[max(0, len(samples) // 10 - 1)] if samples else 0.0
    late = samples[-1] if samples else 0.0
    growth = (late / early - 1.0) * 100.0 if early else 0.0
    b.say(
        f"  soak: {result.rps:,.0f} req/s over {time.monotonic() - started:.0f}s, "
        f"RSS {early:.1f} -> {late:.1f} MB ({growth:+.1f}%)"
    )
    b.report.add(
        Row(
            "soak",
            f"RSS growth over {b.soak_s:.0f}s",
            "%",
            growth,
            None,
            "none",
            ("max", 5.0, "gateway"),
        )
    )
    f = b.report.figures
    f["soak_s"] = b.soak_s
    f["soak_rss_mb_start"] = early
    f["soak_rss_mb_end"] = late
    f["soak_rss_growth_pct"] = growth


def workers(b: Bench) -> None:
    """`headway serve --workers N` for N = 1, 2, unpinned (both cores shared with the load)."""
    up = b.upstream()
    results: dict[str, float] = {}
    for n in (1, 2):
        gw = b.gateway("passthrough", up, workers=n, pin=False)
        m = b.measure(f"workers={n} gateway (unpinned)", gw, 64, pin=False)
        results[str(n)] = m.rps
        b.report.add(
            Row(
                "workers",
                f"req/s c=64, {n} worker(s)",
                "req/s",
                m.rps,
                results["1"] if n > 1 else None,
                "ratio",
            )
        )
        b.report.figures[f"workers_{n}_rss_mb"] = m.rss_peak_mb
        b.stop(gw)
    b.report.figures["workers_rps"] = results


def library(b: Bench) -> None:
    """In-process: Gateway.chat against a raw call with the same HTTP client (headway's own
    transport), sequential calls, us per call; raw aiohttp is reported alongside."""
    up = b.upstream()
    argv = ["-m", "bench.library", "--upstream-port", str(up.port)]
    argv += ["--calls", str(b.library_calls), "--warmup", str(max(10, b.library_calls // 10))]
    out = b.run_json(argv, b.procs.cores.gateway, timeout=600)
    b.say(f"  library: {out}")
    # the baseline is "a raw call with the same HTTP client": the gateway's own client
    raw = _num(out, "library_client_us")
    r = b.report
    r.add(Row("library", "raw aiohttp call (reference)", "us", _num(out, "library_raw_us"), None))
    r.add(
        Row(
            "library",
            "Gateway.chat, no policies",
            "us",
            _num(out, "library_gw_us"),
            raw,
            "added",
            ("max", 50.0, "added"),
        )
    )
    r.add(
        Row(
            "library",
            "Gateway.chat, limits+budgets+cache",
            "us",
            _num(out, "library_policies_us"),
            raw,
            "added",
            ("max", 150.0, "added"),
        )
    )
    r.figures.update(out)


def floors(b: Bench) -> None:
    """Reference servers (uvicorn / native canned answer; uvicorn + aiohttp proxy) against the
    gateway."""
    up = b.upstream()
    f = b.report.figures
    measured: dict[str, float] = {}
    for mode in ("canned", "native", "proxy"):
        proc = b.procs.floor(mode, up.port)
        m = b.measure(f"floor {mode}", proc, 64, gateway=True)
        b.procs.stop(proc)
        measured[mode] = m.cpu_us_per_req
        f[f"floor_{mode}_rps"] = m.rps
        f[f"floor_{mode}_cpu_us_per_req"] = m.cpu_us_per_req
        b.report.add(Row("floors", f"{mode}: req/s c=64", "req/s", m.rps, None, "none"))
        b.report.add(
            Row("floors", f"{mode}: CPU per request", "us", m.cpu_us_per_req, None, "none")
        )
    gw = b.measure("floor gateway", b.gateway("passthrough", up), 64)
    f["floor_gateway_cpu_us_per_req"] = gw.cpu_us_per_req
    b.report.add(
        Row(
            "floors",
            "gateway: CPU per request vs proxy",
            "us",
            gw.cpu_us_per_req,
            measured["proxy"],
            "added",
        )
    )


def inproc(b: Bench) -> None:
    """headway's own code per request: the real app and pipeline, no sockets (CPU us/request)."""
    requests = max(200, b.library_calls)
    argv = ["-m", "bench.inproc", "--requests", str(requests), "--rounds", "3"]
    out = b.run_json(argv, b.procs.cores.gateway, timeout=900)
    b.say(f"  in-process: {out}")
    labels = {
        "passthrough": "pass-through chat",
        "stream": "stream (24 chunks)",
        "policies": "limits+budgets+cache miss+metrics",
        "cache_hit": "exact-cache hit",
    }
    for name, label in labels.items():
        key = f"inproc_{name}_us"
        if key in out:
            b.report.add(Row("in-process", f"{label}, CPU", "us", _num(out, key), None, "none"))
    b.report.figures.update(out)
