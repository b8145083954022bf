"""BlazeFace (short range) pre/post-processing in numpy: letterbox, SSD anchors, decoding,
weighted NMS, and a tiled second pass for faces too small for the full-frame pass.

Coordinates are image px unless a name says otherwise. Keypoints follow BlazeFace's order:
right eye, left eye, nose tip, mouth centre, right ear tragion, left ear tragion (subject's sides).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import cache

import cv2
import numpy as np
from numpy.typing import NDArray

INPUT_SIZE = 128
NUM_KEYPOINTS = 6
NUM_ANCHORS = 896
#: Output tensor names of the detector (its model card).
OUTPUT_REGRESSORS = "regressors"
OUTPUT_SCORES = "classificators"
# SsdAnchorsCalculator options of MediaPipe's FaceDetectorGraph (short-range model).
_ANCHOR_STRIDES = (8, 16, 16, 16)
_ANCHOR_MIN_SCALE, _ANCHOR_MAX_SCALE = 0.1484375, 0.75
_SCORE_CLIP = 100.0


@dataclass(frozen=True, slots=True)
class Detection:
    """A detected face. box: (4,) x0 y0 x1 y1 px; keypoints: (6, 2) px; score: 0..1."""

    box: NDArray[np.float32]
    keypoints: NDArray[np.float32]
    score: float


@cache
def anchor_groups() -> tuple[int, ...]:
    """Anchors per output head (layers sharing a stride form one head): (512, 384)."""
    sizes, layer = [], 0
    while layer < len(_ANCHOR_STRIDES):
        stride, per_cell = _ANCHOR_STRIDES[layer], 0
        while layer < len(_ANCHOR_STRIDES) and _ANCHOR_STRIDES[layer] == stride:
            per_cell, layer = per_cell + 2, layer + 1
        sizes.append(math.ceil(INPUT_SIZE / stride) ** 2 * per_cell)
    return tuple(sizes)


def split_batch(output: NDArray[np.float32], batch: int) -> NDArray[np.float32]:
    """(1, batch * 896, C) network output of a batch -> (batch, 896, C).

    The network flattens each head to [1, -1, C] and concatenates the heads, so a batch comes
    back head-major: all images' head-1 anchors, then all images' head-2 anchors.
    """
    flat = output.reshape(-1, output.shape[-1])
    parts, start = [], 0
    for size in anchor_groups():
        parts.append(flat[start:start + batch * size].reshape(batch, size, -1))
        start += batch * size
    return np.concatenate(parts, axis=1)


@cache
def ssd_anchors() -> NDArray[np.float32]:
    """(896, 2) anchor centres (x, y) in 0..1 of the 128x128 input; anchor sizes are all 1."""
    return anchor_centres(_ANCHOR_STRIDES, INPUT_SIZE)


def anchor_centres(strides: tuple[int, ...], input_size: int) -> NDArray[np.float32]:
    """(A, 2) centres (x, y) in 0..1 of the fixed-size SSD anchors of MediaPipe's
    SsdAnchorsCalculator for square ``input_size`` inputs and per-layer ``strides`` (BlazeFace's
    and BlazePose's detectors)."""
    centres = []
    layer = 0
    while layer < len(strides):
        stride = strides[layer]
        per_cell = 0
        # Layers sharing a stride share a grid; each contributes 2 anchors per cell
        # (aspect ratio 1 and the interpolated scale), all with fixed size.
        while layer < len(strides) and strides[layer] == stride:
            per_cell += 2
            layer += 1
        grid = math.ceil(input_size / stride)
        ys, xs = np.meshgrid(np.arange(grid), np.arange(grid), indexing="ij")
        cells = np.stack([(xs.ravel() + 0.5) / grid, (ys.ravel() + 0.5) / grid], axis=1)
        centres.append(np.repeat(cells, per_cell, axis=0))
    return np.concatenate(centres).astype(np.float32)


def sigmoid(logits: NDArray[np.floating]) -> NDArray[np.float64]:
    """Scores 0..1 of detector logits, float64, clipped to +-100 first as MediaPipe does."""
    return 1.0 / (1.0 + np.exp(-np.clip(np.asarray(logits, np.float64), -_SCORE_CLIP, _SCORE_CLIP)))


def letterbox(image: NDArray[np.uint8], region: tuple[int, int, int, int] | None = None, size: int = INPUT_SIZE):
    """Scale ``image[region]`` into a ``size`` x ``size`` input (BlazeFace's 128 by default),
    keeping aspect ratio, zero padding.

    region: (x0, y0, x1, y1) px, default the whole image.
    Returns (input (1, size, size, 3) float32 in -1..1, (2, 3) affine input px -> image px).
    """
    x0, y0, x1, y1 = region or (0, 0, image.shape[1], image.shape[0])
    side = max(x1 - x0, y1 - y0)
    scale = size / side
    # Centre the region in a square of ``side`` px, as MediaPipe's PadRoi does.
    cx, cy = (x0 + x1) / 2, (y0 + y1) / 2
    to_input = np.array([[scale, 0, size / 2 - scale * cx], [0, scale, size / 2 - scale * cy]])
    crop = cv2.warpAffine(
        image, to_input, (size, size), flags=cv2.INTER_LINEAR,
        borderMode=cv2.BORDER_CONSTANT, borderValue=(0, 0, 0),
    )  # fmt: skip
    tensor = crop.astype(np.float32) * (2.0 / 255.0) - 1.0
    to_image = np.array([[1 / scale, 0, cx - side / 2], [0, 1 / scale, cy - side / 2]])
    return tensor[None], to_image


def decode(
    regressors: NDArray[np.float32], scores: NDArray[np.float32], min_score: float
) -> tuple[NDArray[np.float32], NDArray[np.float32], NDArray[np.float32]]:
    """Raw outputs (896, 16), (896,) -> boxes (K, 4) x0y0x1y1, keypoints (K, 6, 2), scores (K,),
    all in 128-px input coordinates, for the anchors scoring at least ``min_score``."""
    probs = sigmoid(scores)
    keep = np.flatnonzero(probs >= min_score)
    raw, anchors = regressors[keep], ssd_anchors()[keep] * INPUT_SIZE
    centre = raw[:, 0:2] + anchors
    half = raw[:, 2:4] / 2
    boxes = np.concatenate([centre - half, centre + half], axis=1)
    keypoints = raw[:, 4:16].reshape(-1, NUM_KEYPOINTS, 2) + anchors[:, None, :]
    return boxes, keypoints, probs[keep]


def _iou(box: NDArray, boxes: NDArray) -> NDArray:
    lt = np.maximum(box[:2], boxes[:, :2])
    rb = np.minimum(box[2:], boxes[:, 2:])
    inter = np.prod(np.clip(rb - lt, 0, None), axis=1)
    area = lambda b: np.prod(np.clip(b[..., 2:] - b[..., :2], 0, None), axis=-1)
    union = area(box) + area(boxes) - inter
    return np.where(union > 0, inter / np.maximum(union, 1e-12), 0.0)


def weighted_nms(
    boxes: NDArray, keypoints: NDArray, scores: NDArray, iou_threshold: float = 0.3
) -> list[Detection]:
    """MediaPipe's WEIGHTED non-max suppression: each cluster of boxes overlapping the best one
    by more than ``iou_threshold`` becomes one detection, its coordinates the score-weighted
    mean of the cluster, its score the best score. Sorted by score, highest first."""
    order = np.argsort(-scores, kind="stable")
    boxes, keypoints, scores = boxes[order], keypoints[order], scores[order]
    remaining = np.arange(len(scores))
    out: list[Detection] = []
    while remaining.size:
        overlap = _iou(boxes[remaining[0]], boxes[remaining]) > iou_threshold
        overlap[0] = True
        cluster = remaining[overlap]
        w = scores[cluster][:, None]
        box = (boxes[cluster] * w).sum(0) / w.sum()
        kps = (keypoints[cluster] * w[:, :, None]).sum(0) / w.sum()
        out.append(Detection(box.astype(np.float32), kps.astype(np.float32), float(scores[cluster[0]])))
        remaining = remaining[~overlap]
    return out


def tile_regions(width: int, height: int, tile: int, overlap: float = 1 / 3) -> list[tuple[int, int, int, int]]:
    """Square tiles of ``tile`` px covering the image with at least ``overlap`` between
    neighbours, as (x0, y0, x1, y1) px."""

    def starts(length: int) -> list[int]:
        if length <= tile:
            return [0]
        count = math.ceil((length - tile) / (tile * (1 - overlap))) + 1
        return [round(i * (length - tile) / (count - 1)) for i in range(count)]

    return [(x, y, min(x + tile, width), min(y + tile, height)) for y in starts(height) for x in starts(width)]


def to_image(detections_input: tuple[NDArray, NDArray, NDArray], affine: NDArray):
    """Map (boxes, keypoints, scores) in 128-px input coordinates to image px with ``affine``."""
    boxes, keypoints, scores = detections_input
    s, t = affine[0, 0], affine[:, 2]
    return boxes * s + np.tile(t, 2), keypoints * s + t, scores
