"""Driving wrk: one Lua script per body, a JSON summary out of its `done` hook.

wrk (Debian package `wrk`) is a C load generator on one thread per core; at the rates measured
here it needs a fraction of the load core, which the direct baseline shows: the same wrk against
the bare upstream goes several times faster than against the gateway.

The summary comes from Lua rather than from wrk's text so that percentiles have full precision
(microseconds) and errors are counted by kind. `vary` makes every request body unique (the
message carries a counter), which is how the cache-lookup scenarios miss on purpose.
"""

from __future__ import annotations

import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

import orjson

INSTALL_HINT = "wrk is not installed: apt-get install wrk (Debian/Ubuntu), or brew install wrk"

_SUMMARY = """
done = function(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    'WRKJSON {"requests":%d,"duration_us":%d,"bytes":%d,' ..
    '"connect":%d,"read":%d,"write":%d,"status":%d,"timeout":%d,' ..
    '"p50":%d,"p90":%d,"p99":%d,"p999":%d,"mean":%.1f,"max":%d}\\n',
    summary.requests, summary.duration, summary.bytes,
    e.connect, e.read, e.write, e.status, e.timeout,
    latency:percentile(50), latency:percentile(90), latency:percentile(99),
    latency:percentile(99.9), latency.mean, latency.max))
end
"""

_FIXED = """
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
{headers}
wrk.body = {body}
"""

_VARY = """
local n = 0
local prefix = {prefix}
local suffix = {suffix}
local headers = {{["Content-Type"] = "application/json"}}
{headers}
request = function()
  n = n + 1
  return wrk.format("POST", nil, headers, prefix .. tostring(n) .. suffix)
end
"""


# wrk opens every connection at once, so a closed loop's first requests leave in the same
# millisecond; against an upstream answering in a near-constant 50 ms they stay in step for the
# whole run and reach the gateway as bursts, which independent clients would not send. This hook
# delays the first request of each connection by a random 0..N-1 ms (seeded, so both runs of a
# comparison get the same offsets); wrk starts a request's latency clock when it writes it, after
# the delay, and later requests go at once.
_STAGGER = """
math.randomseed({seed})
local started = 0
delay = function()
  if started < {connections} then
    started = started + 1
    return math.random(0, {spread_ms} - 1)
  end
  return 0
end
"""


def available() -> bool:
    return shutil.which("wrk") is not None


def _lua_str(text: str) -> str:
    return "[==[" + text + "]==]"


def chat_body(model: str, stream: bool = False, text: str = "hi", user: str | None = None) -> str:
    body: dict[str, object] = {
        "model": model,
        "messages": [{"role": "user", "content": text}],
        "temperature": 0,
    }
    if stream:
        body["stream"] = True
    if user is not None:
        body["user"] = user
    return orjson.dumps(body).decode()


def script(
    path: Path,
    model: str,
    stream: bool = False,
    vary: bool = False,
    user: str | None = None,
    stagger: tuple[int, int] | None = None,
) -> Path:
    """`stagger` = (connections, spread in ms): spread the connections' first requests (above)."""
    marker = "@@N@@"
    body = chat_body(model, stream, f"question {marker}" if vary else "hi", user)
    if vary:
        prefix, suffix = body.split(marker)
        text = _VARY.format(prefix=_lua_str(prefix), suffix=_lua_str(suffix), headers="")
    else:
        text = _FIXED.format(body=_lua_str(body), headers="")
    if stagger is not None:
        connections, spread_ms = stagger
        text += _STAGGER.format(seed=1, connections=connections, spread_ms=max(1, spread_ms))
    path.write_text(text + _SUMMARY)
    return path


@dataclass(slots=True, frozen=True)
class WrkResult:
    requests: int
    seconds: float
    errors: int
    p50_ms: float
    p90_ms: float
    p99_ms: float
    p999_ms: float
    mean_ms: float

    @property
    def rps(self) -> float:
        return self.requests / self.seconds if self.seconds > 0 else 0.0


def parse(output: str) -> WrkResult:
    for line in output.splitlines():
        if line.startswith("WRKJSON "):
            d = orjson.loads(line[8:])
            errors = sum(d[k] for k in ("connect", "read", "write", "status", "timeout"))
            return WrkResult(
                requests=d["requests"],
                seconds=d["duration_us"] / 1e6,
                errors=errors,
                p50_ms=d["p50"] / 1000.0,
                p90_ms=d["p90"] / 1000.0,
                p99_ms=d["p99"] / 1000.0,
                p999_ms=d["p999"] / 1000.0,
                mean_ms=d["mean"] / 1000.0,
            )
    raise RuntimeError(f"wrk printed no summary:\n{output[-2000:]}")


def run(
    url: str,
    lua: Path,
    connections: int,
    seconds: float,
    prefix: list[str] | None = None,
    threads: int = 1,
) -> WrkResult:
    duration = f"{max(1, round(seconds))}s"  # wrk takes whole seconds only
    argv = [*(prefix or []), "wrk", "-t", str(threads), "-c", str(connections), "-d", duration]
    argv += ["--timeout", "10s", "-s", str(lua), url]
    done = subprocess.run(argv, capture_output=True, text=True, timeout=seconds + 60)
    if done.returncode != 0:
        raise RuntimeError(f"wrk failed ({done.returncode}): {done.stderr or done.stdout}")
    return parse(done.stdout)
