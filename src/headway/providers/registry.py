"""Provider kinds by name, imported lazily so a config pays only for what it uses."""

from __future__ import annotations

import importlib
from collections.abc import Callable
from typing import TYPE_CHECKING

from headway.errors import ConfigError

if TYPE_CHECKING:
    from headway.config.runtime import Deployment
    from headway.providers.base import Provider
    from headway.services import Services

ProviderFactory = Callable[["Deployment", "Services"], "Provider"]

#: provider kind -> "module:factory"; each factory builds one deployment's Provider
KINDS: dict[str, str] = {
    "sim": "headway.providers.sim:build",
    "openai": "headway.providers.openai:build",
    "azure": "headway.providers.openai:build",
    "openai-compatible": "headway.providers.openai:build",
    "anthropic": "headway.providers.anthropic:build",
    "gemini": "headway.providers.gemini:build",
}


def factory_for(kind: str) -> ProviderFactory:
    target = KINDS.get(kind)
    if target is None:
        raise ConfigError("providers", f"unknown provider kind {kind!r}")
    module_name, attr = target.split(":")
    module = importlib.import_module(module_name)
    factory: ProviderFactory = getattr(module, attr)
    return factory


def build_provider(deployment: Deployment, services: Services) -> Provider:
    return factory_for(deployment.provider.kind)(deployment, services)
