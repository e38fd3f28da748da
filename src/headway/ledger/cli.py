"""`headway usage`: spend from the ledger, grouped by key, user, team, model or day."""

from __future__ import annotations

import argparse
from typing import Any

import orjson

from headway.keys.cli import format_table, run_command
from headway.ledger.record import GROUPS, build_query


async def _usage(args: argparse.Namespace, runtime: Any) -> int:
    from headway.ledger.listener import open_ledger

    params = {
        "group_by": args.group_by,
        "since": args.since,
        "until": args.until,
        "tenant": args.tenant,
        "key": args.key,
        "user": args.user,
        "team": args.team,
        "model": args.model,
        "limit": str(args.limit),
    }
    query = build_query({k: v for k, v in params.items() if v is not None})
    if runtime.file.ledger.backend == "memory":
        print("ledger.backend is memory: spend lives in the gateway process only (gw.usage())")
        return 1
    ledger = open_ledger(runtime.file)
    try:
        rows = await ledger.query(query)
    finally:
        await ledger.aclose()
    if args.json:
        print(
            orjson.dumps(
                [r.public(query.group_by) for r in rows], option=orjson.OPT_INDENT_2
            ).decode()
        )
        return 0
    if not rows:
        print("no usage recorded in this period")
        return 0
    headers = (query.group_by.upper(), "REQUESTS", "INPUT", "OUTPUT", "CACHED", "COST_USD")
    table: list[tuple[object, ...]] = [
        (
            r.group,
            r.requests,
            r.input_tokens,
            r.output_tokens,
            r.cached_input_tokens,
            f"{r.cost_usd:.6f}",
        )
        for r in rows
    ]
    table.append(
        (
            "TOTAL",
            sum(r.requests for r in rows),
            sum(r.input_tokens for r in rows),
            sum(r.output_tokens for r in rows),
            sum(r.cached_input_tokens for r in rows),
            f"{sum(r.cost_nusd for r in rows) / 1e9:.6f}",
        )
    )
    print(format_table(headers, table))
    return 0


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser("usage", help="spend and tokens from the ledger")
    p.add_argument("--config", "-c", default=None, help="path to headway.yaml")
    p.add_argument("--group-by", "-g", default="day", choices=GROUPS)
    p.add_argument("--since", help="a date (2026-01-01), ISO time or epoch seconds")
    p.add_argument("--until", help="a date (inclusive), ISO time or epoch seconds (exclusive)")
    p.add_argument("--tenant")
    p.add_argument("--key", help="only this key id")
    p.add_argument("--user")
    p.add_argument("--team")
    p.add_argument("--model")
    p.add_argument("--limit", type=int, default=1000)
    p.add_argument("--json", action="store_true", help="print JSON")
    p.set_defaults(func=lambda a: run_command(a, lambda rt: _usage(a, rt)))
