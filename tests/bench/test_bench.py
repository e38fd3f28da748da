"""The benchmark runner's pieces, run in a trivially short mode so `bench/` cannot rot.

Nothing here asserts a speed: only that each piece runs and produces the figures it names.
"""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

import orjson
import pytest
from bench.harness import Bench
from bench.procs import Cores, Proc, Procs
from bench.report import Report, Row

from bench import configs, inproc, library, profile, runner, streams, wrk
from headway.config.load import load

SAMPLE_WRK = """Running 1s test @ http://127.0.0.1:1/v1/chat/completions
  1 threads and 4 connections
WRKJSON {"requests":1200,"duration_us":1000000,"bytes":5000,"connect":0,"read":0,"write":0,"status":3,"timeout":1,"p50":250,"p90":400,"p99":1500,"p999":3000,"mean":300.5,"max":4000}
"""


@pytest.fixture
def procs(tmp_path: Path) -> Iterator[Procs]:
    running = Procs(tmp_path, Cores(None, None))
    try:
        yield running
    finally:
        running.stop_all()


@pytest.fixture
def upstream(procs: Procs) -> Proc:
    return procs.upstream(interval_ms=1.0)


@pytest.mark.parametrize("kind", configs.KINDS)
def test_every_scenario_config_loads(kind: str, tmp_path: Path) -> None:
    path = configs.write(kind, 9999, tmp_path, redis_url="redis://127.0.0.1:1/0")
    runtime = load(path)
    assert runtime.routes[configs.ROUTE].chain == ("bench-model",)
    assert runtime.file.ledger.enabled is False
    assert runtime.file.cache.enabled is (kind != "passthrough")
    assert runtime.file.limits.enabled is (kind in ("policies", "redis", "soak"))


def test_wrk_summary_is_parsed() -> None:
    result = wrk.parse(SAMPLE_WRK)
    assert result.requests == 1200
    assert result.rps == pytest.approx(1200.0)
    assert result.errors == 4
    assert (result.p50_ms, result.p99_ms, result.p999_ms) == (0.25, 1.5, 3.0)
    with pytest.raises(RuntimeError):
        wrk.parse("no summary here")


def test_wrk_script_varies_the_body_when_asked(tmp_path: Path) -> None:
    fixed = wrk.script(tmp_path / "a.lua", "bench").read_text()
    varied = wrk.script(tmp_path / "b.lua", "bench", stream=True, vary=True).read_text()
    assert '"model":"bench"' in fixed and "request = function" not in fixed
    assert "request = function" in varied and '"stream":true' in varied
    assert "WRKJSON" in fixed and "WRKJSON" in varied


def test_wrk_script_staggers_only_the_first_request_of_each_connection(tmp_path: Path) -> None:
    plain = wrk.script(tmp_path / "a.lua", "bench").read_text()
    staggered = wrk.script(tmp_path / "b.lua", "bench", stagger=(16, 50)).read_text()
    assert "delay = function" not in plain
    assert "delay = function" in staggered
    assert "if started < 16 then" in staggered and "math.random(0, 50 - 1)" in staggered
    assert "WRKJSON" in staggered


def test_report_table_ratios_targets_and_json() -> None:
    report = Report()
    report.add(Row("s", "req/s", "req/s", 3000.0, 6000.0, "ratio", ("min", 3000.0, "gateway")))
    report.add(Row("s", "p50", "ms", 1.0, 0.25, "added", ("max", 0.5, "added")))
    report.figures.update({"x": 1.23456789, "nan": float("nan"), "nested": {"a": 2.0}})
    table = report.table()
    assert "x0.500" in table and "+0.750 ms" in table
    assert [r.verdict() for r in report.rows] == ["ok", "MISS"]
    assert orjson.loads(report.json_line()) == {"x": 1.2346, "nan": None, "nested": {"a": 2.0}}


async def test_streams_client_times_first_bytes_and_completions(upstream: Proc) -> None:
    url = f"http://127.0.0.1:{upstream.port}/v1/chat/completions"
    out = await streams.run(url, "bench-model", connections=4, duration=0.2, ramp=0.05)
    assert out["failed"] == 0
    completed = out["completed"]
    assert isinstance(completed, int) and completed >= 4
    assert out["open_max"] == 4
    ttft, total = out["ttft_p50_ms"], out["total_p50_ms"]
    assert isinstance(ttft, float) and isinstance(total, float) and 0 < ttft < total


async def test_library_path_names_its_figures(procs: Procs) -> None:
    up = procs.upstream()
    out = await library.run(up.port, calls=5, rounds=1, warmup=2)
    assert set(out) == {
        "library_raw_us",
        "library_gw_us",
        "library_added_us",
        "library_policies_us",
        "library_policies_added_us",
        "library_cpu_raw_us",
        "library_cpu_gw_us",
        "library_cpu_added_us",
        "library_cpu_policies_us",
        "library_cpu_policies_added_us",
        "library_client_us",
        "library_client_added_us",
        "library_client_policies_added_us",
        "library_cpu_client_us",
        "library_cpu_client_added_us",
        "library_cpu_client_policies_added_us",
    }
    assert all(v > 0 for k, v in out.items() if not k.endswith("added_us"))


async def test_in_process_driver_runs_every_variant() -> None:
    out, report = await inproc.run(10, list(inproc.VARIANTS), profile="stream", rounds=1)
    assert set(out) == {f"inproc_{name}_us" for name in inproc.VARIANTS}
    assert all(v > 0 for v in out.values())
    assert "cumulative" in report


def test_profile_charges_samples_to_components(tmp_path: Path) -> None:
    raw = tmp_path / "raw.txt"
    raw.write_text(
        "run_worker (headway/server/run.py:93) 5\n"
        "run_worker (headway/server/run.py:93);App._http (headway/server/app.py:130);"
        "replace (dataclasses.py:1477) 3\n"
        "run_worker (headway/server/run.py:93);ClientSession._request (aiohttp/client.py:558) 2\n"
    )
    stacks = profile.load(raw)
    text = profile.components(stacks)
    shares = dict(line.split("%  ")[::-1] for line in text.strip().splitlines())
    assert {k: float(v) for k, v in shares.items()} == {
        "event loop (uvloop, syscalls)": 50.0,
        "headway.server": 30.0,
        "aiohttp (upstream client)": 20.0,
    }
    assert "App._http (headway/server/app.py)" in profile.callers(stacks, "replace (")


def test_direct_measurement_counts_requests(procs: Procs, upstream: Proc) -> None:
    assert wrk.available(), wrk.INSTALL_HINT
    bench = Bench(procs, Report(), duration=1.0, warmup=0.0, quiet=True)
    m = bench.measure("direct", upstream, 2)
    assert m.result.requests > 0 and m.result.errors == 0


def test_runner_end_to_end_prints_table_and_named_figures(
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert shutil.which("wrk"), wrk.INSTALL_HINT
    code = runner.main(["--scenarios", "cache", "--duration", "1", "--warmup", "0", "--no-pin"])
    out = capsys.readouterr().out
    assert code == 0, out
    assert "exact cache" in out and "hits/s c=64" in out
    figures = orjson.loads(out.strip().splitlines()[-1])
    assert figures["failed"] == {}
    assert figures["scenarios"] == ["cache"]
    assert figures["cache_hit_rps"] > 0
    assert {"machine", "duration_s", "rss_mb", "elapsed_s"} <= set(figures)


def test_runner_rejects_unknown_scenarios(capsys: pytest.CaptureFixture[str]) -> None:
    assert runner.main(["--scenarios", "nope"]) == 2
    assert "unknown scenario" in capsys.readouterr().out


@pytest.mark.parametrize("timer", ["precise", "loop"])
def test_slow_scenario_reports_the_upstream_log_for_both_sides(
    capsys: pytest.CaptureFixture[str], timer: str
) -> None:
    assert shutil.which("wrk"), wrk.INSTALL_HINT
    argv = ["--scenarios", "slow", "--duration", "1", "--warmup", "0", "--no-pin"]
    code = runner.main([*argv, "--upstream-timer", timer, "--upstream-jitter-ms", "1"])
    out = capsys.readouterr().out
    assert code == 0, out
    figures = orjson.loads(out.strip().splitlines()[-1])
    assert figures["failed"] == {}
    assert figures["slow_upstream"] == {"timer": timer, "jitter_ms": 1.0}
    for key in ("slow", "slow_stream"):
        for side in ("direct", "gateway"):
            log = figures[f"{key}_upstream_{side}"]
            assert log["answers"] > 0 and 0.0 <= log["bunched_share"] <= 1.0
        assert figures[f"{key}_ratio"] > 0 and figures[f"{key}_cpu_us_per_req"] > 0
    for side in ("direct", "gateway"):
        assert figures[f"slow_staggered_upstream_{side}"]["answers"] > 0
    assert "added_p50_ms_c16_staggered" in figures and "added_p99_ms_c16_staggered" in figures


def test_cores_prefix_pins_and_optionally_raises_priority() -> None:
    assert Cores("0", "1").prefix("1") == ["taskset", "-c", "1"]
    assert Cores("0", "1", realtime=True).prefix("0") == ["chrt", "-f", "20", "taskset", "-c", "0"]
    assert Cores(None, None, realtime=True).prefix(None) == ["chrt", "-f", "20"]
    assert Cores(None, None).prefix(None) == []
