"""The raw config file, as pydantic models (phase one of two).

Phase two (headway.config.runtime) checks what a model alone cannot: cross references between
sections, and builds the runtime objects. Feature sections are owned by their packages.
"""

from __future__ import annotations

import datetime as dt
from typing import Literal

from pydantic import Field

from headway.budgets.config import BudgetsConfig
from headway.cache.config import CacheConfig
from headway.config.base import StrictModel
from headway.degrade.config import DegradeConfig
from headway.keys.config import KeysConfig
from headway.limits.config import LimitsConfig
from headway.observe.config import ObserveConfig
from headway.routing.config import RoutePolicyConfig

ProviderKind = Literal["sim", "openai", "azure", "anthropic", "gemini", "openai-compatible"]


class ServerSection(StrictModel):
    host: str = "127.0.0.1"
    port: int = Field(default=4100, ge=0, le=65535)
    #: admin and client auth; when unset (and HEADWAY_MASTER_KEY is unset) auth is off
    master_key: str | None = None
    max_body_bytes: int = Field(default=8 * 1024 * 1024, gt=0)
    workers: int = Field(default=1, ge=1)


class SimSettings(StrictModel):
    """Behaviour of the in-process simulated provider (see headway.providers.sim)."""

    latency_p50_ms: float = Field(default=300.0, ge=0)
    latency_p99_ms: float = Field(default=3000.0, ge=0)
    ttft_p50_ms: float = Field(default=200.0, ge=0)
    ms_per_token: float = Field(default=8.0, ge=0)
    error_rate: float = Field(default=0.0, ge=0, le=1)
    rpm: int | None = Field(default=None, gt=0)
    tpm: int | None = Field(default=None, gt=0)
    seed: int = 0
    # -- the rest is documented in headway.providers.sim.behaviour (owned by the sim provider)
    error_status: int = Field(default=500, ge=400, le=599)
    outages: list[tuple[float, float]] = Field(default_factory=list)
    hang: bool = False
    slow_ms: float = Field(default=0.0, ge=0)
    cut_after_tokens: int | None = Field(default=None, ge=0)
    stall_after_tokens: int | None = Field(default=None, ge=0)
    stall_s: float = Field(default=0.0, ge=0)
    malformed_after_tokens: int | None = Field(default=None, ge=0)
    error_after_tokens: int | None = Field(default=None, ge=0)
    fault_requests: int | None = Field(default=None, ge=0)
    prefill: bool = True
    answer_tokens_min: int = Field(default=16, ge=1)
    answer_tokens_max: int = Field(default=128, ge=1)
    default_max_tokens: int = Field(default=4096, gt=0)
    encoding: Literal["o200k_base", "cl100k_base"] = "o200k_base"
    embedding_dim: int = Field(default=256, gt=0)


class ProviderSection(StrictModel):
    kind: ProviderKind
    base_url: str | None = None
    api_key: str | None = None
    #: Azure OpenAI: the `api-version` query parameter
    api_version: str | None = None
    #: extra headers sent with every upstream request
    headers: dict[str, str] = Field(default_factory=dict)
    timeout_s: float = Field(default=600.0, gt=0)
    max_connections: int = Field(default=256, gt=0)
    sim: SimSettings | None = None


class ModelSection(StrictModel):
    """A deployment: one model at one provider, with its prices and limits."""

    provider: str
    #: the provider's model id (for Azure, the deployment name)
    model: str
    #: USD per 1M tokens; when unset, the shipped pricing table is used
    input_price: float | None = Field(default=None, ge=0)
    output_price: float | None = Field(default=None, ge=0)
    cached_input_price: float | None = Field(default=None, ge=0)
    default_max_tokens: int | None = Field(default=None, gt=0)
    max_context_tokens: int | None = Field(default=None, gt=0)
    embeddings: bool = False
    #: date after which the model is no longer served; headway warns before and reroutes after
    sunset: dt.date | None = None
    #: OpenAI-shaped providers: the body field that carries the output cap. Unset: chosen by
    #: model family (`max_completion_tokens` for o-series and gpt-5, which reject `max_tokens`)
    max_tokens_param: Literal["max_tokens", "max_completion_tokens"] | None = None


class RouteSection(RoutePolicyConfig):
    chain: list[str]


class StateSection(StrictModel):
    backend: Literal["memory", "redis"] = "memory"
    redis_url: str | None = None


class LedgerSection(StrictModel):
    #: "memory": kept in this process only, newest 100k calls (a library Gateway's default)
    backend: Literal["sqlite", "postgres", "memory"] = "sqlite"
    sqlite_path: str = "headway.db"
    postgres_url: str | None = None
    #: record every settled call (usage and cost); keys live in the same database
    enabled: bool = True
    #: the background writer flushes at least this often, or as soon as a batch fills
    flush_interval_s: float = Field(default=0.5, gt=0)
    batch_size: int = Field(default=500, gt=0)
    #: records waiting in memory; beyond this they go straight to the spill folder
    queue_max: int = Field(default=50_000, gt=0)
    #: folder where records wait while the database is down (default: `<sqlite_path>.spill`)
    spill_dir: str | None = None


class ConfigFile(StrictModel):
    server: ServerSection = Field(default_factory=ServerSection)
    providers: dict[str, ProviderSection] = Field(default_factory=dict)
    models: dict[str, ModelSection] = Field(default_factory=dict)
    routes: dict[str, RouteSection] = Field(default_factory=dict)
    #: task type -> route alias, used when a request names a task and no model route
    routing: dict[str, str] = Field(default_factory=dict)
    state: StateSection = Field(default_factory=StateSection)
    ledger: LedgerSection = Field(default_factory=LedgerSection)
    keys: KeysConfig = Field(default_factory=KeysConfig)
    limits: LimitsConfig = Field(default_factory=LimitsConfig)
    budgets: BudgetsConfig = Field(default_factory=BudgetsConfig)
    cache: CacheConfig = Field(default_factory=CacheConfig)
    degrade: DegradeConfig = Field(default_factory=DegradeConfig)
    observe: ObserveConfig = Field(default_factory=ObserveConfig)
