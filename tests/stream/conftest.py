"""Hand-built FrameResults for the writer tests."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pytest

from kaocap.constants import BLENDSHAPES, NUM_LANDMARKS
from kaocap.types import Face, FrameResult, HeadPose, Roi, euler_to_matrix


def _roi(center: np.ndarray, size: float) -> Roi:
    # Roi's size field changed from a scalar side to (w, h); build whichever this checkout has.
    if "size_wh" in Roi.__dataclass_fields__:
        return Roi(center, np.array([size, size], np.float32), 0.0)
    return Roi(center, float(size), 0.0)


def build_face(
    blendshapes: np.ndarray | None = None,
    *,
    euler_deg: tuple[float, float, float] = (0.0, 0.0, 0.0),
    translation_cm: tuple[float, float, float] = (0.0, 0.0, -50.0),
    center_xy: tuple[float, float] = (128.0, 128.0),
    size_px: float = 100.0,
    face_id: int = 0,
    seed: int = 0,
) -> Face:
    """A plausible Face: landmarks scattered in an ellipse around ``center_xy``, nose at centre."""
    rng = np.random.default_rng(seed)
    angle = rng.uniform(0, 2 * np.pi, NUM_LANDMARKS)
    radius = np.sqrt(rng.uniform(0, 1, NUM_LANDMARKS)) * size_px / 2
    landmarks = np.stack(
        [center_xy[0] + radius * np.cos(angle) * 0.8, center_xy[1] + radius * np.sin(angle),
         rng.normal(0, 5, NUM_LANDMARKS)], axis=1,
    ).astype(np.float32)  # fmt: skip
    landmarks[1, :2] = center_xy  # the nose tip
    box = np.array([*landmarks[:, :2].min(0), *landmarks[:, :2].max(0)], np.float32)
    if blendshapes is None:
        blendshapes = rng.uniform(0, 1, len(BLENDSHAPES))
    valid = np.ones(len(BLENDSHAPES), bool)
    pose = HeadPose(
        euler_to_matrix(*euler_deg).astype(np.float32), np.array(translation_cm, np.float32)
    )
    roi = _roi(np.array(center_xy, np.float32), size_px * 1.5)
    return Face(
        face_id, 0.97, box, landmarks, np.asarray(blendshapes, np.float32), valid, pose, roi
    )


@pytest.fixture
def make_face() -> Callable[..., Face]:
    return build_face


@pytest.fixture
def make_result() -> Callable[..., FrameResult]:
    def make(timestamp_ms: int = 0, n_faces: int = 1, **face_kwargs) -> FrameResult:
        faces = tuple(
            build_face(face_id=i, seed=timestamp_ms + i, **face_kwargs) for i in range(n_faces)
        )
        return FrameResult(timestamp_ms, timestamp_ms // 40, (256, 256), faces, {"total": 1.5})

    return make
