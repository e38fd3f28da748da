"""`headway keys create|list|revoke`: manage API keys in the configured database directly.

Revocations made here reach running replicas over Redis pub/sub when `state.backend` is redis,
and within `keys.cache_ttl_s` otherwise (the admin API invalidates its own replica at once).
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import sys
from collections.abc import Callable, Coroutine, Sequence
from typing import Any, TypeVar

import orjson

from headway.errors import ConfigError, HeadwayError, InvalidRequest

T = TypeVar("T")


def _is_number(value: object) -> bool:
    if isinstance(value, int | float):
        return True
    return isinstance(value, str) and value.replace(".", "", 1).isdigit()


def format_table(headers: Sequence[str], rows: Sequence[Sequence[object]]) -> str:
    """A plain text table: left-aligned text, right-aligned numbers, `-` for missing values."""
    cells = [[("-" if v is None or v == "" else str(v)) for v in row] for row in rows]
    widths = [len(h) for h in headers]
    for row in cells:
        for i, v in enumerate(row):
            widths[i] = max(widths[i], len(v))
    numeric = [bool(rows) and all(_is_number(row[i]) for row in rows) for i in range(len(headers))]

    def line(values: Sequence[str]) -> str:
        out = [
            v.rjust(widths[i]) if numeric[i] else v.ljust(widths[i]) for i, v in enumerate(values)
        ]
        return "  ".join(out).rstrip()

    return "\n".join([line(headers), line(["-" * w for w in widths]), *map(line, cells)])


def when(ts: float | None) -> str | None:
    if ts is None:
        return None
    return dt.datetime.fromtimestamp(ts, dt.UTC).strftime("%Y-%m-%d %H:%M")


def run_command(args: argparse.Namespace, body: Callable[[Any], Coroutine[Any, Any, int]]) -> int:
    """Load the config, run `body(runtime)` in an event loop, and turn errors into exit codes."""
    from headway.config.load import load

    try:
        runtime = load(args.config)
        return asyncio.run(body(runtime))
    except ConfigError as exc:
        print(f"config error: {exc}", file=sys.stderr)
        return 2
    except HeadwayError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1


def _pairs(values: list[str] | None, flag: str) -> dict[str, float]:
    out: dict[str, float] = {}
    for item in values or []:
        name, sep, raw = item.partition("=")
        try:
            if not sep:
                raise ValueError
            out[name.strip()] = float(raw)
        except ValueError:
            raise InvalidRequest(f"{flag} expects NAME=NUMBER, got {item!r}") from None
    return out


def _body(args: argparse.Namespace) -> dict[str, Any]:
    body: dict[str, Any] = {"tenant": args.tenant}
    for name in ("name", "user", "team"):
        if getattr(args, name) is not None:
            body[name] = getattr(args, name)
    if args.models is not None:
        body["allowed_models"] = [m.strip() for m in args.models.split(",") if m.strip()]
    if args.limit:
        body["limits"] = _pairs(args.limit, "--limit")
    if args.budget:
        body["budgets"] = _pairs(args.budget, "--budget")
    if args.expires_in_days is not None:
        body["expires_in_s"] = args.expires_in_days * 86_400
    return body


async def _create(args: argparse.Namespace, runtime: Any) -> int:
    from headway.clock import SYSTEM_CLOCK
    from headway.keys.install import build_keys

    keys = build_keys(runtime.file, SYSTEM_CLOCK)
    try:
        key, plaintext = await keys.service.create(_body(args))
    finally:
        await keys.aclose()
    shown = key.public(SYSTEM_CLOCK.time())
    if args.json:
        print(orjson.dumps({**shown, "key": plaintext}, option=orjson.OPT_INDENT_2).decode())
        return 0
    print(f"created {key.id} for tenant {key.tenant}")
    print()
    print(f"    {plaintext}")
    print()
    print("Save this key now: it is stored hashed and will not be shown again.")
    return 0


def _models(models: Sequence[str] | None) -> str:
    return "*" if models is None else ",".join(models) or "(none)"


def _caps(key: Any) -> str:
    parts = [f"{k}={v:g}" for k, v in {**key.limits, **key.budgets}.items()]
    return " ".join(parts)


async def _list(args: argparse.Namespace, runtime: Any) -> int:
    from headway.clock import SYSTEM_CLOCK
    from headway.keys.install import build_keys

    keys = build_keys(runtime.file, SYSTEM_CLOCK)
    try:
        found = await keys.service.list(tenant=args.tenant, include_revoked=args.all)
    finally:
        await keys.aclose()
    now = SYSTEM_CLOCK.time()
    if args.json:
        print(orjson.dumps([k.public(now) for k in found], option=orjson.OPT_INDENT_2).decode())
        return 0
    if not found:
        print("no keys")
        return 0
    headers = [
        "ID",
        "PREFIX",
        "NAME",
        "TENANT",
        "USER",
        "TEAM",
        "MODELS",
        "LIMITS",
        "STATUS",
        "CREATED",
    ]
    rows = [
        (
            k.id,
            k.prefix + "…",
            k.name,
            k.tenant,
            k.user,
            k.team,
            _models(k.allowed_models),
            _caps(k),
            k.status(now),
            when(k.created_at),
        )
        for k in found
    ]
    print(format_table(headers, rows))
    return 0


async def _revoke(args: argparse.Namespace, runtime: Any) -> int:
    from headway.clock import SYSTEM_CLOCK
    from headway.keys.install import build_keys

    keys = build_keys(runtime.file, SYSTEM_CLOCK)
    try:
        key = await keys.service.revoke(args.key_id)
    finally:
        await keys.aclose()
    print(f"revoked {key.id} ({key.prefix}…, tenant {key.tenant})")
    return 0


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser("keys", help="create, list and revoke API keys")
    actions = p.add_subparsers(dest="keys_command", metavar="ACTION", required=True)

    def common(parser: argparse.ArgumentParser) -> None:
        parser.add_argument("--config", "-c", default=None, help="path to headway.yaml")

    c = actions.add_parser("create", help="create a key and print it (once)")
    common(c)
    c.add_argument("--tenant", default="default")
    c.add_argument("--name", help="a label for people")
    c.add_argument("--user")
    c.add_argument("--team")
    c.add_argument("--models", help="comma-separated models this key may use (default: all)")
    c.add_argument(
        "--limit", action="append", metavar="NAME=N", help="rate limit, e.g. rpm=60 (repeat)"
    )
    c.add_argument(
        "--budget", action="append", metavar="NAME=N", help="budget, e.g. usd_per_day=5 (repeat)"
    )
    c.add_argument("--expires-in-days", type=float)
    c.add_argument("--json", action="store_true", help="print JSON")
    c.set_defaults(func=lambda a: run_command(a, lambda rt: _create(a, rt)))

    ls = actions.add_parser("list", help="list keys")
    common(ls)
    ls.add_argument("--tenant")
    ls.add_argument("--all", action="store_true", help="include revoked keys")
    ls.add_argument("--json", action="store_true", help="print JSON")
    ls.set_defaults(func=lambda a: run_command(a, lambda rt: _list(a, rt)))

    r = actions.add_parser("revoke", help="revoke a key by id")
    common(r)
    r.add_argument("key_id")
    r.set_defaults(func=lambda a: run_command(a, lambda rt: _revoke(a, rt)))
