"""Gateway configs for the scenarios, written as YAML the way a user would write them.

Every config routes the alias `bench` to one `openai-compatible` deployment at the bench upstream.
The ledger is off everywhere (it is a SQLite writer off the response path and not part of any
target); limits and budgets are sized so that nothing is ever refused, because the point is what
enforcing them costs, not what refusing costs.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

ROUTE = "bench"
BIG = 1_000_000_000


def base(upstream_port: int, workdir: Path) -> dict[str, Any]:
    return {
        "server": {"host": "127.0.0.1", "port": 0},
        "providers": {
            "up": {
                "kind": "openai-compatible",
                "base_url": f"http://127.0.0.1:{upstream_port}/v1",
                "api_key": "bench",
                "max_connections": 1024,
            }
        },
        "models": {
            "bench-model": {
                "provider": "up",
                "model": "bench-model",
                "input_price": 1.0,
                "output_price": 2.0,
            }
        },
        "routes": {ROUTE: {"chain": ["bench-model"]}},
        "ledger": {"enabled": False, "sqlite_path": str(workdir / "ledger.db")},
        "keys": {"store": "memory"},
        "observe": {"metrics": True},
    }


def _exact_cache(cfg: dict[str, Any]) -> None:
    cfg["cache"] = {"enabled": True, "backend": "memory", "semantic": {"enabled": False}}


def _policies(cfg: dict[str, Any]) -> None:
    limit = {"rpm": BIG, "tpm": BIG}
    cfg["limits"] = {"enabled": True, "global": limit, "key": limit, "user": limit}
    amount = [{"period": "day", "usd": BIG}]
    cfg["budgets"] = {"enabled": True, "global": amount, "user": amount, "key": amount}
    _exact_cache(cfg)


def build(
    kind: str, upstream_port: int, workdir: Path, redis_url: str | None = None
) -> dict[str, Any]:
    """kind: passthrough | cache | policies | redis | soak | embedder."""
    cfg = base(upstream_port, workdir)
    if kind == "passthrough":
        pass
    elif kind == "cache":
        _exact_cache(cfg)
    elif kind == "policies":
        _policies(cfg)
    elif kind == "redis":
        if redis_url is None:
            raise ValueError("the redis config needs a redis_url")
        _policies(cfg)
        cfg["state"] = {"backend": "redis", "redis_url": redis_url}
        cfg["cache"]["backend"] = "redis"
    elif kind == "soak":
        # a small cache bound, reached in seconds: growth after that is not the cache filling
        _policies(cfg)
        cfg["cache"]["max_bytes"] = 4 * 1024 * 1024
    elif kind == "embedder":
        cfg["cache"] = {
            "enabled": True,
            "semantic": {"enabled": True, "embedder": {"kind": "local"}},
        }
    else:
        raise ValueError(f"unknown config kind {kind!r}")
    return cfg


def write(
    kind: str, upstream_port: int, workdir: Path, redis_url: str | None = None, name: str = ""
) -> Path:
    path = workdir / f"{name or kind}.yaml"
    path.write_text(yaml.safe_dump(build(kind, upstream_port, workdir, redis_url), sort_keys=False))
    return path


KINDS = ("passthrough", "cache", "policies", "redis", "soak", "embedder")
