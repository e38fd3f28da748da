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


# Column block width of every weight matrix. A query is ~15 rows: on a whole (384, 1536) matrix
# OpenBLAS (which packs the matrix on every call) ran at ~35 GFLOPS on one core here, on blocks of
# 64-192 columns at ~60 (the forward pass's products: 9.7 -> 7.3 ms under the same load; 384
# columns gained little). Batches of hundreds of rows cost the same either way (measured).
_BLOCK = 192


class _Dense:
    """x @ w + b with w stored as contiguous column blocks (see _BLOCK)."""

    __slots__ = ("bias", "blocks", "width")

    def __init__(self, w: np.ndarray, b: np.ndarray) -> None:
        self.width = w.shape[1]
        self.blocks = [_f32(w[:, j : j + _BLOCK]) for j in range(0, self.width, _BLOCK)]
        self.bias = _f32(b)

    def __call__(self, x: np.ndarray) -> np.ndarray:
        out = np.empty((x.shape[0], self.width), dtype=np.float32)
        j = 0
        for block in self.blocks:
            np.matmul(x, block, out=out[:, j : j + block.shape[1]])
            j += block.shape[1]
        out += self.bias
        return out


@dataclass(slots=True)
class _Layer:
    qkv: _Dense  # (384, 1152): query, key, value fused into one product; query pre-scaled
    out: _Dense
    ln1_g: np.ndarray
    ln1_b: np.ndarray
    up: _Dense
    down: _Dense  # pre-multiplied by GELU's 0.5
    ln2_g: np.ndarray
    ln2_b: np.ndarray


def _f32(a: np.ndarray) -> np.ndarray:
    """Contiguous float32, made once at load: dequantised int8 never reaches a query."""
    return np.ascontiguousarray(a, dtype=np.float32)


def _layer_norm_(x: np.ndarray, g: np.ndarray, b: np.ndarray) -> np.ndarray:
    """LayerNorm over the last axis of a 2-D array, in place: no temporaries the size of x."""
    x -= np.add.reduce(x, axis=1, keepdims=True) * (1.0 / x.shape[1])
    var = np.einsum("ij,ij->i", x, x)
    var *= 1.0 / x.shape[1]
    var += _EPS
    np.sqrt(var, out=var)
    x /= var[:, None]
    x *= g
    x += b
    return x


def _gelu_(x: np.ndarray) -> np.ndarray:
    """x * (1 + tanh(...)) in place: the tanh form of GELU without its factor 0.5, which is
    folded into the next layer's weights (exact: a power of two).

    One ufunc pass instead of an erf polynomial (3x cheaper); it moves similarities by ~1e-4,
    well below the int8 weights' ~1e-3."""
    t = x * x
    t *= 0.7978845608028654 * 0.044715
    t += 0.7978845608028654
    t *= x
    np.tanh(t, out=t)
    t += 1.0
    x *= t
    return x


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
        self._word = np.ascontiguousarray(t["embeddings.word_embeddings.weight"], np.float32)
        # position + token type 0 added once here rather than per query
        self._pos_type = np.ascontiguousarray(
            t["embeddings.position_embeddings.weight"]
            + t["embeddings.token_type_embeddings.weight"][0],
            np.float32,
        )
        self._ln_g = _f32(t["embeddings.LayerNorm.weight"])
        self._ln_b = _f32(t["embeddings.LayerNorm.bias"])
        # Attention's 1/sqrt(head_dim) goes into the query projection, GELU's 0.5 into the down
        # projection: two elementwise passes per layer fewer, same outputs up to float rounding.
        scale = 1.0 / float(np.sqrt(self.dim // _HEADS))
        self._layers: list[_Layer] = []
        i = 0
        while f"encoder.layer.{i}.attention.self.query.weight" in t:
            p = f"encoder.layer.{i}."
            a = p + "attention."

            def w(name: str) -> np.ndarray:
                # (in, out) so that rows of activations multiply from the left
                return t[name + ".weight"].T

            self._layers.append(
                _Layer(
                    qkv=_Dense(
                        np.concatenate(
                            [w(a + "self.query") * scale, w(a + "self.key"), w(a + "self.value")],
                            axis=1,
                        ),
                        np.concatenate(
                            [
                                t[a + "self.query.bias"] * scale,
                                t[a + "self.key.bias"],
                                t[a + "self.value.bias"],
                            ]
                        ),
                    ),
                    out=_Dense(w(a + "output.dense"), t[a + "output.dense.bias"]),
                    ln1_g=_f32(t[a + "output.LayerNorm.weight"]),
                    ln1_b=_f32(t[a + "output.LayerNorm.bias"]),
                    up=_Dense(w(p + "intermediate.dense"), t[p + "intermediate.dense.bias"]),
                    down=_Dense(w(p + "output.dense") * 0.5, t[p + "output.dense.bias"]),
                    ln2_g=_f32(t[p + "output.LayerNorm.weight"]),
                    ln2_b=_f32(t[p + "output.LayerNorm.bias"]),
                )
            )
            i += 1

    def _encode_batch(self, ids: list[list[int]]) -> np.ndarray:
        n = len(ids)
        seq = max(len(i) for i in ids)  # trimmed to the longest text: no fixed-length padding
        tok = np.zeros((n, seq), dtype=np.intp)
        lengths = np.array([len(i) for i in ids], dtype=np.float32)
        for row, seq_ids in enumerate(ids):
            tok[row, : len(seq_ids)] = seq_ids
        # Token rows are flattened to (n * seq, 384): every linear layer is then one 2-D product
        # (one BLAS call) instead of one per text.
        x = self._word[tok.reshape(-1)]
        x.reshape(n, seq, -1)[...] += self._pos_type[:seq]
        _layer_norm_(x, self._ln_g, self._ln_b)
        bias = None
        if lengths.min() < seq:  # padded keys get no attention; a lone text has no padding
            bias = np.where(np.arange(seq)[None, :] < lengths[:, None], 0.0, -1e9)
            bias = bias.astype(np.float32)[:, None, None, :]
        for layer in self._layers:
            x = self._layer(x, layer, n, seq, bias)
        pooled = x.reshape(n, seq, -1)
        vec: np.ndarray
        if bias is None:
            vec = np.add.reduce(pooled, axis=1)
        else:
            mask = (np.arange(seq)[None, :] < lengths[:, None]).astype(np.float32)
            vec = np.einsum("ns,nsd->nd", mask, pooled)
        # mean pooling's division by the length cancels in the L2 normalisation
        vec /= np.maximum(np.sqrt(np.einsum("nd,nd->n", vec, vec)), _EPS)[:, None]
        return vec

    def _layer(
        self, x: np.ndarray, layer: _Layer, n: int, seq: int, bias: np.ndarray | None
    ) -> np.ndarray:
        d = self.dim
        qkv = layer.qkv(x)
        # (n, seq, 3, heads, hd) views; the heads are batched in one stacked matmul
        parts = qkv.reshape(n, seq, 3, _HEADS, d // _HEADS)
        q = parts[:, :, 0].transpose(0, 2, 1, 3)
        k = parts[:, :, 1].transpose(0, 2, 3, 1)
        v = parts[:, :, 2].transpose(0, 2, 1, 3)
        scores = q @ k  # already scaled: 1/sqrt(hd) is folded into the query weights
        if bias is not None:
            scores += bias
        scores -= scores.max(axis=-1, keepdims=True)
        np.exp(scores, out=scores)
        scores /= np.add.reduce(scores, axis=-1, keepdims=True)
        ctx = (scores @ v).transpose(0, 2, 1, 3).reshape(n * seq, d)
        h = layer.out(ctx)
        h += x
        _layer_norm_(h, layer.ln1_g, layer.ln1_b)
        out = layer.down(_gelu_(layer.up(h)))
        out += h
        return _layer_norm_(out, layer.ln2_g, layer.ln2_b)

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
