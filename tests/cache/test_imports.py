"""An exact-only cache never loads the semantic tier (its embedder, index and numpy)."""

from __future__ import annotations

import subprocess
import sys

SCRIPT = """
import sys
from headway.cache.stage import build
from headway.config.load import load
from headway.services import Services

runtime = load(text='''
providers: {oa: {kind: openai, api_key: x}}
models: {m: {provider: oa, model: gpt-4o}}
cache: {enabled: true, semantic: {enabled: %s}}
''', env={})
stage = build(runtime, Services())
assert stage is not None and (stage.semantic is not None) == %s
print(sorted(m for m in sys.modules if m.startswith(("headway.cache.semantic",
      "headway.cache.embed", "headway.cache.index"))))
"""


def _loaded(semantic: bool) -> str:
    out = subprocess.run(
        [sys.executable, "-c", SCRIPT % (semantic, semantic)],
        capture_output=True,
        text=True,
        check=True,
    )
    return out.stdout.strip()


def test_the_semantic_tier_is_imported_only_when_enabled() -> None:
    assert _loaded(False) == "[]"
    assert "headway.cache.semantic" in _loaded(True)
