"""`headway fake-provider openai --port N [...]`: serve a fake provider until interrupted."""

from __future__ import annotations

import argparse
import asyncio
from typing import Any

import orjson
from pydantic import ValidationError

from headway.config.schema import SimSettings
from headway.providers.fake.flavour import FLAVOURS

#: --chaos presets; anything else is a comma-separated list of control settings (key=value)
CHAOS: dict[str, dict[str, Any]] = {
    "none": {},
    "flaky": {"error_rate": 0.05, "error_status": 500},
    "overloaded": {"error_rate": 0.2, "error_status": 503},
    "slow": {"slow_ms": 2000.0},
    "throttled": {"rpm": 60, "tpm": 40_000},
    "cuts": {"cut_after_tokens": 20},
    "stalls": {"stall_after_tokens": 10, "stall_s": 5.0},
}

_SETTING_FLAGS = (
    ("--latency-p50-ms", "latency_p50_ms", float),
    ("--latency-p99-ms", "latency_p99_ms", float),
    ("--ttft-p50-ms", "ttft_p50_ms", float),
    ("--ms-per-token", "ms_per_token", float),
    ("--rpm", "rpm", int),
    ("--tpm", "tpm", int),
    ("--error-rate", "error_rate", float),
    ("--seed", "seed", int),
)


def parse_chaos(spec: str) -> dict[str, Any]:
    if spec in CHAOS:
        return dict(CHAOS[spec])
    out: dict[str, Any] = {}
    for item in filter(None, (p.strip() for p in spec.split(","))):
        key, sep, raw = item.partition("=")
        if not sep:
            known = ", ".join(CHAOS)
            raise ValueError(f"--chaos {item!r}: a preset ({known}) or key=value settings")
        try:
            out[key.strip()] = orjson.loads(raw)
        except orjson.JSONDecodeError:
            out[key.strip()] = raw
    return out


def settings_from_args(args: argparse.Namespace) -> SimSettings:
    values: dict[str, Any] = {}
    if args.fast:
        values.update(latency_p50_ms=0, latency_p99_ms=0, ttft_p50_ms=0, ms_per_token=0)
    for _, name, _ in _SETTING_FLAGS:
        value = getattr(args, name)
        if value is not None:
            values[name] = value
    for spec in args.chaos or ():
        values.update(parse_chaos(spec))
    return SimSettings.model_validate(values)


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = subparsers.add_parser(
        "fake-provider",
        help="serve a fake LLM provider backed by the sim engine",
        description="Serve a vendor's wire format over HTTP, answered by the sim engine "
        "(deterministic text, exact usage, latency, limits, failures). Change it while it runs "
        "with POST /_fake/control; read counters at GET /_fake/stats.",
    )
    p.add_argument("flavour", choices=sorted(FLAVOURS))
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=4200)
    p.add_argument("--api-key", help="require this key (Authorization: Bearer for OpenAI)")
    p.add_argument("--models", help="comma-separated model ids to list")
    p.add_argument("--known-models-only", action="store_true", help="404 for unlisted models")
    p.add_argument("--fast", action="store_true", help="zero latency (for benchmarks)")
    for flag, dest, kind in _SETTING_FLAGS:
        p.add_argument(flag, dest=dest, type=kind, default=None)
    p.add_argument(
        "--chaos",
        action="append",
        metavar="PRESET|k=v,...",
        help=f"failure injection: a preset ({', '.join(CHAOS)}) or settings such as "
        "error_rate=0.1,cut_after_tokens=20 (repeatable)",
    )
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from aiohttp import web

    from headway.providers.fake.server import FakeOptions, FakeServer

    try:
        settings = settings_from_args(args)
        models = tuple(m.strip() for m in (args.models or "").split(",") if m.strip())
        options = FakeOptions(
            api_key=args.api_key, models=models, known_models_only=args.known_models_only
        )
        server = FakeServer(args.flavour, settings=settings, options=options)
    except (ValueError, ValidationError) as exc:
        print(f"headway fake-provider: {exc}")
        return 2
    loop: asyncio.AbstractEventLoop | None = None
    try:
        import uvloop

        loop = uvloop.new_event_loop()
    except ImportError:
        pass
    print(
        f"fake {args.flavour} provider on http://{args.host}:{args.port}{server.flavour.base_path}"
    )
    web.run_app(
        server.app(),
        host=args.host,
        port=args.port,
        access_log=None,
        handler_cancellation=True,
        shutdown_timeout=0.5,
        print=None,
        loop=loop,
    )
    return 0
