"""478-landmark network pre/post-processing in numpy/OpenCV: ROIs, crops, decoding.

The geometry follows MediaPipe's FaceLandmarker exactly (DetectionsToRectsCalculator,
RectTransformationCalculator, ImageToTensorCalculator, LandmarkProjectionCalculator), so that
the same network sees the same pixels and its output lands on the same image points.
"""

from __future__ import annotations

import math

import cv2
import numpy as np
from numpy.typing import NDArray

from kaocap.constants import (
    DETECTION_LEFT_EYE,
    DETECTION_RIGHT_EYE,
    LANDMARK_LEFT_EYE_OUTER,
    LANDMARK_RIGHT_EYE_OUTER,
    NUM_LANDMARKS,
)
from kaocap.detect.process import Detection
from kaocap.types import Roi

INPUT_SIZE = 256
#: Output tensor names of the landmark network (its model card).
OUTPUT_LANDMARKS = "Identity"
OUTPUT_PRESENCE = "Identity_1"
#: How much larger than the face box the landmark crop is (MediaPipe: 1.5 for both ROIs).
ROI_SCALE = 1.5


def _normalize_radians(angle: float) -> float:
    return angle - 2 * math.pi * math.floor((angle + math.pi) / (2 * math.pi))


def _rotation(start_xy: NDArray, end_xy: NDArray) -> float:
    """Clockwise (image y down) angle that brings start->end horizontal, MediaPipe's formula."""
    return _normalize_radians(-math.atan2(-(end_xy[1] - start_xy[1]), end_xy[0] - start_xy[0]))


def roi_from_detection(detection: Detection) -> Roi:
    """The landmark crop for a fresh detection: box scaled by 1.5, rotated to level the eyes."""
    x0, y0, x1, y1 = detection.box.astype(np.float64)
    kps = detection.keypoints.astype(np.float64)
    rotation = _rotation(kps[DETECTION_RIGHT_EYE], kps[DETECTION_LEFT_EYE])
    centre = np.array([(x0 + x1) / 2, (y0 + y1) / 2], dtype=np.float32)
    size = np.array([(x1 - x0) * ROI_SCALE, (y1 - y0) * ROI_SCALE], dtype=np.float32)
    return Roi(centre, size, rotation)


def roi_from_landmarks(landmarks_xy: NDArray[np.floating]) -> Roi:
    """The landmark crop for the next frame, from this frame's (478, 2+) px landmarks:
    their bounding box made square on its long side, scaled by 1.5, eyes levelled."""
    lo, hi = _extent(landmarks_xy)
    xy = np.asarray(landmarks_xy)[[LANDMARK_RIGHT_EYE_OUTER, LANDMARK_LEFT_EYE_OUTER], :2].astype(np.float64)
    rotation = _rotation(xy[0], xy[1])
    side = float((hi - lo).max()) * ROI_SCALE
    return Roi(((lo + hi) / 2).astype(np.float32), np.array([side, side], np.float32), rotation)


def _extent(landmarks_xy: NDArray[np.floating]) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    """((2,) min, (2,) max) x and y of (N, 2+) points, float64: one reduction per column (a
    reduction over axis 0 of the strided (N, 2) view costs several times more per frame)."""
    xy = np.asarray(landmarks_xy)
    x, y = xy[:, 0], xy[:, 1]
    return np.array([x.min(), y.min()], np.float64), np.array([x.max(), y.max()], np.float64)


def crop(image: NDArray[np.uint8], rois: list[Roi], size: int = INPUT_SIZE) -> NDArray[np.float32]:
    """(N, size, size, 3) float32 crops in 0..1, border pixels replicated (MediaPipe's default)."""
    out = np.empty((len(rois), size, size, 3), dtype=np.float32)
    for i, roi in enumerate(rois):
        patch = cv2.warpAffine(
            image, roi.crop_matrix(size), (size, size), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE
        )
        np.multiply(patch, np.float32(1.0 / 255.0), out=out[i], casting="unsafe")
    return out


def project(raw: NDArray[np.float32], rois: list[Roi], size: int = INPUT_SIZE) -> NDArray[np.float32]:
    """Raw network output (N, 1434) in crop px -> (N, 478, 3) image px (z in the x scale)."""
    pts = raw.reshape(len(rois), NUM_LANDMARKS, 3).astype(np.float64) / size - np.array([0.5, 0.5, 0.0])
    out = np.empty(pts.shape, dtype=np.float32)
    for i, roi in enumerate(rois):
        c, s = math.cos(roi.rotation_rad), math.sin(roi.rotation_rad)
        w, h = float(roi.size_wh[0]), float(roi.size_wh[1])
        x, y = pts[i, :, 0], pts[i, :, 1]
        out[i, :, 0] = (c * x - s * y) * w + roi.center_xy[0]
        out[i, :, 1] = (s * x + c * y) * h + roi.center_xy[1]
        out[i, :, 2] = pts[i, :, 2] * w
    return out


def presence(logits: NDArray[np.float32]) -> NDArray[np.float32]:
    """Face presence probability (N,) from the network's (N, ...) logits."""
    return (1.0 / (1.0 + np.exp(-logits.reshape(-1).astype(np.float64)))).astype(np.float32)


def bounding_box(landmarks_xy: NDArray[np.floating]) -> NDArray[np.float32]:
    """(4,) x0 y0 x1 y1 px of (478, 2+) landmarks."""
    lo, hi = _extent(landmarks_xy)
    return np.concatenate([lo, hi]).astype(np.float32)
