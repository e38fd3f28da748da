"""`headway check-config`: validate a config file and say what it defines."""

from __future__ import annotations

import argparse

from headway.errors import ConfigError


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser("check-config", help="validate a config file (default: the embedded one)")
    p.add_argument("--config", "-c", default=None, help="path to headway.yaml")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from headway.config.load import load

    try:
        runtime = load(args.config)
    except ConfigError as exc:
        print(f"config error: {exc}")
        return 1
    print(f"{runtime.source}: ok")
    print(f"  providers: {', '.join(runtime.file.providers) or '-'}")
    print(f"  models:    {', '.join(runtime.deployments) or '-'}")
    for name, route in runtime.routes.items():
        print(f"  route {name}: {' -> '.join(route.chain)}")
    print(f"  auth:      {'on (master key set)' if runtime.auth_enabled else 'off'}")
    return 0
