"""Compositing the rendered head over a background, then camera-like degradations.

All images are (S, S, 3) uint8 RGB, top row first. Labels never depend on anything here.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np
from numpy.typing import NDArray


@dataclass(frozen=True)
class PostParams:
    """exposure: gain on linear-ish intensities; gamma: output gamma (1 = none);
    blur_sigma px (0 = none); downscale: shrink factor before scaling back (1 = none);
    noise_sigma: sensor noise, grey levels; jpeg_quality: 0 = none, else 1..100."""

    exposure: float = 1.0
    gamma: float = 1.0
    blur_sigma: float = 0.0
    downscale: float = 1.0
    noise_sigma: float = 0.0
    jpeg_quality: int = 0


def sample_post(rng: np.random.Generator) -> PostParams:
    """Random degradations: each is applied to part of the renders."""
    return PostParams(
        exposure=float(rng.uniform(0.75, 1.25)),
        gamma=float(rng.uniform(0.85, 1.15)),
        blur_sigma=float(rng.uniform(0.3, 1.6)) if rng.random() < 0.4 else 0.0,
        downscale=float(rng.uniform(1.3, 3.0)) if rng.random() < 0.2 else 1.0,
        noise_sigma=float(rng.uniform(1.0, 8.0)) if rng.random() < 0.5 else 0.0,
        jpeg_quality=int(rng.integers(25, 95)) if rng.random() < 0.5 else 0,
    )


def composite(rgba: NDArray[np.uint8], background: NDArray[np.uint8], soften: bool) -> NDArray[np.uint8]:
    """The head over ``background``. ``soften``: anti-alias an aliased (no MSAA) silhouette by
    blurring the coverage (sigma 0.6 px) over the head's colours extended by one pixel."""
    alpha = rgba[..., 3].astype(np.float32) * np.float32(1 / 255)
    rgb = rgba[..., :3]
    if soften:
        grown = cv2.dilate(rgb, np.ones((3, 3), np.uint8))
        rgb = np.where(rgba[..., 3:] > 0, rgb, grown)
        alpha = np.maximum(cv2.GaussianBlur(alpha, (0, 0), 0.6), alpha * np.float32(0.5))
    a = alpha[..., None]
    out = rgb * a + background * (np.float32(1) - a)
    return out.astype(np.uint8)


def _tone_curve(exposure: float, gamma: float) -> NDArray[np.uint8]:
    x = np.arange(256, dtype=np.float64) / 255
    return np.clip(np.clip(x * exposure, 0, 1) ** gamma * 255 + 0.5, 0, 255).astype(np.uint8)


def degrade(image: NDArray[np.uint8], post: PostParams, rng: np.random.Generator) -> NDArray[np.uint8]:
    """Exposure/gamma, defocus, resolution loss, sensor noise and JPEG artefacts."""
    out = cv2.LUT(image, _tone_curve(post.exposure, post.gamma))
    if post.blur_sigma > 0:
        out = cv2.GaussianBlur(out, (0, 0), post.blur_sigma)
    if post.downscale > 1:
        size = out.shape[1], out.shape[0]
        small = (max(8, int(size[0] / post.downscale)), max(8, int(size[1] / post.downscale)))
        out = cv2.resize(cv2.resize(out, small, interpolation=cv2.INTER_AREA), size, interpolation=cv2.INTER_LINEAR)
    if post.noise_sigma > 0:
        noise = rng.standard_normal(out.shape, dtype=np.float32) * np.float32(post.noise_sigma)
        out = np.clip(out + noise, 0, 255).astype(np.uint8)
    if post.jpeg_quality > 0:
        ok, buf = cv2.imencode(".jpg", out[..., ::-1], [cv2.IMWRITE_JPEG_QUALITY, post.jpeg_quality])
        if ok:
            out = cv2.imdecode(buf, cv2.IMREAD_COLOR)[..., ::-1]
    return np.ascontiguousarray(out)
