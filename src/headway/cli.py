"""The `headway` command. Each subcommand lives with its feature and registers itself here."""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Callable, Sequence

#: "module:register" entries; register(subparsers) adds one or more subcommands whose parsers
#: set `func` (args -> exit code). Modules are imported only when the CLI starts.
COMMANDS: tuple[str, ...] = (
    "headway.server.cli:register",  # serve
    "headway.providers.fake.cli:register",  # fake-provider
    "headway.config.cli:register",  # check-config
    "headway.keys.cli:register",  # keys
    "headway.ledger.cli:register",  # usage
    "headway.cache.cli:register",  # cache-eval
)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="headway", description="A production gateway for LLM APIs."
    )
    parser.add_argument("--version", action="version", version="headway 0.1.0")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for target in COMMANDS:
        module_name, attr = target.split(":")
        try:
            module = importlib.import_module(module_name)
        except ModuleNotFoundError as exc:
            if exc.name and (module_name + ".").startswith(exc.name + "."):
                continue  # that feature is not part of this build
            raise
        register: Callable[[argparse._SubParsersAction[argparse.ArgumentParser]], None]
        register = getattr(module, attr)
        register(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    func = getattr(args, "func", None)
    if func is None:
        parser.print_help()
        return 2
    code: int = func(args)
    return code


if __name__ == "__main__":
    sys.exit(main())
