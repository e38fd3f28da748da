"""Reading BERT weights without torch: safetensors (fp32, as published) and our int8 `.npz`.

The shipped file is all-MiniLM-L6-v2 with every matrix quantised to int8 per output row
(symmetric, one fp32 scale per row); vectors (biases, LayerNorm) stay fp32. That halves the
size of fp16 (22 MB) while moving cosine similarities by about 1e-3. `python -m
headway.cache.embed.weights model.safetensors out.npz` rebuilds it from the published weights.
"""

from __future__ import annotations

import struct
import sys
from pathlib import Path

import numpy as np
import orjson

_DTYPES = {"F32": np.float32, "F16": np.float16, "I64": np.int64, "BF16": None}


def read_safetensors(path: Path) -> dict[str, np.ndarray]:
    raw = path.read_bytes()
    (header_len,) = struct.unpack("<Q", raw[:8])
    header = orjson.loads(raw[8 : 8 + header_len])
    base = 8 + header_len
    out: dict[str, np.ndarray] = {}
    for name, meta in header.items():
        if name == "__metadata__":
            continue
        dtype = _DTYPES.get(meta["dtype"])
        if dtype is None:
            raise ValueError(f"{path}: tensor {name} has unsupported dtype {meta['dtype']}")
        begin, end = meta["data_offsets"]
        arr = np.frombuffer(
            raw, dtype=dtype, count=(end - begin) // np.dtype(dtype).itemsize, offset=base + begin
        )
        out[name] = arr.reshape(meta["shape"]).astype(np.float32)
    return out


def quantise(tensors: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """int8 per row for every matrix, fp32 for the rest; the pooler is unused and dropped."""
    out: dict[str, np.ndarray] = {}
    for name, arr in tensors.items():
        if name.startswith("pooler.") or name.endswith("position_ids"):
            continue
        if arr.ndim == 2:
            scale = np.abs(arr).max(axis=1) / 127.0
            scale[scale == 0] = 1.0
            out[name + ".q"] = np.round(arr / scale[:, None]).astype(np.int8)
            out[name + ".s"] = scale.astype(np.float32)
        else:
            out[name] = arr.astype(np.float32)
    return out


def read_npz(path: Path) -> dict[str, np.ndarray]:
    out: dict[str, np.ndarray] = {}
    with np.load(path) as data:
        for key in data.files:
            if key.endswith(".s"):
                continue
            if key.endswith(".q"):
                name = key[:-2]
                out[name] = data[key].astype(np.float32) * data[name + ".s"][:, None]
            else:
                out[key] = data[key]
    return out


def read_weights(path: Path) -> dict[str, np.ndarray]:
    if path.suffix == ".safetensors":
        return read_safetensors(path)
    return read_npz(path)


def main(argv: list[str]) -> int:
    if len(argv) != 2:
        print("usage: python -m headway.cache.embed.weights model.safetensors out.npz")
        return 2
    tensors = quantise(read_safetensors(Path(argv[0])))
    np.savez_compressed(argv[1], **tensors)  # type: ignore[arg-type]
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
