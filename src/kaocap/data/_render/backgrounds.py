"""Backgrounds: face-free regions of real photos, or procedural ones.

:meth:`BackgroundBank.from_folder` takes random square crops of the photos under a folder
(``../shared/data/images`` by default) and keeps those that (1) do not overlap any face that
kaocap's detector finds in the whole photo (boxes enlarged 1.8x, so hair and chins stay out)
and (2) in which the detector, run on the crop itself (at its own and at the bank's resolution, at a
low threshold), finds no face.
"""

from __future__ import annotations

import fnmatch
import logging
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
from numpy.typing import NDArray

from kaocap.errors import InputError

logger = logging.getLogger(__name__)

DEFAULT_IMAGES = Path("../shared/data/images")
_SUFFIXES = (".jpg", ".jpeg", ".png")
_FACE_BOX_SCALE = 1.8
_MIN_SIDE_PX = 64
#: Photos whose faces are painted over (CodeFormer's inpainting inputs) defeat the detector.
DEFAULT_EXCLUDE = ("*masked_faces*",)


def _detector(min_score: float):
    from kaocap import models
    from kaocap.config import DetectorConfig
    from kaocap.detect import FaceDetector
    from kaocap.runtime import open_session

    session = open_session(models.model_path("mediapipe_face_detector"), "litert")
    return FaceDetector(session, DetectorConfig(min_score=min_score))


def _grown(boxes: list[NDArray], scale: float) -> NDArray[np.float64]:
    """(N, 4) x0 y0 x1 y1 boxes scaled about their centres."""
    if not boxes:
        return np.zeros((0, 4))
    b = np.array(boxes, np.float64)
    centre, half = (b[:, :2] + b[:, 2:]) / 2, (b[:, 2:] - b[:, :2]) / 2 * scale
    return np.c_[centre - half, centre + half]


def _overlaps(box: tuple[int, int, int, int], faces: NDArray) -> bool:
    x0, y0, x1, y1 = box
    return bool(np.any((faces[:, 0] < x1) & (faces[:, 2] > x0) & (faces[:, 1] < y1) & (faces[:, 3] > y0)))


@dataclass
class BackgroundBank:
    """Face-free background photos. images: list of (size, size, 3) uint8 RGB crops."""

    images: list[NDArray[np.uint8]]

    def __len__(self) -> int:
        return len(self.images)

    @classmethod
    def from_folder(cls, root: str | Path = DEFAULT_IMAGES, *, count: int = 200, size: int = 256, seed: int = 0,
                    per_image: int = 3, min_score: float = 0.3, max_images: int | None = None,
                    exclude: tuple[str, ...] = DEFAULT_EXCLUDE) -> BackgroundBank:  # fmt: skip
        """Up to ``count`` face-free crops (module docstring), ``per_image`` at most per photo,
        from photos in a seeded random order (the same seed gives the same bank); paths matching
        an ``exclude`` glob are skipped.

        >>> bank = BackgroundBank.from_folder("../shared/data/images", count=50)  # doctest: +SKIP
        """
        files = sorted(p for p in Path(root).rglob("*") if p.suffix.lower() in _SUFFIXES
                       and not any(fnmatch.fnmatch(p.as_posix(), pattern) for pattern in exclude))  # fmt: skip
        if not files:
            raise InputError(f"no photos under {root}")
        rng = np.random.default_rng(seed)
        files = [files[i] for i in rng.permutation(len(files))][:max_images]
        detector, images = _detector(min_score), []
        for path in files:
            bgr = cv2.imread(str(path), cv2.IMREAD_COLOR)
            if bgr is None or min(bgr.shape[:2]) < _MIN_SIDE_PX:
                continue
            images += _crops(cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB), detector, rng, per_image, size)
            if len(images) >= count:
                break
        logger.info("background bank: %d face-free crops from %s", len(images[:count]), root)
        return cls(images[:count])

    def save(self, path: str | Path) -> None:
        np.savez_compressed(path, images=np.stack(self.images))

    @classmethod
    def load(cls, path: str | Path) -> BackgroundBank:
        with np.load(path) as data:
            return cls(list(data["images"]))

    def sample(self, rng: np.random.Generator, size: int) -> NDArray[np.uint8]:
        """(size, size, 3) uint8: a random part of a random crop, flipped, brightened, maybe
        defocused."""
        image = self.images[int(rng.integers(len(self.images)))]
        side = int(image.shape[0] * rng.uniform(0.5, 1.0))
        y, x = rng.integers(0, image.shape[0] - side + 1), rng.integers(0, image.shape[1] - side + 1)
        out = cv2.resize(image[y : y + side, x : x + side], (size, size), interpolation=cv2.INTER_LINEAR)
        if rng.random() < 0.5:
            out = out[:, ::-1]
        if rng.random() < 0.5:
            out = cv2.GaussianBlur(out, (0, 0), rng.uniform(0.5, 3.0))
        return np.clip(out * rng.uniform(0.6, 1.3), 0, 255).astype(np.uint8)


def _crops(image: NDArray[np.uint8], detector, rng: np.random.Generator, wanted: int, size: int) -> list[NDArray[np.uint8]]:
    """Face-free square crops of one photo, resized to ``size``."""
    height, width = image.shape[:2]
    faces = _grown([d.box for d in detector(image, max_faces=20)], _FACE_BOX_SCALE)
    out: list[NDArray[np.uint8]] = []
    for _ in range(8 * wanted):
        side = int(min(height, width) * rng.uniform(0.15, 0.7))
        if side < _MIN_SIDE_PX:
            continue
        x0, y0 = int(rng.integers(0, width - side + 1)), int(rng.integers(0, height - side + 1))
        if _overlaps((x0, y0, x0 + side, y0 + side), faces):
            continue
        crop = np.ascontiguousarray(image[y0 : y0 + side, x0 : x0 + side])
        resized = cv2.resize(crop, (size, size), interpolation=cv2.INTER_AREA)
        if detector(crop, max_faces=1) or detector(resized, max_faces=1):
            continue
        out.append(resized)
        if len(out) >= wanted:
            break
    return out


def procedural_background(rng: np.random.Generator, size: int, noise: NDArray[np.uint8]) -> NDArray[np.uint8]:
    """(size, size, 3) uint8: a two-colour gradient with large soft blotches from ``noise``
    (built at 1/8 resolution and scaled up: only low frequencies)."""
    small = max(8, size // 8)
    a, b = rng.uniform(0, 255, 3), rng.uniform(0, 255, 3)
    angle = rng.uniform(0, 2 * np.pi)
    yy, xx = np.mgrid[0:small, 0:small] / small
    t = np.clip(0.5 + (xx - 0.5) * np.cos(angle) + (yy - 0.5) * np.sin(angle), 0, 1)[..., None]
    y0, x0 = rng.integers(0, noise.shape[0] - small, 2)
    blotch = noise[y0 : y0 + small, x0 : x0 + small, 1:2].astype(np.float64) / 255 - 0.5
    out = np.clip(a * (1 - t) + b * t + blotch * rng.uniform(0, 120), 0, 255).astype(np.uint8)
    return cv2.resize(out, (size, size), interpolation=cv2.INTER_CUBIC)
