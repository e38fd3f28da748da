"""Embedders for the semantic cache: a protocol and three implementations.

- `local` (default): the shipped all-MiniLM-L6-v2 as a numpy forward pass; offline, no torch.
- `openai`: any OpenAI-compatible `/v1/embeddings` endpoint.
- `sentence-transformers`: any model it can load, when that package is installed.

Every embedder returns L2-normalised float32 rows, so a dot product is the cosine similarity.
`name` goes into the index scope: vectors of different models never meet.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from functools import lru_cache
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from headway.cache.config import EmbedderConfig
from headway.errors import ConfigError, UpstreamError


class Embedder(Protocol):
    name: str
    dim: int

    async def embed(self, texts: Sequence[str]) -> np.ndarray: ...

    async def aclose(self) -> None: ...


@lru_cache(maxsize=4)
def _load_minilm(path: str | None) -> Any:
    # Read-only weights, shared by every gateway in the process: loading costs ~0.4 s.
    from headway.cache.embed.minilm import DEFAULT_WEIGHTS, MiniLMEmbedder

    _single_blas_thread()
    return MiniLMEmbedder(Path(path) if path else DEFAULT_WEIGHTS)


def _single_blas_thread() -> None:
    """One BLAS thread: a query is a few small matrices, and OpenBLAS's worker threads spin while
    waiting; on a busy 2-core host they made a query 3-4x slower than a single thread (measured).
    Process-wide; headway does no other heavy linear algebra."""
    try:
        from threadpoolctl import threadpool_limits  # type: ignore[import-untyped]
    except ImportError:
        return
    threadpool_limits(1, user_api="blas")


class LocalEmbedder:
    """The numpy MiniLM on one worker thread: the event loop stays free while it computes."""

    dim = 384

    def __init__(self, path: str | None = None) -> None:
        self._path = path
        self.name = "minilm-l6-v2"
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="headway-embed")

    def model(self) -> Any:
        return _load_minilm(self._path)

    def embed_sync(self, texts: Sequence[str]) -> np.ndarray:
        out: np.ndarray = self.model().embed_sync(texts)
        return out

    async def embed(self, texts: Sequence[str]) -> np.ndarray:
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._pool, self.embed_sync, list(texts))

    async def aclose(self) -> None:
        self._pool.shutdown(wait=False)


class OpenAIEmbedder:
    """POST {base_url}/embeddings; errors become UpstreamError (the cache then just misses)."""

    def __init__(self, base_url: str, model: str, api_key: str | None, timeout_s: float) -> None:
        self.name = f"openai:{model}"
        self.dim = 0  # known after the first answer
        self._url = base_url.rstrip("/") + "/embeddings"
        self._model = model
        self._headers = {"authorization": f"Bearer {api_key}"} if api_key else {}
        self._timeout = timeout_s
        self._session: Any = None

    async def embed(self, texts: Sequence[str]) -> np.ndarray:
        import aiohttp

        if self._session is None:
            self._session = aiohttp.ClientSession(
                timeout=aiohttp.ClientTimeout(total=self._timeout)
            )
        body = {"model": self._model, "input": list(texts)}
        try:
            async with self._session.post(self._url, json=body, headers=self._headers) as resp:
                if resp.status != 200:
                    raise UpstreamError(f"embeddings endpoint answered {resp.status}")
                data = await resp.json()
        except (aiohttp.ClientError, TimeoutError) as exc:
            raise UpstreamError(f"embeddings endpoint failed: {exc}") from exc
        rows = sorted(data["data"], key=lambda d: d["index"])
        vectors = np.asarray([r["embedding"] for r in rows], dtype=np.float32)
        norms = np.linalg.norm(vectors, axis=1, keepdims=True)
        self.dim = vectors.shape[1]
        out: np.ndarray = vectors / np.maximum(norms, 1e-12)
        return out

    async def aclose(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None


class SentenceTransformerEmbedder:
    def __init__(self, model: str) -> None:
        try:
            from sentence_transformers import (  # type: ignore[import-not-found]
                SentenceTransformer,
            )
        except ImportError as exc:
            raise ConfigError(
                "cache.semantic.embedder.kind", "sentence-transformers is not installed"
            ) from exc
        self._model = SentenceTransformer(model, device="cpu")
        self.name = f"st:{model}"
        self.dim = int(self._model.get_sentence_embedding_dimension() or 0)
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="headway-embed")

    def _run(self, texts: list[str]) -> np.ndarray:
        out: np.ndarray = np.asarray(
            self._model.encode(texts, normalize_embeddings=True), dtype=np.float32
        )
        return out

    async def embed(self, texts: Sequence[str]) -> np.ndarray:
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._pool, self._run, list(texts))

    async def aclose(self) -> None:
        self._pool.shutdown(wait=False)


def build_embedder(cfg: EmbedderConfig) -> Embedder:
    path = "cache.semantic.embedder"
    if cfg.kind == "local":
        return LocalEmbedder(cfg.path)
    if cfg.kind == "openai":
        if not cfg.base_url or not cfg.model:
            raise ConfigError(path, "kind openai needs base_url and model")
        return OpenAIEmbedder(cfg.base_url, cfg.model, cfg.api_key, cfg.timeout_s)
    if not cfg.model:
        raise ConfigError(path + ".model", "kind sentence-transformers needs a model")
    return SentenceTransformerEmbedder(cfg.model)
