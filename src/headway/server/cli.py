"""`headway serve`: run the OpenAI-compatible server (the embedded default needs no config)."""

from __future__ import annotations

import argparse
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from headway.config.runtime import RuntimeConfig


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser(
        "serve",
        help="run the OpenAI-compatible HTTP server",
        description="Serve /v1/chat/completions, /v1/embeddings and /v1/models. Without "
        "--config, runs the embedded default: the in-process sim provider, memory state, SQLite.",
    )
    p.add_argument("--config", "-c", default=None, help="path to headway.yaml")
    p.add_argument("--host", default=None, help="interface to listen on (config: server.host)")
    p.add_argument("--port", type=int, default=None, help="port (config: server.port, 4100)")
    p.add_argument(
        "--workers", type=int, default=None, help="processes sharing the port (server.workers)"
    )
    p.add_argument("--log-level", default="info", choices=["debug", "info", "warning", "error"])
    p.add_argument(
        "--http",
        default="native",
        choices=["native", "uvicorn"],
        help="HTTP server: native (default; headway's own HTTP/1.1 server, the fastest) or "
        "uvicorn (ASGI, the reference implementation; same behaviour, more CPU per request)",
    )
    p.set_defaults(func=run)


def _example_model(runtime: RuntimeConfig) -> str:
    if runtime.routes:
        return next(iter(runtime.routes))
    chat = [n for n, d in runtime.deployments.items() if not d.model.embeddings]
    return chat[0] if chat else "default"


def banner(runtime: RuntimeConfig, host: str, port: int, workers: int) -> str:
    shown = "127.0.0.1" if host in ("0.0.0.0", "") else f"[{host}]" if ":" in host else host
    base = f"http://{shown}:{port}/v1"
    auth = runtime.auth_enabled
    model = _example_model(runtime)
    lines = [
        "headway — an OpenAI-compatible gateway for LLM APIs",
        f"  listening  {base}  ({workers} worker{'s' if workers != 1 else ''}, bound to {host})",
        f"  config     {runtime.source}",
    ]
    if auth:
        lines.append("  auth       ON: send the master key or an API key as a Bearer token")
    else:
        lines += [
            "  auth       !!! OFF !!! anyone who can reach this port can use it and its admin API.",
            "             Set server.master_key in the config or HEADWAY_MASTER_KEY to turn it on.",
        ]
    for name, route in runtime.routes.items():
        lines.append(f"  route      {name}: {' -> '.join(route.chain)}")
    for name, dep in runtime.deployments.items():
        kind = "embeddings" if dep.model.embeddings else "chat"
        lines.append(f"  model      {name} ({dep.provider_name}:{dep.model.model}, {kind})")
    key_header = ' -H "Authorization: Bearer $HEADWAY_MASTER_KEY"' if auth else ""
    api_key = 'os.environ["HEADWAY_MASTER_KEY"]' if auth else '"unused"'
    body = f'{{"model": "{model}", "messages": [{{"role": "user", "content": "Hello!"}}]}}'
    lines += [
        "",
        "  try it with curl:",
        f"    curl {base}/chat/completions -H 'Content-Type: application/json'{key_header} \\",
        f"      -d '{body}'",
        "",
        "  or with the OpenAI SDK (python):",
        *(["    import os"] if auth else []),
        "    from openai import OpenAI",
        f'    client = OpenAI(base_url="{base}", api_key={api_key})',
        f'    reply = client.chat.completions.create(model="{model}",',
        '        messages=[{"role": "user", "content": "Hello!"}])',
        "    print(reply.choices[0].message.content)",
        "",
    ]
    return "\n".join(lines)


def run(args: argparse.Namespace) -> int:
    from headway.config.load import load
    from headway.errors import ConfigError
    from headway.server.run import ServeOptions, bind_socket, serve

    try:
        runtime = load(args.config)
    except ConfigError as exc:
        print(f"config error: {exc}")
        return 1
    server = runtime.file.server
    host = args.host if args.host is not None else server.host
    port = args.port if args.port is not None else server.port
    workers = args.workers if args.workers is not None else server.workers
    if workers < 1:
        print("--workers must be at least 1")
        return 2
    try:
        sock = bind_socket(host, port)
    except OSError as exc:
        print(f"cannot listen on {host}:{port}: {exc.strerror}")
        return 1
    port = sock.getsockname()[1]
    print(banner(runtime, host, port, workers), flush=True)
    options = ServeOptions(args.config, host, port, workers, args.log_level, args.http)
    return serve(options, sock)
