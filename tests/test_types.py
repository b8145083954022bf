"""Result types: rotation conventions round-trip, shapes are checked, serialisation is complete."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from kaocap.constants import BLENDSHAPES
from kaocap.types import (
    Face,
    FrameResult,
    HeadPose,
    Roi,
    euler_to_matrix,
    invert_affine,
    matrix_to_euler,
    matrix_to_quaternion,
    quaternion_to_matrix,
)

angles = st.floats(-179.9, 179.9)


@given(angles, st.floats(-89.0, 89.0), angles)
def test_euler_round_trip(yaw, pitch, roll):
    back = matrix_to_euler(euler_to_matrix(yaw, pitch, roll))
    np.testing.assert_allclose(euler_to_matrix(*back), euler_to_matrix(yaw, pitch, roll), atol=1e-9)
    np.testing.assert_allclose(back, (yaw, pitch, roll), atol=1e-6)


@given(angles, st.sampled_from([-90.0, 90.0]), angles)
def test_gimbal_lock_keeps_the_rotation(yaw, pitch, roll):
    matrix = euler_to_matrix(yaw, pitch, roll)
    back = matrix_to_euler(matrix)
    assert back[2] == 0.0
    np.testing.assert_allclose(euler_to_matrix(*back), matrix, atol=1e-7)


@given(angles, angles, angles)
def test_quaternion_round_trip(yaw, pitch, roll):
    matrix = euler_to_matrix(yaw, pitch, roll)
    quat = matrix_to_quaternion(matrix)
    assert quat[0] >= 0 and math.isclose(np.linalg.norm(quat), 1.0, rel_tol=1e-12)
    np.testing.assert_allclose(quaternion_to_matrix(quat), matrix, atol=1e-9)


def test_documented_signs():
    # yaw > 0 turns the face (+z) towards the image right (+x); pitch > 0 tilts it down (-y).
    assert euler_to_matrix(30, 0, 0)[:, 2] @ [1, 0, 0] > 0
    assert euler_to_matrix(0, 30, 0)[:, 2] @ [0, 1, 0] < 0
    # roll > 0 moves the head's top (+y) towards the image left (-x).
    assert euler_to_matrix(0, 0, 30)[:, 1] @ [1, 0, 0] < 0


@given(st.floats(10, 2000), st.floats(10, 2000), st.floats(-math.pi, math.pi),
       st.floats(0, 1920), st.floats(0, 1080))  # fmt: skip
def test_crop_then_uncrop_is_identity(w, h, rotation, cx, cy):
    roi = Roi(np.array([cx, cy], np.float32), np.array([w, h], np.float32), rotation)
    forward = roi.crop_matrix(256)
    back = invert_affine(forward)
    cx, cy = (float(v) for v in roi.center_xy)  # float32 in the Roi
    pts = np.array([[cx, cy, 1.0], [cx + 3, cy - 7, 1.0]])
    crop = pts @ forward.T
    np.testing.assert_allclose(np.c_[crop, np.ones(2)] @ back.T, pts[:, :2], atol=1e-6 * max(cx, cy, 1))
    np.testing.assert_allclose(crop[0], [128, 128], atol=1e-6)  # the centre lands mid-crop


def _face(**changes):
    values = {
        "face_id": 0, "score": 0.9, "box": np.zeros(4, np.float32), "landmarks": np.zeros((478, 3), np.float32),
        "blendshapes": np.zeros(52, np.float32), "blendshapes_valid": np.ones(52, bool),
        "pose": HeadPose(np.eye(3, dtype=np.float32), np.array([0, 0, -50], np.float32)),
        "roi": Roi(np.zeros(2, np.float32), np.ones(2, np.float32), 0.0),
    }  # fmt: skip
    values.update(changes)
    return Face(**values)


@pytest.mark.parametrize("field,value", [
    ("landmarks", np.zeros((468, 3), np.float32)),
    ("blendshapes", np.zeros(51, np.float32)),
    ("box", np.zeros(4, np.float64)),
    ("blendshapes_valid", np.ones(52, np.float32)),
])  # fmt: skip
def test_face_checks_shapes(field, value):
    with pytest.raises(ValueError, match=field):
        _face(**{field: value})


def test_to_dict_is_complete_and_named():
    valid = np.ones(52, bool)
    valid[BLENDSHAPES.index("tongueOut")] = False
    face = _face(blendshapes=np.full(52, 0.25, np.float32), blendshapes_valid=valid)
    data = FrameResult(5, 2, (640, 480), (face,), {"total": 1.0}).to_dict(landmarks=False)
    assert list(data["faces"][0]["blendshapes"]) == list(BLENDSHAPES)
    assert data["faces"][0]["blendshapes_missing"] == ["tongueOut"]
    assert data["faces"][0]["pose"]["quaternion_wxyz"] == [1.0, 0.0, 0.0, 0.0]
    assert "landmarks" not in data["faces"][0]
    assert face.blendshape("jawOpen") == 0.25
    with pytest.raises(KeyError, match="unknown blendshape"):
        face.blendshape("jaw_open")
