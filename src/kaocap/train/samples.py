"""Samples from dataset shards (kaocap.data.shards), held in memory as parallel numpy arrays.

This module is numpy only (``kaocap eval`` uses it without torch). Conventions:

* crops: (N, S, S, 3) uint8 RGB, the shard crops area-resized to ``image_size``;
* landmarks: crop-normalised, (N, 478, 3): x, y in 0..1 across the crop, z / crop size;
* rotation_crop: (N, 3, 3) head rotation as the upright crop sees it,
  ``Rz(roi rotation) @ rotation`` (kaocap.blendshapes.features.camera_to_crop_rotation);
* domain: "real" for kinds "teacher" and "take", "render" for "render".

>>> s = load_samples([Path("~/.cache/kaocap/datasets/real")], "train")   # doctest: +SKIP
>>> s.blendshapes.shape, s.domain[:3]                                     # doctest: +SKIP
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, fields
from pathlib import Path

import cv2
import numpy as np
from numpy.typing import NDArray

from kaocap.blendshapes.features import camera_to_crop_rotation
from kaocap.constants import BLENDSHAPES, NUM_LANDMARKS
from kaocap.data import shards
from kaocap.errors import ConfigError, InputError

log = logging.getLogger(__name__)

#: Shard ``kind`` -> domain used by ``--mix``.
DOMAINS: dict[str, str] = {"teacher": "real", "take": "real", "render": "render"}
#: MediaPipe points of the lower inner lip that the renderer's ICT correspondence puts on the
#: upper lip (kaocap.data._render.build_table, a known defect): their exact render labels are
#: wrong once the mouth opens, so they are left out (NaN) of the render landmark targets.
RENDER_BAD_LANDMARKS = (87, 88, 95, 178, 317, 318, 324, 402)


@dataclass(frozen=True, slots=True)
class SampleSet:
    """N samples; every array has N rows (shapes in the module docstring).

    blendshapes (N, 52) 0..1 with 0 where ``valid`` is False; valid (N, 52) bool;
    translation_cm (N, 3) camera frame; mesh (N, 478, 3) the landmarks a runtime would see
    (the teacher's on renders when the shard has them), NaN where unknown; landmarks the exact
    ones (aux target); roi (N, 5) cx cy w h px, rotation rad; teacher_blendshapes (N, 52) and
    teacher_rotation_crop (N, 3, 3): MediaPipe's outputs where the shard has them, else NaN.
    """

    crops: NDArray[np.uint8]
    blendshapes: NDArray[np.float32]
    valid: NDArray[np.bool_]
    rotation_crop: NDArray[np.float32]
    translation_cm: NDArray[np.float32]
    mesh: NDArray[np.float32]
    landmarks: NDArray[np.float32]
    roi: NDArray[np.float32]
    teacher_blendshapes: NDArray[np.float32]
    teacher_rotation_crop: NDArray[np.float32]
    kind: NDArray[np.str_]
    domain: NDArray[np.str_]
    person: NDArray[np.str_]

    def __post_init__(self) -> None:
        n = len(self.blendshapes)
        shapes = {"blendshapes": (n, len(BLENDSHAPES)), "valid": (n, len(BLENDSHAPES)),
                  "rotation_crop": (n, 3, 3), "translation_cm": (n, 3), "mesh": (n, NUM_LANDMARKS, 3),
                  "landmarks": (n, NUM_LANDMARKS, 3), "roi": (n, 5), "kind": (n,), "domain": (n,),
                  "person": (n,)}  # fmt: skip
        for name, shape in shapes.items():
            if getattr(self, name).shape != shape:
                raise ValueError(f"{name} must be {shape}, got {getattr(self, name).shape}")
        if len(self.crops) not in (0, n):
            raise ValueError(f"crops must have {n} rows or none, got {len(self.crops)}")

    def __len__(self) -> int:
        return len(self.blendshapes)

    def subset(self, index: NDArray) -> SampleSet:
        """The samples at ``index`` (bool mask or integer indices)."""
        values = {}
        for f in fields(self):
            arr = getattr(self, f.name)
            values[f.name] = arr if (f.name == "crops" and len(arr) == 0) else arr[index]
        return SampleSet(**values)

    def counts(self) -> dict[str, int]:
        """Samples per kind."""
        kinds, n = np.unique(self.kind, return_counts=True)
        return {str(k): int(c) for k, c in zip(kinds, n)}

    def mesh_ok(self) -> NDArray[np.bool_]:
        """(N,) True where the runtime-like mesh is fully known."""
        return np.isfinite(self.mesh).all(axis=(1, 2))


def _crops(shard: shards.Shard, size: int) -> NDArray[np.uint8]:
    out = np.empty((len(shard), size, size, 3), np.uint8)
    for i in range(len(shard)):
        crop = shard.crop(i)
        out[i] = crop if crop.shape[0] == size else cv2.resize(crop, (size, size), interpolation=cv2.INTER_AREA)
    return out


def _from_shard(shard: shards.Shard, image_size: int, with_crops: bool) -> dict[str, NDArray]:
    n, keys = len(shard), set(shard.keys())
    side = float(shard.crop(0).shape[0]) if n else 1.0
    roi = shard["roi"].astype(np.float32)
    nan52 = np.full((n, len(BLENDSHAPES)), np.nan, np.float32)
    label_valid = shard["blendshapes_valid"].astype(bool) & np.isfinite(shard["blendshapes"])
    exact = shard["landmarks"].astype(np.float32) / side
    exact[(shard["kind"] == "render")[:, None] & np.isin(np.arange(NUM_LANDMARKS), RENDER_BAD_LANDMARKS)] = np.nan
    has_teacher = "teacher_landmarks" in keys
    mesh = shard["teacher_landmarks"].astype(np.float32) / side if has_teacher else exact
    teacher_rot = (camera_to_crop_rotation(shard["teacher_rotation"], roi[:, 4]) if "teacher_rotation" in keys
                   else np.full((n, 3, 3), np.nan))  # fmt: skip
    return {
        "crops": _crops(shard, image_size) if with_crops else np.zeros((n, 0, 0, 3), np.uint8),
        "blendshapes": np.where(label_valid, shard["blendshapes"], 0.0).astype(np.float32),
        "valid": label_valid,
        "rotation_crop": camera_to_crop_rotation(shard["rotation"], roi[:, 4]).astype(np.float32),
        "translation_cm": shard["translation_cm"].astype(np.float32),
        "mesh": mesh,
        "landmarks": exact,
        "roi": roi,
        "teacher_blendshapes": shard["teacher_blendshapes"].astype(np.float32) if "teacher_blendshapes" in keys else nan52,
        "teacher_rotation_crop": teacher_rot.astype(np.float32),
        "kind": shard["kind"].astype(str),
        "domain": np.array([DOMAINS.get(str(k), str(k)) for k in shard["kind"]], dtype=str),
        "person": shard["person"].astype(str),
    }


def load_samples(roots: Iterable[Path], split: str, *, image_size: int = 128, with_crops: bool = True,
                 kinds: Iterable[str] | None = None) -> SampleSet:  # fmt: skip
    """Every sample of ``split`` ("train", "val", "test") in the dataset directories ``roots``.

    Raises InputError when a root is missing or holds no shard of that split.
    """
    if split not in shards.SPLITS:
        raise ConfigError(f"split must be one of {', '.join(shards.SPLITS)}, got {split!r}")
    parts: list[dict[str, NDArray]] = []
    for root in roots:
        root = Path(root).expanduser()
        if not root.is_dir():
            raise InputError(f"dataset directory not found: {root}")
        parts += [_from_shard(s, image_size, with_crops) for s in shards.iter_shards(root, split) if len(s)]
    if not parts:
        raise InputError(f"no {split} shards in {', '.join(str(r) for r in roots)}")
    merged = {k: np.concatenate([p[k] for p in parts]) for k in parts[0]}
    samples = SampleSet(**merged)
    if kinds is not None:
        samples = samples.subset(np.isin(samples.kind, list(kinds)))
    log.info("%s: %d samples %s", split, len(samples), samples.counts())
    return samples


def parse_mix(text: str | None) -> dict[str, float] | None:
    """``"real:0.5,render:0.5"`` -> {"real": 0.5, "render": 0.5} (weights renormalised)."""
    if not text:
        return None
    mix: dict[str, float] = {}
    for part in text.split(","):
        name, sep, value = part.partition(":")
        name = name.strip()
        if not sep or name not in set(DOMAINS.values()):
            raise ConfigError(f"bad --mix entry {part!r}: write domain:weight with domain in real, render")
        try:
            mix[name] = float(value)
        except ValueError:
            raise ConfigError(f"bad --mix weight in {part!r}") from None
        if mix[name] < 0:
            raise ConfigError(f"--mix weights must be >= 0, got {part!r}")
    total = sum(mix.values())
    if total <= 0:
        raise ConfigError("--mix weights sum to 0")
    return {k: v / total for k, v in mix.items()}


def sample_weights(domain: NDArray[np.str_], mix: Mapping[str, float] | None) -> NDArray[np.float64]:
    """(N,) sampling probabilities so each domain gets its ``mix`` share (None: uniform).

    Domains named in the mix but absent from the data are dropped and the rest renormalised.
    """
    n = len(domain)
    if mix is None:
        return np.full(n, 1.0 / n)
    present = {d: w for d, w in mix.items() if w > 0 and np.any(domain == d)}
    missing = sorted(d for d, w in mix.items() if w > 0 and d not in present)
    if missing:
        log.warning("--mix names %s but the data has no such samples; using %s", missing, sorted(present))
    if not present:
        raise ConfigError(f"--mix {dict(mix)} selects no sample of the data")
    total = sum(present.values())
    w = np.zeros(n)
    for d, share in present.items():
        member = domain == d
        w[member] = share / total / member.sum()
    return w
