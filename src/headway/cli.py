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

#: the command each entry above registers first. `main` imports only the chosen command's module:
#: the others pull in what a server never uses (the fake providers and cache-eval import numpy
#: and the simulator, ~50 MB of RSS a `serve --workers 1` process would otherwise keep).
_BY_NAME: dict[str, str] = {
    "serve": COMMANDS[0],
    "fake-provider": COMMANDS[1],
    "check-config": COMMANDS[2],
    "keys": COMMANDS[3],
    "usage": COMMANDS[4],
    "cache-eval": COMMANDS[5],
}


def build_parser(commands: Sequence[str] = COMMANDS) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="headway", description="A production gateway for LLM APIs."
    )
    parser.add_argument("--version", action="version", version="headway 0.1.0")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for target in commands:
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
    args_list = list(sys.argv[1:] if argv is None else argv)
    chosen = _BY_NAME.get(args_list[0]) if args_list else None
    parser = build_parser((chosen,) if chosen else COMMANDS)
    args = parser.parse_args(args_list)
    func = getattr(args, "func", None)
    if func is None:
        parser.print_help()
        return 2
    code: int = func(args)
    return code


if __name__ == "__main__":
    sys.exit(main())
