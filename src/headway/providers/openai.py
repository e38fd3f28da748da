"""Provider kinds `openai`, `azure` and `openai-compatible` (vLLM, Ollama, llama.cpp, routers).

All three are one `HttpProvider` with the OpenAI wire format; they differ only in configuration
(design.md: "wire format is separate from endpoint and auth"):

| kind | base URL | auth | paths | wire options |
|---|---|---|---|---|
| openai | default `https://api.openai.com/v1` | `Authorization: Bearer` | as is | cap field by model family, base64 embeddings |
| azure | `https://{resource}.openai.azure.com` | `api-key` | `/openai/deployments/{model}/...?api-version=` | as openai |
| azure, base URL ending `/v1` | the "v1" data plane | `api-key` | as is | as openai |
| openai-compatible | required | Bearer when a key is set | as is | `max_tokens`, `developer` -> `system`, float embeddings |

Settings from config: `ProviderSection.headers` (sent on every call; e.g. `OpenAI-Organization`,
or an Entra `Authorization` header for Azure), `timeout_s`, `max_connections`;
`ModelSection.max_tokens_param` overrides the cap field (needed for Azure deployments whose
names do not reveal the model family).
"""

from __future__ import annotations

from urllib.parse import urlsplit

from headway.config.runtime import Deployment
from headway.providers.base import Capabilities
from headway.providers.http import (
    AzureDeploymentPaths,
    DirectPaths,
    HttpProvider,
    PathStrategy,
    bearer_auth,
    header_auth,
)
from headway.services import Services
from headway.transport.http import transport_for
from headway.wire.openai.egress import OpenAIOptions, OpenAIWire

OPENAI_BASE_URL = "https://api.openai.com/v1"


def _azure_paths(base_url: str, deployment: str, api_version: str | None) -> PathStrategy:
    path = urlsplit(base_url).path.rstrip("/")
    if path.endswith("/v1"):  # the newer v1 API: plain OpenAI paths, model = deployment name
        return DirectPaths()
    prefix = "" if path.endswith("/openai") else "/openai"
    return AzureDeploymentPaths(deployment, api_version or "", prefix)


def build(deployment: Deployment, services: Services) -> HttpProvider:
    section = deployment.provider
    kind = section.kind
    model = deployment.model.model
    base_url = (section.base_url or OPENAI_BASE_URL).rstrip("/")
    compatible = kind == "openai-compatible"
    options = OpenAIOptions(
        provider=deployment.provider_name,
        max_tokens_param=deployment.model.max_tokens_param
        or ("max_tokens" if compatible else None),
        developer_role=not compatible,
        embedding_encoding="float" if compatible else "base64",
    )
    paths: PathStrategy
    if kind == "azure":
        auth = header_auth(section.api_key, "api-key")
        paths = _azure_paths(base_url, model, section.api_version)
    else:
        auth = bearer_auth(section.api_key)
        paths = DirectPaths()
    return HttpProvider(
        deployment.name,
        wire=OpenAIWire(options),
        model=model,
        base_url=base_url,
        transport=transport_for(services),
        headers={"User-Agent": "headway", **auth, **section.headers},
        paths=paths,
        capabilities=Capabilities(embeddings=deployment.model.embeddings, prefill=False),
        clock=services.clock,
        timeout_s=section.timeout_s,
        max_connections=section.max_connections,
        label=deployment.provider_name,
    )
