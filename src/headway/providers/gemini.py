"""Provider kind `gemini`: the Gemini Developer API (generativelanguage.googleapis.com).

Auth is the `x-goog-api-key` header (the API also takes `?key=`, which would put the key in
logged URLs). Paths are `/v1beta/models/{model}:generateContent`, `:streamGenerateContent?alt=sse`,
`:embedContent` and `:batchEmbedContents` under the host; a configured base URL that already ends
in the API version (`/v1beta`, `/v1`) is used as the prefix instead. Gemini does not continue a
trailing model turn, so no `prefill`.
"""

from __future__ import annotations

from urllib.parse import urlsplit

from headway.config.runtime import Deployment
from headway.providers.base import Capabilities
from headway.providers.http import HttpProvider, header_auth
from headway.services import Services
from headway.transport.http import transport_for
from headway.wire.gemini.egress import API_PREFIX, GeminiWire

GEMINI_BASE_URL = "https://generativelanguage.googleapis.com"


def wire_for(base_url: str) -> GeminiWire:
    path = urlsplit(base_url).path.rstrip("/")
    versioned = path.rsplit("/", 1)[-1] in ("v1beta", "v1", "v1alpha")
    return GeminiWire(api_prefix="" if versioned else API_PREFIX)


def build(deployment: Deployment, services: Services) -> HttpProvider:
    section = deployment.provider
    base_url = (section.base_url or GEMINI_BASE_URL).rstrip("/")
    headers = {
        "User-Agent": "headway",
        **header_auth(section.api_key, "x-goog-api-key"),
        **section.headers,
    }
    return HttpProvider(
        deployment.name,
        wire=wire_for(base_url),
        model=deployment.model.model,
        base_url=base_url,
        transport=transport_for(services),
        headers=headers,
        capabilities=Capabilities(embeddings=deployment.model.embeddings, prefill=False),
        clock=services.clock,
        timeout_s=section.timeout_s,
        max_connections=section.max_connections,
        label=deployment.provider_name,
    )
