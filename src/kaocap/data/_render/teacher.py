"""The MediaPipe-network teacher run on full renders, its outputs in a crop's pixels."""

from __future__ import annotations

import itertools

import numpy as np
from numpy.typing import NDArray

from kaocap.constants import BLENDSHAPE_INDEX, NUM_LANDMARKS
from kaocap.types import Roi


class Teacher:
    """kaocap's Pipeline in MediaPipe IMAGE mode (detection every frame, no filtering).

    ``teacher(image)`` -> the first face (or None); :func:`teacher_labels` converts it.
    """

    def __init__(self) -> None:
        from kaocap import Pipeline
        from kaocap.config import PipelineConfig

        cfg = PipelineConfig.image_mode()
        self._pipeline = Pipeline(cfg)
        self._clock = itertools.count(1)

    def __call__(self, image: NDArray[np.uint8]):
        faces = self._pipeline(image, timestamp_ms=next(self._clock)).faces
        return faces[0] if faces else None

    def close(self) -> None:
        self._pipeline.close()


def to_crop(points: NDArray[np.floating], roi: Roi, crop_size: int) -> NDArray[np.float32]:
    """(N, 3) image px (z in the x scale) -> crop px of ``roi.crop_matrix(crop_size)``, z scaled
    like x."""
    m = roi.crop_matrix(crop_size)
    out = np.empty((len(points), 3), np.float32)
    out[:, :2] = points[:, :2] @ m[:, :2].T + m[:, 2]
    out[:, 2] = points[:, 2] * (crop_size / float(roi.size_wh[0]))
    return out


def teacher_labels(face, roi: Roi, crop_size: int) -> dict[str, NDArray]:
    """teacher_* arrays for one sample: blendshapes (52,) with NaN where the network has no
    value (tongueOut), rotation (3, 3), translation_cm (3,), landmarks (478, 3) crop px,
    presence (); NaNs and presence 0 when no face was found."""
    if face is None:
        nan = np.float32(np.nan)
        return {"teacher_blendshapes": np.full(len(BLENDSHAPE_INDEX), nan, np.float32),
                "teacher_rotation": np.full((3, 3), nan, np.float32),
                "teacher_translation_cm": np.full(3, nan, np.float32),
                "teacher_landmarks": np.full((NUM_LANDMARKS, 3), nan, np.float32),
                "teacher_presence": np.float32(0.0)}  # fmt: skip
    values = np.where(face.blendshapes_valid, face.blendshapes, np.nan).astype(np.float32)
    return {"teacher_blendshapes": values, "teacher_rotation": face.pose.rotation.astype(np.float32),
            "teacher_translation_cm": face.pose.translation_cm.astype(np.float32),
            "teacher_landmarks": to_crop(face.landmarks, roi, crop_size),
            "teacher_presence": np.float32(face.score)}  # fmt: skip
