"""An `openai` provider configured in YAML, used through `headway.Gateway` (real loopback HTTP)."""

from __future__ import annotations

from pathlib import Path

from headway.config.load import load
from headway.gateway import Gateway
from headway.types import FinishReason
from tests.providers.openai_server import Reply, ScriptedServer, completion, error_body, text_stream


def config(url: str, tmp_path: Path) -> str:
    return f"""
providers:
  up: {{kind: openai, base_url: "{url}/v1", api_key: x}}
  local: {{kind: openai-compatible, base_url: "{url}/local/v1"}}
models:
  gpt: {{provider: up, model: gpt-4o-mini}}
  gone: {{provider: up, model: gpt-retired}}
  llama: {{provider: local, model: llama3.2}}
  embed: {{provider: up, model: text-embedding-3-small, embeddings: true}}
routes:
  default: {{chain: [gone, gpt]}}
ledger: {{sqlite_path: "{tmp_path / "headway.db"}"}}
"""


def gateway(upstream: ScriptedServer, tmp_path: Path) -> Gateway:
    return Gateway(load(text=config(upstream.url, tmp_path), env={}))


async def test_chat_through_the_gateway(upstream: ScriptedServer, tmp_path: Path) -> None:
    upstream.script(Reply(json=completion("Hello from upstream")))
    async with gateway(upstream, tmp_path) as gw:
        reply = await gw.chat(model="gpt", messages=[{"role": "user", "content": "hi"}])
    assert reply.content == "Hello from upstream"
    assert reply.usage.input_tokens == 19
    seen = upstream.seen[0]
    assert seen.path == "/v1/chat/completions"
    assert seen.headers["authorization"] == "Bearer x"
    assert seen.body["model"] == "gpt-4o-mini"


async def test_stream_through_the_gateway(upstream: ScriptedServer, tmp_path: Path) -> None:
    upstream.script(Reply(frames=text_stream("Hel", "lo")))
    async with gateway(upstream, tmp_path) as gw:
        chunks = [
            c async for c in gw.stream(model="gpt", messages=[{"role": "user", "content": "hi"}])
        ]
    assert "".join(c.text for c in chunks) == "Hello"
    assert chunks[-1].finish_reason is FinishReason.STOP
    assert chunks[-1].usage is not None and chunks[-1].usage.output_tokens == 2
    assert upstream.seen[0].body["stream_options"] == {"include_usage": True}


async def test_embeddings_through_the_gateway(upstream: ScriptedServer, tmp_path: Path) -> None:
    body = {
        "object": "list",
        "model": "text-embedding-3-small",
        "data": [{"object": "embedding", "index": 0, "embedding": [0.5, 0.25]}],
        "usage": {"prompt_tokens": 1, "total_tokens": 1},
    }
    upstream.script(Reply(json=body))
    async with gateway(upstream, tmp_path) as gw:
        result = await gw.embed(model="embed", input="hello")
    assert result.vectors == [[0.5, 0.25]]
    assert upstream.seen[0].path == "/v1/embeddings"


async def test_a_model_missing_at_one_deployment_falls_back(
    upstream: ScriptedServer, tmp_path: Path
) -> None:
    missing = error_body(
        "The model `gpt-retired` does not exist", "invalid_request_error", "model_not_found"
    )
    upstream.script(Reply(status=404, json=missing), Reply(json=completion("from gpt")))
    async with gateway(upstream, tmp_path) as gw:
        reply = await gw.chat(model="default", messages=[{"role": "user", "content": "hi"}])
    assert reply.content == "from gpt"
    assert [s.body["model"] for s in upstream.seen] == ["gpt-retired", "gpt-4o-mini"]


async def test_compatible_server_without_key_or_usage(
    upstream: ScriptedServer, tmp_path: Path
) -> None:
    upstream.script(Reply(frames=text_stream("local", with_usage=False)))
    async with gateway(upstream, tmp_path) as gw:
        chunks = [
            c async for c in gw.stream(model="llama", messages=[{"role": "user", "content": "hi"}])
        ]
    assert "".join(c.text for c in chunks) == "local"
    final = chunks[-1].usage
    assert final is not None and final.estimated and final.output_tokens == 1
    seen = upstream.seen[0]
    assert seen.path == "/local/v1/chat/completions"
    assert "authorization" not in seen.headers
