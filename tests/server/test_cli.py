"""`headway serve` as a user runs it, the banner, shutdown, and what `import headway` costs."""

from __future__ import annotations

import asyncio
import json
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import aiohttp
import pytest

from headway.config.load import load
from headway.server.cli import banner
from tests.conftest import free_port
from tests.server.helpers import Scripted, running, scripted_gateway, sim_config_text


def test_banner_says_loudly_that_auth_is_off() -> None:
    text = banner(load(env={}), "0.0.0.0", 4100, 1)
    assert "http://127.0.0.1:4100/v1" in text and "bound to 0.0.0.0" in text
    assert "OFF" in text and "HEADWAY_MASTER_KEY" in text
    assert "route      default: sim-large -> sim-small" in text
    assert "curl http://127.0.0.1:4100/v1/chat/completions" in text
    assert 'OpenAI(base_url="http://127.0.0.1:4100/v1"' in text and '"model": "default"' in text


def test_banner_with_auth_on_never_prints_the_key() -> None:
    runtime = load(env={"HEADWAY_MASTER_KEY": "sk-very-secret"})
    text = banner(runtime, "127.0.0.1", 4199, 2)
    assert "sk-very-secret" not in text
    assert "auth       ON" in text and "(2 workers" in text
    assert "Authorization: Bearer $HEADWAY_MASTER_KEY" in text
    assert 'api_key=os.environ["HEADWAY_MASTER_KEY"]' in text


async def test_shutdown_closes_the_gateway() -> None:
    provider = Scripted("m")
    async with running(scripted_gateway(provider)):
        assert not provider.shut
    assert provider.shut


async def _wait_listening(port: int, proc: asyncio.subprocess.Process) -> None:
    deadline = time.monotonic() + 30
    while True:
        try:
            _, writer = await asyncio.open_connection("127.0.0.1", port)
            writer.close()
            return
        except OSError:
            assert proc.returncode is None, "headway serve exited during start-up"
            assert time.monotonic() < deadline, "headway serve did not start listening"
            await asyncio.sleep(0.05)  # waiting for a child process to listen, not for a timer


async def _start_serve(tmp_path: Path, *extra: str) -> tuple[asyncio.subprocess.Process, int]:
    """`python -m headway serve` on a free port with the sim config, once it listens."""
    config = tmp_path / "headway.yaml"
    config.write_text(sim_config_text(tmp_path), encoding="utf-8")
    port = free_port()
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "headway",
        "serve",
        "--config",
        str(config),
        "--port",
        str(port),
        *extra,
        cwd=tmp_path,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    await _wait_listening(port, proc)
    return proc, port


async def _stop(proc: asyncio.subprocess.Process, sig: int) -> str:
    proc.send_signal(sig)
    out, _ = await asyncio.wait_for(proc.communicate(), timeout=60)
    return out.decode()


BODY = {"model": "default", "messages": [{"role": "user", "content": "hi"}]}


async def test_serve_with_two_workers_answers_and_stops_cleanly(tmp_path: Path) -> None:
    proc, port = await _start_serve(tmp_path, "--workers", "2")
    try:
        url = f"http://127.0.0.1:{port}/v1/chat/completions"
        async with aiohttp.ClientSession() as session:
            for _ in range(4):
                async with session.post(url, json=BODY) as resp:
                    assert resp.status == 200
                    assert (await resp.json())["choices"][0]["message"]["content"]
    finally:
        text = await _stop(proc, signal.SIGINT)
    assert proc.returncode == 0, text
    assert f"listening  http://127.0.0.1:{port}/v1  (2 workers" in text
    assert "Traceback" not in text


@pytest.mark.parametrize("http", ["native", "uvicorn"])
async def test_serve_on_either_http_server_answers_and_stops_on_sigterm(
    tmp_path: Path, http: str
) -> None:
    proc, port = await _start_serve(tmp_path, "--http", http)
    try:
        url = f"http://127.0.0.1:{port}/v1/chat/completions"
        async with aiohttp.ClientSession() as session, session.post(url, json=BODY) as resp:
            assert resp.status == 200
            assert (await resp.json())["choices"][0]["message"]["content"]
            # uvicorn adds a date header; headway's own server does not
            assert ("date" in resp.headers) == (http == "uvicorn")
    finally:
        text = await _stop(proc, signal.SIGTERM)
    assert proc.returncode == 0, text
    assert "Traceback" not in text and "ERROR" not in text


def test_serve_help_names_both_http_servers() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "headway", "serve", "--help"],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    assert "--http {native,uvicorn}" in done.stdout and "uvicorn" in done.stdout


SERVE_IMPORTS_PROBE = """
import contextlib, io, json, sys
from headway.cli import main
with contextlib.redirect_stdout(io.StringIO()), contextlib.suppress(SystemExit):
    main(["serve", "--help"])
print(json.dumps(sorted(m for m in sys.modules if m.split(".")[0] == "numpy"
    or m.startswith(("headway.providers.fake", "headway.cache", "headway.keys.cli")))))
"""


def test_serve_does_not_import_the_other_commands() -> None:
    # a `serve --workers 1` process is the worker: cache-eval and fake-provider would load numpy
    # and the simulator into it (~20 MB of RSS under load) for nothing
    done = subprocess.run(
        [sys.executable, "-c", SERVE_IMPORTS_PROBE],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    assert json.loads(done.stdout) == []


def test_port_in_use_is_a_clear_error(tmp_path: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        done = subprocess.run(
            [sys.executable, "-m", "headway", "serve", "--port", str(port)],
            cwd=tmp_path,
            capture_output=True,
            text=True,
            timeout=60,
        )
    assert done.returncode == 1
    assert f"cannot listen on 127.0.0.1:{port}" in done.stdout


IMPORT_PROBE = """
import json, sys
opened, sockets = [], []
def hook(event, args):
    if event == "open" and isinstance(args[0], str) and not args[0].endswith((".py", ".pyc", ".pth", ".so")):
        opened.append(args[0])
    elif event.startswith("socket."):
        sockets.append(event)
sys.addaudithook(hook)
before = set(sys.modules)
import headway
loaded = set(sys.modules) - before
heavy = sorted(m for m in loaded if m.split(".")[0] in
    {"aiohttp", "pydantic", "uvicorn", "numpy", "yaml", "orjson", "tiktoken", "redis", "asyncpg",
     "prometheus_client", "uvloop", "httptools", "openai", "sqlite3", "asyncio"})
print(json.dumps({"heavy": heavy, "opened": opened, "sockets": sockets,
                  "headway": sorted(m for m in loaded if m.startswith("headway"))}))
"""


def test_import_headway_is_light_and_does_no_io() -> None:
    done = subprocess.run(
        [sys.executable, "-c", IMPORT_PROBE], capture_output=True, text=True, timeout=60, check=True
    )
    report = json.loads(done.stdout)
    assert report["heavy"] == []
    assert report["sockets"] == []
    assert [p for p in report["opened"] if "headway" in p or not p.startswith(sys.prefix)] == []
    assert report["headway"] == ["headway"]
