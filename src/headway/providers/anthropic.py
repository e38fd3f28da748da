"""Provider kind `anthropic`: the Messages API as one `HttpProvider`.

Auth is `x-api-key` plus the `anthropic-version` header the API requires; both are static, sent
on every call. The base URL has no version (`https://api.anthropic.com`, as in Anthropic's SDK);
a configured base URL ending in `/v1` is accepted too. `max_tokens` is required upstream, so the
deployment's `default_max_tokens` (else 4096) fills it when the caller set none. Anthropic
continues a trailing assistant message, so the provider declares `prefill`.
"""

from __future__ import annotations

from headway.config.runtime import Deployment
from headway.providers.base import Capabilities
from headway.providers.http import HttpProvider, header_auth
from headway.services import Services
from headway.transport.http import transport_for
from headway.wire.anthropic.egress import API_VERSION, DEFAULT_MAX_TOKENS, AnthropicWire

ANTHROPIC_BASE_URL = "https://api.anthropic.com"


def base_url_for(configured: str | None) -> str:
    url = (configured or ANTHROPIC_BASE_URL).rstrip("/")
    return url.removesuffix("/v1")


def build(deployment: Deployment, services: Services) -> HttpProvider:
    section = deployment.provider
    wire = AnthropicWire(
        default_max_tokens=deployment.model.default_max_tokens or DEFAULT_MAX_TOKENS
    )
    headers = {
        "User-Agent": "headway",
        "anthropic-version": API_VERSION,
        **header_auth(section.api_key, "x-api-key"),
        **section.headers,
    }
    return HttpProvider(
        deployment.name,
        wire=wire,
        model=deployment.model.model,
        base_url=base_url_for(section.base_url),
        transport=transport_for(services),
        headers=headers,
        capabilities=Capabilities(embeddings=False, prefill=True),
        clock=services.clock,
        timeout_s=section.timeout_s,
        max_connections=section.max_connections,
        label=deployment.provider_name,
    )
