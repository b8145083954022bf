"""A small GLB reader for the head asset test: JSON chunk, dense and sparse float accessors."""

from __future__ import annotations

import json
import struct
from pathlib import Path

import numpy as np

_COMPONENTS = {5126: np.dtype("<f4"), 5123: np.dtype("<u2"), 5125: np.dtype("<u4")}
_WIDTH = {"SCALAR": 1, "VEC2": 2, "VEC3": 3}


def read_glb(path: Path) -> tuple[dict, bytes]:
    """(glTF JSON, binary chunk) of a GLB file; checks the header and chunk layout."""
    data = path.read_bytes()
    magic, version, length = struct.unpack_from("<4sII", data)
    assert (magic, version, length) == (b"glTF", 2, len(data))
    json_len, json_kind = struct.unpack_from("<I4s", data, 12)
    assert json_kind == b"JSON" and json_len % 4 == 0
    bin_at = 20 + json_len
    bin_len, bin_kind = struct.unpack_from("<I4s", data, bin_at)
    assert bin_kind == b"BIN\0" and bin_at + 8 + bin_len == len(data)
    return json.loads(data[20:bin_at]), data[bin_at + 8 :]


def _view(gltf: dict, blob: bytes, index: int, dtype: np.dtype, count: int) -> np.ndarray:
    view = gltf["bufferViews"][index]
    assert view["byteOffset"] % 4 == 0 and view["byteOffset"] + view["byteLength"] <= len(blob)
    return np.frombuffer(blob, dtype, count, view["byteOffset"])


def accessor(gltf: dict, blob: bytes, index: int) -> np.ndarray:
    """An accessor's values, (count, width); sparse accessors are expanded over zeros."""
    spec = gltf["accessors"][index]
    width, dtype = _WIDTH[spec["type"]], _COMPONENTS[spec["componentType"]]
    if "bufferView" in spec:
        values = _view(gltf, blob, spec["bufferView"], dtype, spec["count"] * width).reshape(
            -1, width
        )
    else:
        values = np.zeros((spec["count"], width), dtype)
    sparse = spec.get("sparse")
    if sparse:
        n = sparse["count"]
        idx = _view(
            gltf,
            blob,
            sparse["indices"]["bufferView"],
            _COMPONENTS[sparse["indices"]["componentType"]],
            n,
        )
        values = values.copy()
        values[idx] = _view(gltf, blob, sparse["values"]["bufferView"], dtype, n * width).reshape(
            n, width
        )
    return values
