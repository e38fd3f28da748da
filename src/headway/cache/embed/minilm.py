"""all-MiniLM-L6-v2 as a numpy forward pass: the default, offline embedder of the semantic cache.

Six BERT layers, 384 wide, mean pooling, L2 normalisation, exactly as sentence-transformers runs
it. Weights come from the int8 file shipped in `data/` (or any published `model.safetensors`);
nothing is downloaded. Queries are short, so a query costs a few milliseconds on one core.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from headway.cache.embed.weights import read_weights
from headway.cache.embed.wordpiece import WordPiece

DATA = Path(__file__).parent / "data"
DEFAULT_WEIGHTS = DATA / "minilm-l6-v2-int8.npz"
DEFAULT_VOCAB = DATA / "vocab.txt"

_HEADS = 12
_EPS = 1e-12


@dataclass(slots=True)
class _Layer:
    qkv_w: np.ndarray  # (384, 1152): query, key, value fused into one matmul
    qkv_b: np.ndarray
    out_w: np.ndarray
    out_b: np.ndarray
    ln1_g: np.ndarray
    ln1_b: np.ndarray
    up_w: np.ndarray
    up_b: np.ndarray
    down_w: np.ndarray
    down_b: np.ndarray
    ln2_g: np.ndarray
    ln2_b: np.ndarray


def _layer_norm(x: np.ndarray, g: np.ndarray, b: np.ndarray) -> np.ndarray:
    mean = x.mean(axis=-1, keepdims=True)
    centred = x - mean
    var = (centred * centred).mean(axis=-1, keepdims=True)
    out: np.ndarray = centred / np.sqrt(var + _EPS) * g + b
    return out


def _gelu(x: np.ndarray) -> np.ndarray:
    # The tanh form of GELU: one ufunc pass instead of an erf polynomial (3x cheaper); it moves
    # similarities by ~1e-4, well below the int8 weights' ~1e-3.
    inner = x * (0.7978845608028654 * (1.0 + 0.044715 * x * x))
    out: np.ndarray = 0.5 * x * (1.0 + np.tanh(inner))
    return out


class MiniLMEmbedder:
    """Sync, CPU-bound and thread-safe (no mutable state after construction)."""

    dim = 384

    def __init__(
        self, weights: Path = DEFAULT_WEIGHTS, vocab: Path = DEFAULT_VOCAB, *, max_length: int = 256
    ) -> None:
        t = read_weights(weights)
        self.name = f"minilm-l6-v2:{'int8' if weights.suffix == '.npz' else 'fp32'}"
        self.tokenizer = WordPiece.from_file(vocab)
        self.max_length = max_length
        self._word = np.ascontiguousarray(t["embeddings.word_embeddings.weight"])
        self._pos = np.ascontiguousarray(t["embeddings.position_embeddings.weight"])
        self._type0 = t["embeddings.token_type_embeddings.weight"][0].copy()
        self._ln_g = t["embeddings.LayerNorm.weight"]
        self._ln_b = t["embeddings.LayerNorm.bias"]
        self._layers: list[_Layer] = []
        i = 0
        while f"encoder.layer.{i}.attention.self.query.weight" in t:
            p = f"encoder.layer.{i}."
            a = p + "attention."

            def w(name: str) -> np.ndarray:
                return np.ascontiguousarray(t[name + ".weight"].T)

            self._layers.append(
                _Layer(
                    qkv_w=np.ascontiguousarray(
                        np.concatenate(
                            [w(a + "self.query"), w(a + "self.key"), w(a + "self.value")], axis=1
                        )
                    ),
                    qkv_b=np.concatenate(
                        [t[a + "self.query.bias"], t[a + "self.key.bias"], t[a + "self.value.bias"]]
                    ),
                    out_w=w(a + "output.dense"),
                    out_b=t[a + "output.dense.bias"],
                    ln1_g=t[a + "output.LayerNorm.weight"],
                    ln1_b=t[a + "output.LayerNorm.bias"],
                    up_w=w(p + "intermediate.dense"),
                    up_b=t[p + "intermediate.dense.bias"],
                    down_w=w(p + "output.dense"),
                    down_b=t[p + "output.dense.bias"],
                    ln2_g=t[p + "output.LayerNorm.weight"],
                    ln2_b=t[p + "output.LayerNorm.bias"],
                )
            )
            i += 1
        # a float32 scalar: a float64 one would silently promote every later matmul to float64
        self._scale = np.float32(1.0 / np.sqrt(self.dim // _HEADS))

    def _encode_batch(self, ids: list[list[int]]) -> np.ndarray:
        n = len(ids)
        seq = max(len(i) for i in ids)
        tok = np.zeros((n, seq), dtype=np.int64)
        mask = np.zeros((n, seq), dtype=np.float32)
        for row, seq_ids in enumerate(ids):
            tok[row, : len(seq_ids)] = seq_ids
            mask[row, : len(seq_ids)] = 1.0
        h = self._word[tok] + self._pos[:seq] + self._type0
        x = _layer_norm(h, self._ln_g, self._ln_b)
        d = self.dim
        hd = d // _HEADS
        bias = ((1.0 - mask) * -1e9)[:, None, None, :]  # padded keys get no attention
        for layer in self._layers:
            qkv = x @ layer.qkv_w + layer.qkv_b
            q = qkv[..., :d].reshape(n, seq, _HEADS, hd).transpose(0, 2, 1, 3)
            k = qkv[..., d : 2 * d].reshape(n, seq, _HEADS, hd).transpose(0, 2, 3, 1)
            v = qkv[..., 2 * d :].reshape(n, seq, _HEADS, hd).transpose(0, 2, 1, 3)
            scores = (q @ k) * self._scale + bias
            scores -= scores.max(axis=-1, keepdims=True)
            np.exp(scores, out=scores)
            scores /= scores.sum(axis=-1, keepdims=True)
            ctx = (scores @ v).transpose(0, 2, 1, 3).reshape(n, seq, d)
            x = _layer_norm(x + ctx @ layer.out_w + layer.out_b, layer.ln1_g, layer.ln1_b)
            up = _gelu(x @ layer.up_w + layer.up_b)
            x = _layer_norm(x + up @ layer.down_w + layer.down_b, layer.ln2_g, layer.ln2_b)
        pooled = (x * mask[..., None]).sum(axis=1) / np.maximum(mask.sum(axis=1), 1e-9)[:, None]
        norms = np.linalg.norm(pooled, axis=1, keepdims=True)
        out: np.ndarray = (pooled / np.maximum(norms, 1e-12)).astype(np.float32)
        return out

    def embed_sync(self, texts: Sequence[str], *, batch_size: int = 32) -> np.ndarray:
        """L2-normalised float32 vectors, one row per text. Batches group similar lengths so
        padding stays small."""
        ids = [self.tokenizer.encode(t, max_length=self.max_length) for t in texts]
        if len(ids) == 1:
            return self._encode_batch(ids)
        order = sorted(range(len(ids)), key=lambda i: len(ids[i]))
        out = np.empty((len(ids), self.dim), dtype=np.float32)
        for start in range(0, len(order), batch_size):
            chunk = order[start : start + batch_size]
            out[chunk] = self._encode_batch([ids[i] for i in chunk])
        return out
