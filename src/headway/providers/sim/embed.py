"""Deterministic embeddings: unit vectors built from hashes, no model.

A text's vector is the normalised sum of one hashed vector per lower-cased word plus a smaller
hashed vector of the whole text. Equal texts get equal vectors; texts sharing words get a high
cosine and unrelated texts a cosine near 0, which is enough to exercise a semantic cache without
pretending to understand anything.
"""

from __future__ import annotations

import functools
import hashlib
import re

import numpy as np
import numpy.typing as npt

_WORD = re.compile(r"\w+")
_WHOLE_TEXT_WEIGHT = 0.5


@functools.lru_cache(maxsize=16384)
def _hashed(token: str, dim: int) -> npt.NDArray[np.float64]:
    raw = hashlib.shake_256(f"{dim}\x1f{token}".encode()).digest(2 * dim)
    vec = np.frombuffer(raw, dtype="<i2").astype(np.float64)
    vec /= np.linalg.norm(vec) or 1.0
    vec.setflags(write=False)
    return vec


def vector(text: str, dim: int) -> list[float]:
    acc = _hashed("\x00" + text, dim) * _WHOLE_TEXT_WEIGHT
    for word in _WORD.findall(text.lower()):
        acc = acc + _hashed(word, dim)
    norm = float(np.linalg.norm(acc))
    result: list[float] = (acc / norm).tolist()
    return result
