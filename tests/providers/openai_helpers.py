"""Building OpenAI-kind providers against a test server, and draining their streams."""

from __future__ import annotations

from typing import Any

from headway.config.runtime import Deployment
from headway.config.schema import ModelSection, ProviderSection
from headway.providers.base import AttemptContext
from headway.providers.http import HttpProvider
from headway.providers.openai import build
from headway.services import Services
from headway.types import ChatChunk, ChatRequest, Message

REQUEST = ChatRequest(model="m", messages=(Message("user", "Say hello"),), max_tokens=16)


def deployment(
    base_url: str | None, kind: str = "openai", *, model: str = "gpt-4o-mini", **extra: Any
) -> Deployment:
    provider_fields = {
        k: extra.pop(k) for k in ("api_key", "api_version", "headers", "timeout_s") if k in extra
    }
    provider_fields.setdefault("api_key", "sk-test")
    section = ProviderSection(kind=kind, base_url=base_url, **provider_fields)  # type: ignore[arg-type]
    return Deployment("m", "up", section, ModelSection(provider="up", model=model, **extra))


def make(base_url: str | None, services: Services, kind: str = "openai", **kw: Any) -> HttpProvider:
    return build(deployment(base_url, kind, **kw), services)


def ctx(**kw: Any) -> AttemptContext:
    return AttemptContext(request_id="req_test", **kw)


async def collect(
    provider: HttpProvider, request: ChatRequest = REQUEST, **kw: Any
) -> list[ChatChunk]:
    out: list[ChatChunk] = []
    async for chunk in provider.stream(request, ctx(**kw)):
        out.append(chunk)
    return out


async def collect_until_error(
    provider: HttpProvider, request: ChatRequest = REQUEST, **kw: Any
) -> tuple[list[ChatChunk], BaseException]:
    out: list[ChatChunk] = []
    try:
        async for chunk in provider.stream(request, ctx(**kw)):
            out.append(chunk)
    except Exception as exc:  # noqa: BLE001 - the test inspects whatever was raised
        return out, exc
    raise AssertionError(f"the stream ended without an error after {len(out)} chunks")
