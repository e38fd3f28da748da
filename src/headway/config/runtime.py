"""Phase two: cross-section validation and the runtime objects the gateway is built from."""

from __future__ import annotations

from dataclasses import dataclass, field

from headway.config.schema import ConfigFile, ModelSection, ProviderSection, RouteSection
from headway.errors import ConfigError


@dataclass(slots=True, frozen=True)
class Deployment:
    """A model at a provider, as the resilience layer sees it."""

    name: str
    provider_name: str
    provider: ProviderSection
    model: ModelSection


@dataclass(slots=True, frozen=True)
class Route:
    name: str
    chain: tuple[str, ...]
    policy: RouteSection


@dataclass(slots=True, frozen=True)
class RuntimeConfig:
    file: ConfigFile
    deployments: dict[str, Deployment]
    routes: dict[str, Route]
    source: str = "<config>"
    #: models that callers may name directly (every deployment plus every route alias)
    public_models: tuple[str, ...] = field(default=())

    @property
    def auth_enabled(self) -> bool:
        return bool(self.file.server.master_key)


def build_runtime(cfg: ConfigFile, *, source: str = "<config>") -> RuntimeConfig:
    deployments: dict[str, Deployment] = {}
    for name, model in cfg.models.items():
        if model.provider not in cfg.providers:
            known = ", ".join(sorted(cfg.providers)) or "none"
            raise ConfigError(
                f"models.{name}.provider",
                f"unknown provider {model.provider!r} (known: {known})",
            )
        deployments[name] = Deployment(name, model.provider, cfg.providers[model.provider], model)

    for pname, prov in cfg.providers.items():
        if not prov.base_url and prov.kind in ("azure", "openai-compatible"):
            raise ConfigError(f"providers.{pname}.base_url", f"required for kind {prov.kind}")
        if prov.kind == "azure" and not prov.api_version:
            raise ConfigError(f"providers.{pname}.api_version", "required for kind azure")

    routes: dict[str, Route] = {}
    for rname, route in cfg.routes.items():
        if rname in deployments:
            raise ConfigError(f"routes.{rname}", "a route may not share its name with a model")
        if not route.chain:
            raise ConfigError(f"routes.{rname}.chain", "a route needs at least one model")
        seen: set[str] = set()
        for i, member in enumerate(route.chain):
            if member not in deployments:
                raise ConfigError(f"routes.{rname}.chain[{i}]", f"unknown model {member!r}")
            if member in seen:
                raise ConfigError(f"routes.{rname}.chain[{i}]", f"{member!r} appears twice")
            seen.add(member)
        routes[rname] = Route(rname, tuple(route.chain), route)

    for task, alias in cfg.routing.items():
        if alias not in routes and alias not in deployments:
            raise ConfigError(f"routing.{task}", f"unknown route {alias!r}")

    public = tuple(sorted({*routes, *deployments}))
    return RuntimeConfig(cfg, deployments, routes, source=source, public_models=public)
