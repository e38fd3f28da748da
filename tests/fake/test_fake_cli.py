"""`headway fake-provider`: argument handling, and one real run as a child process."""

from __future__ import annotations

import socket
import subprocess
import sys
import time

import pytest
from openai import OpenAI

from headway.cli import build_parser
from headway.providers.fake.cli import CHAOS, parse_chaos, settings_from_args
from tests.conftest import free_port


def test_chaos_presets_and_settings() -> None:
    assert parse_chaos("flaky") == CHAOS["flaky"]
    assert parse_chaos("error_rate=0.1, cut_after_tokens=20,hang=false") == {
        "error_rate": 0.1,
        "cut_after_tokens": 20,
        "hang": False,
    }
    with pytest.raises(ValueError, match="preset"):
        parse_chaos("mayhem")


def test_arguments_become_sim_settings() -> None:
    args = build_parser().parse_args(
        [
            "fake-provider",
            "openai",
            "--port",
            "0",
            "--latency-p50-ms",
            "100",
            "--rpm",
            "60",
            "--chaos",
            "overloaded",
            "--chaos",
            "slow_ms=5",
        ]
    )
    settings = settings_from_args(args)
    assert settings.latency_p50_ms == 100 and settings.rpm == 60
    assert settings.error_rate == 0.2 and settings.error_status == 503
    assert settings.slow_ms == 5
    fast = settings_from_args(build_parser().parse_args(["fake-provider", "openai", "--fast"]))
    assert (fast.latency_p50_ms, fast.ttft_p50_ms, fast.ms_per_token) == (0, 0, 0)


def test_unknown_chaos_setting_is_refused() -> None:
    args = build_parser().parse_args(["fake-provider", "openai", "--chaos", "bogus=1"])
    assert args.func(args) == 2


def test_the_command_serves_the_openai_wire() -> None:
    port = free_port()
    cmd = [sys.executable, "-m", "headway", "fake-provider", "openai", "--port", str(port)]
    proc = subprocess.Popen(
        [*cmd, "--fast", "--api-key", "sk-cli"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    try:
        deadline = time.monotonic() + 20
        while True:
            try:
                with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                    break
            except OSError:
                if proc.poll() is not None or time.monotonic() > deadline:
                    err = proc.stderr.read().decode() if proc.stderr else ""
                    pytest.fail(f"fake-provider did not start: {err}")
                time.sleep(0.05)  # waiting for a child process to listen, not for a timer
        url = f"http://127.0.0.1:{port}/v1"
        with OpenAI(base_url=url, api_key="sk-cli", max_retries=0) as client:
            reply = client.chat.completions.create(
                model="gpt-4o-mini", messages=[{"role": "user", "content": "hi sim:tokens=4"}]
            )
        assert reply.usage is not None and reply.usage.completion_tokens == 4
    finally:
        proc.terminate()
        proc.wait(timeout=10)
