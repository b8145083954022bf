"""Dataset shards: a compact, documented, resumable on-disk format.

A dataset is a directory (under ``kaocap.models.cache_dir() / "datasets"`` unless the user
names one) holding ``manifest.json`` and ``<split>/<unit>.npz`` shards. One shard holds the
samples of one *unit of work* (one clip, one photo folder, one block of renders) so a build
that stops can resume by skipping units whose shard exists; shards are written to a temporary
name and renamed, so a shard that exists is complete.

Schema of a shard (N samples; every array has N rows; ``S`` = crop size in px):

==================  ==============  =======================================================
key                 shape, dtype    meaning
==================  ==============  =======================================================
jpeg                (B,) uint8      all crops, JPEG-encoded RGB, concatenated
jpeg_offsets        (N+1,) int64    crop i is ``jpeg[jpeg_offsets[i]:jpeg_offsets[i+1]]``
roi                 (N, 5) float32  the crop's ROI in the source image: cx, cy, w, h px,
                                    rotation rad (kaocap.types.Roi); the crop is
                                    ``Roi.crop_matrix(S)`` applied to the source image
jitter              (N,) bool       True for shifted/scaled/rotated variants of a base ROI
blendshapes         (N, 52) f32     0..1, kaocap.BLENDSHAPES order; NaN where unknown
blendshapes_valid   (N, 52) bool    False where the label source has no value
rotation            (N, 3, 3) f32   head rotation, kaocap camera frame (types.py)
translation_cm      (N, 3) f32      head position, cm, camera frame
landmarks           (N, 478, 3) f32 landmarks in crop px (z in the same scale); NaN unknown
visibility          (N, 478) f32    1 visible, 0 occluded/back-facing, NaN unknown
presence            (N,) f32        face presence (teacher score, or 1 for renders)
person              (N,) str        person id; splits are made by person only
source              (N,) str        clip / photo / render-block the sample came from
frame               (N,) int32      frame index in the source (-1 for photos)
kind                (N,) str        "teacher" (real, MediaPipe labels), "render" (exact),
                                    "take" (real, ARKit labels from Live Link Face)
teacher_*           as above        for renders: the MediaPipe teacher's outputs beside the
                                    exact labels (blendshapes, rotation, landmarks, presence)
==================  ==============  =======================================================
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import cv2
import numpy as np
from numpy.typing import NDArray

SCHEMA_VERSION = 1
SPLITS = ("train", "val", "test")
#: Keys every shard has; extra keys (teacher_*) are allowed.
REQUIRED_KEYS = ("roi", "jitter", "blendshapes", "blendshapes_valid", "rotation", "translation_cm",
                 "landmarks", "visibility", "presence", "person", "source", "frame", "kind")  # fmt: skip


def split_of(person: str, seed: int, fractions: tuple[float, float, float] = (0.8, 0.1, 0.1)) -> str:
    """The split of a person: a pure function of (person, seed), so no person is ever in two
    splits, whatever the order or the machine the build runs on."""
    digest = hashlib.sha256(f"{seed}:{person}".encode()).digest()
    u = int.from_bytes(digest[:8], "big") / 2**64
    edges = np.cumsum(fractions)
    return SPLITS[int(np.searchsorted(edges, u, side="right"))] if u < edges[-1] else SPLITS[-1]


def encode_jpegs(crops: NDArray[np.uint8], quality: int = 92) -> tuple[NDArray[np.uint8], NDArray[np.int64]]:
    """(N, S, S, 3) RGB crops -> concatenated JPEG bytes and (N+1,) offsets."""
    blobs = []
    for crop in crops:
        ok, buf = cv2.imencode(".jpg", cv2.cvtColor(crop, cv2.COLOR_RGB2BGR), [cv2.IMWRITE_JPEG_QUALITY, quality])
        if not ok:
            raise ValueError("JPEG encoding failed")
        blobs.append(buf.reshape(-1))
    offsets = np.zeros(len(blobs) + 1, np.int64)
    offsets[1:] = np.cumsum([len(b) for b in blobs])
    data = np.concatenate(blobs) if blobs else np.zeros(0, np.uint8)
    return data, offsets


def decode_jpeg(data: NDArray[np.uint8], offsets: NDArray[np.int64], i: int) -> NDArray[np.uint8]:
    """Crop ``i`` as (S, S, 3) RGB uint8."""
    bgr = cv2.imdecode(data[offsets[i] : offsets[i + 1]], cv2.IMREAD_COLOR)
    return cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)


def write_shard(path: Path, crops: NDArray[np.uint8], labels: Mapping[str, NDArray], *, quality: int = 92) -> None:
    """Write one shard atomically. ``labels`` holds every REQUIRED_KEYS array (N rows)."""
    missing = [k for k in REQUIRED_KEYS if k not in labels]
    if missing:
        raise ValueError(f"shard labels miss {missing}")
    n = len(crops)
    bad = [k for k, v in labels.items() if len(v) != n]
    if bad:
        raise ValueError(f"label arrays {bad} do not have {n} rows")
    data, offsets = encode_jpegs(crops, quality)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + f".tmp{os.getpid()}.npz")
    arrays = {k: np.asarray(v) for k, v in labels.items()}
    np.savez(tmp, jpeg=data, jpeg_offsets=offsets, **arrays)
    tmp.replace(path)


@dataclass(frozen=True)
class Shard:
    """A loaded shard: ``len()``, ``crop(i)``, and label arrays by key (``shard["rotation"]``)."""

    path: Path
    arrays: dict[str, NDArray]

    def __len__(self) -> int:
        return len(self.arrays["jpeg_offsets"]) - 1

    def __getitem__(self, key: str) -> NDArray:
        return self.arrays[key]

    def keys(self) -> list[str]:
        return [k for k in self.arrays if k not in ("jpeg", "jpeg_offsets")]

    def crop(self, i: int) -> NDArray[np.uint8]:
        return decode_jpeg(self.arrays["jpeg"], self.arrays["jpeg_offsets"], i)

    def crops(self) -> NDArray[np.uint8]:
        return np.stack([self.crop(i) for i in range(len(self))]) if len(self) else np.zeros((0, 1, 1, 3), np.uint8)


def read_shard(path: Path) -> Shard:
    with np.load(path, allow_pickle=False) as data:
        return Shard(Path(path), {k: data[k] for k in data.files})


def iter_shards(root: Path, split: str | None = None) -> Iterator[Shard]:
    """Every shard of a dataset directory (one split or all), in a stable order."""
    splits = [split] if split else list(SPLITS)
    for name in splits:
        for path in sorted((Path(root) / name).glob("*.npz")):
            if ".tmp" not in path.name:
                yield read_shard(path)


def unit_name(kind: str, source: str, params: Mapping[str, Any]) -> str:
    """A stable file name for one unit of work: readable prefix + hash of what defines it."""
    key = json.dumps({"kind": kind, "source": source, "params": params}, sort_keys=True)
    stem = "".join(c if c.isalnum() else "_" for c in Path(source).stem)[:40]
    return f"{kind}-{stem}-{hashlib.sha1(key.encode()).hexdigest()[:12]}.npz"


def write_manifest(root: Path, manifest: Mapping[str, Any]) -> None:
    root.mkdir(parents=True, exist_ok=True)
    tmp = root / "manifest.json.tmp"
    tmp.write_text(json.dumps({"schema_version": SCHEMA_VERSION, **manifest}, indent=1, sort_keys=True))
    tmp.replace(root / "manifest.json")


def read_manifest(root: Path) -> dict[str, Any]:
    return json.loads((Path(root) / "manifest.json").read_text())
