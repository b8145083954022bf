"""Blendshape network pre/post-processing: landmark subset in, 52 ARKit coefficients out."""

from __future__ import annotations

from functools import cache

import numpy as np
from numpy.typing import NDArray

from kaocap.constants import (
    BLENDSHAPE_LANDMARK_SUBSET,
    BLENDSHAPES,
    MEDIAPIPE_BLENDSHAPES,
    MEDIAPIPE_MISSING_BLENDSHAPES,
)

_SUBSET = np.asarray(BLENDSHAPE_LANDMARK_SUBSET)


def network_input(landmarks_px: NDArray[np.floating]) -> NDArray[np.float32]:
    """(478, 2+) image px landmarks -> (1, 146, 2) input of MediaPipe's blendshape network."""
    return np.ascontiguousarray(landmarks_px[_SUBSET, :2], dtype=np.float32)[None]


@cache
def _reorder() -> tuple[NDArray[np.intp], NDArray[np.bool_]]:
    source = {name: i for i, name in enumerate(MEDIAPIPE_BLENDSHAPES)}
    index = np.array([source.get(name, 0) for name in BLENDSHAPES])
    valid = np.array([name not in MEDIAPIPE_MISSING_BLENDSHAPES for name in BLENDSHAPES])
    return index, valid


def to_arkit(output: NDArray[np.float32]) -> tuple[NDArray[np.float32], NDArray[np.bool_]]:
    """Network output (52,) in MediaPipe's order -> ((52,) values in Apple's order, valid mask).

    Shapes the network does not produce (tongueOut) are 0 and marked invalid.
    """
    index, valid = _reorder()
    values = np.where(valid, np.clip(output.reshape(-1)[index], 0.0, 1.0), 0.0).astype(np.float32)
    return values, valid.copy()
