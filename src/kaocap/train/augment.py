"""Crop augmentations (numpy/OpenCV), with the labels they change kept consistent.

A horizontal flip is the mirrored face: each ...Left blendshape swaps with its ...Right
partner, each landmark with its mirror partner (x -> 1 - x), the head rotation becomes
``F @ R @ F`` with ``F = diag(-1, 1, 1)`` (yaw and roll change sign, pitch stays) and the
translation's x changes sign.

A small affine is a crop of the crop through a perturbed :class:`kaocap.types.Roi` (shift,
scale, in-plane rotation ``delta``), so the same conventions hold as for the data: landmarks go
through ``Roi.crop_matrix`` and the head rotation as the crop sees it becomes
``Rz(delta) @ rotation_crop``. Colour jitter changes no label.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache

import cv2
import numpy as np
from numpy.typing import NDArray

from kaocap.blendshapes.features import rotation_z
from kaocap.constants import BLENDSHAPE_MIRROR, IRIS_MIRROR
from kaocap.types import Roi


@dataclass(frozen=True)
class AugmentConfig:
    """Ranges (uniform, +-): shift in crop fractions, scale factor, rotation in degrees;
    brightness/contrast/saturation as relative factors, gain per RGB channel, noise in 0..1
    units (std); grey: probability of a greyscale crop; flip: probability of the mirrored face
    (0 keeps the random draws, so the weights, of a run made before flips existed)."""

    shift: float = 0.04
    scale: float = 0.08
    rotation_deg: float = 10.0
    brightness: float = 0.25
    contrast: float = 0.25
    saturation: float = 0.3
    gain: float = 0.06
    noise: float = 0.015
    grey: float = 0.05
    flip: float = 0.0


@cache
def landmark_mirror() -> NDArray[np.intp]:
    """(478,) the mirror partner of each landmark: the canonical face's for the 468 mesh points
    (kaocap.pose.process.mirror_partners, a permutation and its own inverse), then
    :data:`kaocap.constants.IRIS_MIRROR`."""
    from kaocap.pose.process import load_face_geometry, mirror_partners

    return np.concatenate([mirror_partners(load_face_geometry().canonical), np.asarray(IRIS_MIRROR)])


def flip_batch(crops: NDArray[np.uint8], labels: dict[str, NDArray], flip: NDArray[np.bool_]) -> NDArray[np.uint8]:
    """Mirror the crops where ``flip`` (N,) is True, and their ``labels`` (the arrays of
    kaocap.train.batches.label_arrays, changed in place) alike. Returns the crops (a copy)."""
    out = crops.copy()
    rows = np.flatnonzero(flip)
    if not len(rows):
        return out
    out[rows] = crops[rows, :, ::-1]
    shapes = list(BLENDSHAPE_MIRROR)
    labels["blendshapes"][rows] = labels["blendshapes"][rows][:, shapes]
    labels["valid"][rows] = labels["valid"][rows][:, shapes]
    lm = labels["landmarks"][rows][:, landmark_mirror()]
    lm[..., 0] = 1.0 - lm[..., 0]
    labels["landmarks"][rows] = lm
    f = np.diag([-1.0, 1.0, 1.0]).astype(np.float32)
    labels["rotation_crop"][rows] = f @ labels["rotation_crop"][rows] @ f
    labels["translation_cm"][rows, 0] *= -1.0
    return out


def affine_batch(crops: NDArray[np.uint8], landmarks: NDArray[np.float32], rotation_crop: NDArray[np.float32],
                 rng: np.random.Generator, cfg: AugmentConfig) -> tuple[NDArray, NDArray, NDArray]:  # fmt: skip
    """Random small affine per crop.

    crops (N, S, S, 3) uint8; landmarks (N, 478, 3) crop-normalised (NaN allowed);
    rotation_crop (N, 3, 3). Returns the three transformed alike.
    """
    n, size = len(crops), crops.shape[1]
    out = np.empty_like(crops)
    shift = rng.uniform(-cfg.shift, cfg.shift, (n, 2)) * size
    scale = 1.0 + rng.uniform(-cfg.scale, cfg.scale, n)
    delta = np.radians(rng.uniform(-cfg.rotation_deg, cfg.rotation_deg, n))
    lm = landmarks.astype(np.float64).copy()
    for i in range(n):
        roi = Roi((size / 2 + shift[i]).astype(np.float32), np.full(2, size * scale[i], np.float32), float(delta[i]))
        m = roi.crop_matrix(size)
        out[i] = cv2.warpAffine(crops[i], m, (size, size), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
        xy = lm[i, :, :2] * size
        lm[i, :, :2] = (xy @ m[:, :2].T + m[:, 2]) / size
        lm[i, :, 2] /= scale[i]
    rot = (rotation_z(delta) @ rotation_crop.astype(np.float64)).astype(np.float32)
    return out, lm.astype(np.float32), rot


def colour_batch(images: NDArray[np.float32], rng: np.random.Generator, cfg: AugmentConfig) -> NDArray[np.float32]:
    """Colour jitter on (N, S, S, 3) float32 RGB 0..1 images, in place (returned, clipped):
    brightness x per-channel gain, saturation, contrast about the image mean, grey noise."""
    n = len(images)
    x = images
    f32 = np.float32
    x *= (rng.uniform(1 - cfg.brightness, 1 + cfg.brightness, (n, 1, 1, 1))
          * rng.uniform(1 - cfg.gain, 1 + cfg.gain, (n, 1, 1, 3))).astype(f32)  # fmt: skip
    grey = x.mean(axis=3, keepdims=True)
    sat = rng.uniform(1 - cfg.saturation, 1 + cfg.saturation, (n, 1, 1, 1)).astype(f32)
    sat[rng.random(n) < cfg.grey] = 0.0
    x *= sat
    x += grey * (1 - sat)  # saturation keeps each pixel's channel mean, so grey's mean is x's
    contrast = rng.uniform(1 - cfg.contrast, 1 + cfg.contrast, (n, 1, 1, 1)).astype(f32)
    x *= contrast
    x += grey.mean(axis=(1, 2, 3), keepdims=True) * (1 - contrast)
    if cfg.noise > 0:
        x += rng.standard_normal((*x.shape[:3], 1), dtype=f32) * f32(cfg.noise)
    return np.clip(x, 0.0, 1.0, out=x)
