"""The fake provider HTTP server: a SimEngine behind one vendor flavour, over real HTTP.

Shared by every flavour: request ids and headers on every response, API-key checks, errors turned
into the flavour's error bodies, counters, and the control surface used by tests and benchmarks:

- `POST /_fake/control` (JSON): any `SimSettings` field (`error_rate`, `error_status`, `hang`,
  `slow_ms`, `cut_after_tokens`, `stall_after_tokens` + `stall_s`, `malformed_after_tokens`,
  `error_after_tokens`, `fault_requests`, `rpm`, `tpm`, latencies, `seed`...), plus
  `outage` (true: until cleared; false: clear; a number: for that many seconds; or
  `{"start_in_s": s, "duration_s": d}`), `reject_prefill` (bool), the server options
  `cut_mode` (`close`: end the body without a terminator; `reset`: drop the connection),
  `error_retry_after_s` and `error_should_retry` (headers on injected errors), and `reset: true`
  (initial settings, full limits, zero counters). Answers with the settings in force.
- `GET /_fake/stats`: requests by endpoint and status, streamed vs not, tokens in/out, 429s sent,
  errors injected, in flight and max concurrent, and the engine's own counters.
"""

from __future__ import annotations

import math
import socket
from collections import Counter
from dataclasses import dataclass, field, replace
from typing import Any, Literal

import orjson
from aiohttp import web
from pydantic import ValidationError

from headway.clock import SYSTEM_CLOCK, Clock
from headway.config.schema import SimSettings
from headway.errors import HeadwayError, ModelNotFound, NotFound, http_status
from headway.providers.fake.flavour import Flavour, load_flavour
from headway.providers.sim.engine import SimEngine

CONTROL_PATH = "/_fake/control"
STATS_PATH = "/_fake/stats"
#: per-request values flavours may read: when the request arrived (clock monotonic), its id
STARTED = web.RequestKey("headway_fake_started", float)
REQUEST_ID = web.RequestKey("headway_fake_request_id", str)


@dataclass(slots=True)
class FakeOptions:
    """Server behaviour that is not the engine's: auth, model list, how faults reach the wire."""

    api_key: str | None = None
    models: tuple[str, ...] = ()
    #: answer 404 for models not in `models` (real providers do; off so any name works)
    known_models_only: bool = False
    cut_mode: Literal["close", "reset"] = "close"
    error_retry_after_s: float | None = None
    error_should_retry: bool | None = None


@dataclass(slots=True)
class FakeStats:
    requests: int = 0
    by_endpoint: Counter[str] = field(default_factory=Counter)
    by_status: Counter[int] = field(default_factory=Counter)
    streamed: int = 0
    non_streamed: int = 0
    in_flight: int = 0
    max_concurrent: int = 0


class FakeServer:
    def __init__(
        self,
        flavour: Flavour | str = "openai",
        *,
        settings: SimSettings | None = None,
        clock: Clock = SYSTEM_CLOCK,
        options: FakeOptions | None = None,
    ) -> None:
        self.flavour = load_flavour(flavour) if isinstance(flavour, str) else flavour
        self.engine = SimEngine(settings, clock=clock)
        self.clock = clock
        self._initial_options = options or FakeOptions()
        self.options = replace(self._initial_options)
        self.stats = FakeStats()
        self._runner: web.AppRunner | None = None
        self.host = "127.0.0.1"
        self.port = 0

    # ---- helpers for flavours --------------------------------------------------------------

    @property
    def models(self) -> tuple[str, ...]:
        return self.options.models or self.flavour.default_models

    def check_model(self, model: str) -> None:
        if self.options.known_models_only and model not in self.models:
            raise ModelNotFound(
                f"The model `{model}` does not exist or you do not have access to it.",
                param="model",
            )

    def count_call(self, streamed: bool) -> None:
        if streamed:
            self.stats.streamed += 1
        else:
            self.stats.non_streamed += 1

    def retry_headers(self, err: HeadwayError, status: int) -> dict[str, str]:
        """`retry-after` (whole seconds) and `retry-after-ms` for throttling; the configured
        hints for injected errors."""
        headers: dict[str, str] = {}
        delay = err.retry_after
        hinted = err.provider == "sim" and delay is None  # an engine error with no hint of its own
        if hinted:
            delay = self.options.error_retry_after_s
        if delay is not None:
            headers["retry-after"] = str(max(1, math.ceil(delay)))
            headers["retry-after-ms"] = str(max(1, round(delay * 1000)))
        should = self.options.error_should_retry
        if hinted and should is not None:
            headers["x-should-retry"] = "true" if should else "false"
        return headers

    async def open_stream(
        self, request: web.Request, content_type: str = "text/event-stream"
    ) -> web.StreamResponse:
        resp = web.StreamResponse(status=200)
        resp.headers.update(self.flavour.headers(self, request))
        resp.headers["Content-Type"] = content_type
        resp.headers["Cache-Control"] = "no-cache"
        await resp.prepare(request)
        return resp

    async def cut(self, request: web.Request, resp: web.StreamResponse) -> web.StreamResponse:
        """End a started stream without its terminator, the configured way."""
        if self.options.cut_mode == "reset" and request.transport is not None:
            request.transport.abort()
            return resp
        await resp.write_eof()
        return resp

    # ---- the application -------------------------------------------------------------------

    @web.middleware
    async def _middleware(self, request: web.Request, handler: Any) -> web.StreamResponse:
        if request.path.startswith("/_fake/"):
            response: web.StreamResponse = await handler(request)
            return response
        stats = self.stats
        stats.requests += 1
        stats.in_flight += 1
        stats.max_concurrent = max(stats.max_concurrent, stats.in_flight)
        request[STARTED] = self.clock.monotonic()
        route = request.match_info.route.name or "unknown"
        stats.by_endpoint[route] += 1
        try:
            try:
                key = self.options.api_key
                if key is not None:
                    denied = self.flavour.authenticate(request, key)
                    if denied is not None:
                        raise denied
                response = await handler(request)
            except web.HTTPNotFound as exc:
                raise NotFound(f"Unknown request URL: {request.method} {request.path}.") from exc
            except web.HTTPMethodNotAllowed as exc:
                raise NotFound(f"Unknown request URL: {request.method} {request.path}.") from exc
        except HeadwayError as err:
            status = err.upstream_status or http_status(err)
            headers = self.flavour.headers(self, request)
            headers.update(self.retry_headers(err, status))
            response = self.flavour.error_response(self, err, status, headers)
        finally:
            stats.in_flight -= 1
        stats.by_status[response.status] += 1
        return response

    async def _control(self, request: web.Request) -> web.Response:
        try:
            body = orjson.loads(await request.read())
            if not isinstance(body, dict):
                raise ValueError("the control body must be a JSON object")
            self.apply_control(body)
        except (ValueError, TypeError, ValidationError) as exc:
            return web.json_response({"error": str(exc)}, status=400, dumps=_dumps)
        return web.json_response(self.describe(), dumps=_dumps)

    async def _stats(self, request: web.Request) -> web.Response:
        return web.json_response(self.stats_dict(), dumps=_dumps)

    def app(self) -> web.Application:
        app = web.Application(middlewares=[self._middleware], client_max_size=64 * 1024 * 1024)
        app.add_routes(self.flavour.routes(self))
        app.add_routes([web.post(CONTROL_PATH, self._control), web.get(STATS_PATH, self._stats)])
        return app

    # ---- control and stats -----------------------------------------------------------------

    def apply_control(self, body: dict[str, Any]) -> None:
        body = dict(body)
        if body.pop("reset", False):
            self.engine.reset()
            self.options = replace(self._initial_options)
            self.stats = FakeStats()
        ctl = self.engine.control
        if "outage" in body:
            outage = body.pop("outage")
            if outage is False or outage is None:
                ctl.clear_outages()
            elif outage is True:
                ctl.outage()
            elif isinstance(outage, int | float):
                ctl.outage(float(outage))
            elif isinstance(outage, dict):
                ctl.outage(outage.get("duration_s"), start_in_s=float(outage.get("start_in_s", 0)))
            else:
                raise ValueError("outage: true, false, seconds or {start_in_s, duration_s}")
        if "reject_prefill" in body:
            body["prefill"] = not body.pop("reject_prefill")
        for name in (
            "api_key",
            "known_models_only",
            "cut_mode",
            "error_retry_after_s",
            "error_should_retry",
        ):
            if name in body:
                value = body.pop(name)
                if name == "cut_mode" and value not in ("close", "reset"):
                    raise ValueError("cut_mode: close or reset")
                setattr(self.options, name, value)
        if body:
            ctl.update(**body)

    def describe(self) -> dict[str, Any]:
        o = self.options
        return {
            "flavour": self.flavour.name,
            "settings": self.engine.settings.model_dump(),
            "outages": len(self.engine.control.outages),
            "options": {
                "auth": o.api_key is not None,
                "models": list(self.models),
                "known_models_only": o.known_models_only,
                "cut_mode": o.cut_mode,
                "error_retry_after_s": o.error_retry_after_s,
                "error_should_retry": o.error_should_retry,
            },
        }

    def stats_dict(self) -> dict[str, Any]:
        s, e = self.stats, self.engine.stats
        return {
            "requests": s.requests,
            "by_endpoint": dict(s.by_endpoint),
            "by_status": {str(k): v for k, v in s.by_status.items()},
            "streamed": s.streamed,
            "non_streamed": s.non_streamed,
            "tokens_in": e.input_tokens,
            "tokens_out": e.output_tokens,
            "rate_limited": s.by_status.get(429, 0),
            "errors_injected": e.errors_injected + e.outage_errors + e.in_band_errors,
            "in_flight": s.in_flight,
            "max_concurrent": s.max_concurrent,
            "engine": e.as_dict(),
        }

    # ---- running ---------------------------------------------------------------------------

    async def start(self, host: str = "127.0.0.1", port: int = 0) -> None:
        """Serve in the running event loop (port 0: a free port, then read `self.port`)."""
        runner = web.AppRunner(
            self.app(),
            handle_signals=False,
            access_log=None,
            handler_cancellation=True,  # a client that gives up ends a hung handler
            shutdown_timeout=0.5,
        )
        await runner.setup()
        sock = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((host, port))
        site = web.SockSite(runner, sock)
        await site.start()
        self._runner = runner
        self.host, self.port = host, sock.getsockname()[1]

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    @property
    def root_url(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}"

    @property
    def url(self) -> str:
        return self.root_url + self.flavour.base_path


def _dumps(obj: Any) -> str:
    return orjson.dumps(obj).decode()
