from __future__ import annotations

import socket
import threading
from pathlib import Path
from typing import Any

import pytest

from headway import tokens


@pytest.mark.parametrize("encoding", ["cl100k_base", "o200k_base"])
def test_known_counts(encoding: str) -> None:
    assert tokens.count("hello world", encoding) == 2
    assert tokens.count("tiktoken is great!", encoding) == 6


def test_default_encoding_is_o200k() -> None:
    assert tokens.DEFAULT_ENCODING == "o200k_base"
    assert tokens.get_encoding().name == "o200k_base"
    assert tokens.encode("hello world") == tokens.get_encoding("o200k_base").encode("hello world")


@pytest.mark.parametrize("encoding", ["cl100k_base", "o200k_base"])
def test_encode_decode_round_trip(encoding: str) -> None:
    text = "Grüße, 世界! tiktoken is great 🎉"
    ids = tokens.encode(text, encoding)
    assert len(ids) == tokens.count(text, encoding)
    assert tokens.decode(ids, encoding) == text


def test_special_token_text_counts_as_ordinary_text() -> None:
    # tiktoken's encode() raises on special tokens; user text must never break counting
    assert tokens.count("<|endoftext|>") > 1


def test_unknown_encoding_is_refused() -> None:
    with pytest.raises(ValueError, match="unknown encoding"):
        tokens.count("x", "p50k_base")


def test_encoding_for_model() -> None:
    assert tokens.encoding_for_model("gpt-4o-mini") == "o200k_base"
    assert tokens.encoding_for_model("gpt-4.1") == "o200k_base"
    assert tokens.encoding_for_model("gpt-4") == "cl100k_base"
    assert tokens.encoding_for_model("gpt-3.5-turbo") == "cl100k_base"
    assert tokens.encoding_for_model("text-embedding-3-small") == "cl100k_base"
    assert tokens.encoding_for_model("some-local-model") == "o200k_base"


def test_loads_offline_without_touching_the_tiktoken_cache(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """With an empty TIKTOKEN_CACHE_DIR and every socket refused, both encodings still load."""
    cache = tmp_path / "tiktoken-cache"
    cache.mkdir()
    monkeypatch.setenv("TIKTOKEN_CACHE_DIR", str(cache))
    attempts: list[Any] = []

    def refuse(*args: Any, **kwargs: Any) -> None:
        attempts.append(args)
        raise OSError("network disabled by the test")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket, "create_connection", refuse)
    monkeypatch.setattr(socket, "getaddrinfo", refuse)
    monkeypatch.setattr(tokens, "_loaded", {})  # force a fresh load in this test
    for name in tokens.ENCODINGS:
        assert tokens.count("hello world", name) == 2
    assert attempts == []
    assert list(cache.iterdir()) == []


def test_concurrent_first_use_loads_once(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(tokens, "_loaded", {})
    loads: list[str] = []
    real_load = tokens._load

    def counting_load(name: str) -> Any:
        loads.append(name)
        return real_load(name)

    monkeypatch.setattr(tokens, "_load", counting_load)
    results: list[int] = []
    threads = [
        threading.Thread(target=lambda: results.append(tokens.count("hello world", "cl100k_base")))
        for _ in range(4)
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert results == [2, 2, 2, 2]
    assert loads == ["cl100k_base"]


def test_the_python_copy_of_the_vocabulary_is_not_kept() -> None:
    # the Rust encoder has its own; tiktoken's dict is only for pickling (~29 MB per process)
    enc = tokens.get_encoding("o200k_base")
    assert not enc._mergeable_ranks
    assert tokens.decode(tokens.encode("hello world")) == "hello world"
    assert enc.decode_single_token_bytes(tokens.encode("hello")[0]) == b"hello"
