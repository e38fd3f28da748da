"""Loading config: YAML text -> `${ENV}` substitution -> validated `ConfigFile` -> `RuntimeConfig`.

This is the one module that reads the environment. Every error is a `ConfigError` naming the
offending path, e.g. `routes.default.chain[2]`.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from importlib import resources
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

from headway.config.runtime import RuntimeConfig, build_runtime
from headway.config.schema import ConfigFile
from headway.errors import ConfigError

_ENV_REF = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}")


def format_path(loc: tuple[int | str, ...] | list[int | str]) -> str:
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += f".{part}" if out else str(part)
    return out


def _substitute(node: Any, env: Mapping[str, str], path: list[int | str]) -> Any:
    if isinstance(node, str):

        def repl(m: re.Match[str]) -> str:
            name, default = m.group(1), m.group(2)
            if name in env:
                return env[name]
            if default is not None:
                return default
            raise ConfigError(format_path(path), f"environment variable {name} is not set")

        return _ENV_REF.sub(repl, node)
    if isinstance(node, dict):
        return {k: _substitute(v, env, [*path, str(k)]) for k, v in node.items()}
    if isinstance(node, list):
        return [_substitute(v, env, [*path, i]) for i, v in enumerate(node)]
    return node


def parse(
    text: str, env: Mapping[str, str] | None = None, *, source: str = "<config>"
) -> ConfigFile:
    env = os.environ if env is None else env
    try:
        raw = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise ConfigError("", f"{source} is not valid YAML: {exc}") from exc
    if raw is None:
        raw = {}
    if not isinstance(raw, dict):
        raise ConfigError("", f"{source} must be a mapping at the top level")
    raw = _substitute(raw, env, [])
    try:
        return ConfigFile.model_validate(raw)
    except ValidationError as exc:
        first = exc.errors()[0]
        path = format_path(list(first["loc"]))
        more = f" (and {exc.error_count() - 1} more)" if exc.error_count() > 1 else ""
        raise ConfigError(path, f"{first['msg']}{more}") from exc


def default_config_text() -> str:
    return resources.files("headway.config").joinpath("default.yaml").read_text(encoding="utf-8")


def load(
    path: str | Path | None = None,
    env: Mapping[str, str] | None = None,
    *,
    text: str | None = None,
) -> RuntimeConfig:
    """Load and validate a config file; with no path and no text, the embedded default."""
    env = os.environ if env is None else env
    if text is None:
        if path is None:
            text, source = default_config_text(), "<embedded default>"
        else:
            p = Path(path)
            try:
                text = p.read_text(encoding="utf-8")
            except OSError as exc:
                raise ConfigError("", f"cannot read config file {p}: {exc.strerror}") from exc
            source = str(p)
    else:
        source = str(path) if path else "<config>"
    cfg = parse(text, env, source=source)
    if cfg.server.master_key is None and env.get("HEADWAY_MASTER_KEY"):
        cfg = cfg.model_copy(
            update={
                "server": cfg.server.model_copy(update={"master_key": env["HEADWAY_MASTER_KEY"]})
            }
        )
    return build_runtime(cfg, source=source)
