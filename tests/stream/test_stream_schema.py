"""The sender schema: one FrameResult -> what every live sender encodes; frame conventions."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from kaocap.constants import BLENDSHAPES
from kaocap.stream.csv_livelink import face_to_livelink
from kaocap.stream.schema import (
    VRM_PRESET_SOURCES,
    SenderFrame,
    gaze_normalized,
    pascal_case,
    sender_frame,
    unity_eye_rotations_xyzw,
    unity_head_rotation_xyzw,
    unity_position_m,
    vrm_presets,
)
from kaocap.types import FrameResult, quaternion_to_matrix

S = np.diag([-1.0, 1.0, 1.0])


def _unity_matrix(xyzw: tuple[float, float, float, float]) -> np.ndarray:
    x, y, z, w = xyzw
    return quaternion_to_matrix(np.array([w, x, y, z]))


def test_frame_with_and_without_a_face(make_result) -> None:
    result = make_result(1000, n_faces=2, euler_deg=(20.0, -10.0, 5.0))
    frame = sender_frame(result)
    face = result.faces[0]
    assert frame.face_found and frame.face is face and frame.timestamp_ms == 1000
    assert list(frame.blendshapes) == list(BLENDSHAPES)
    assert frame.blendshapes["jawOpen"] == pytest.approx(face.blendshape("jawOpen"))
    assert frame.head_euler_deg == pytest.approx((20.0, -10.0, 5.0), abs=1e-4)
    assert frame.head_translation_cm == pytest.approx((0.0, 0.0, -50.0))
    np.testing.assert_array_equal(frame.livelink_values, face_to_livelink(face))
    assert sender_frame(result) is frame  # converted once for every sender

    empty = sender_frame(make_result(1040, n_faces=0))
    assert not empty.face_found and empty.face is None and empty.timestamp_ms == 1040
    assert set(empty.blendshapes.values()) == {0.0}
    assert empty.head_quaternion_wxyz == (1.0, 0.0, 0.0, 0.0)
    assert not empty.livelink_values.any()


def test_names_and_vrm_presets() -> None:
    assert pascal_case("eyeBlinkLeft") == "EyeBlinkLeft"
    shapes = dict.fromkeys(BLENDSHAPES, 0.0) | {"eyeBlinkLeft": 1.0, "mouthSmileLeft": 0.6}
    presets = vrm_presets(shapes)
    assert list(presets) == list(VRM_PRESET_SOURCES)
    assert presets["Blink_L"] == 1.0 and presets["Blink_R"] == 0.0
    assert presets["Joy"] == pytest.approx(0.3)
    assert all(s in BLENDSHAPES for sources in VRM_PRESET_SOURCES.values() for s in sources)


@settings(max_examples=100, deadline=None)
@given(
    st.floats(-80, 80), st.floats(-80, 80), st.floats(-80, 80),
)  # fmt: skip
def test_unity_head_rotation_is_the_mirror_conjugate(yaw: float, pitch: float, roll: float) -> None:
    from tests.stream.conftest import build_face

    frame = sender_frame(FrameResult(0, 0, (256, 256), (build_face(euler_deg=(yaw, pitch, roll)),)))
    unity = _unity_matrix(unity_head_rotation_xyzw(frame))
    kaocap = frame.face.pose.rotation.astype(np.float64)
    np.testing.assert_allclose(unity, S @ kaocap @ S, atol=1e-5)


def test_unity_signs(make_face) -> None:
    # The subject turns to their own left: the (non-mirrored) avatar turns to its left, i.e.
    # its forward axis (+z) swings towards -x (its left) in Unity's left-handed frame.
    left = sender_frame(FrameResult(0, 0, (256, 256), (make_face(euler_deg=(30.0, 0, 0)),)))
    forward = _unity_matrix(unity_head_rotation_xyzw(left)) @ [0, 0, 1]
    assert forward[0] < -0.4
    # Chin down: forward tips down (-y).
    down = sender_frame(FrameResult(1, 1, (256, 256), (make_face(euler_deg=(0, 30.0, 0)),)))
    assert (_unity_matrix(unity_head_rotation_xyzw(down)) @ [0, 0, 1])[1] < -0.4
    assert unity_position_m((10.0, 20.0, -50.0)) == pytest.approx((-0.1, 0.2, -0.5))


def test_eye_rotations_and_gaze() -> None:
    shapes = dict.fromkeys(BLENDSHAPES, 0.0) | {"eyeLookInLeft": 1.0, "eyeLookOutRight": 1.0}
    frame = SenderFrame(0, True, shapes, eyes_livelink_rad=(0.6, 0.3, 0.0, 0.6, 0.3, 0.0))
    for xyzw in unity_eye_rotations_xyzw(frame):  # both eyes look to the subject's right, down
        gaze = _unity_matrix(xyzw) @ [0, 0, 1]
        assert gaze[0] == pytest.approx(math.sin(0.6) * math.cos(0.3), abs=1e-6)
        assert gaze[1] == pytest.approx(-math.sin(0.3), abs=1e-6)
    lx, ly, rx, ry = gaze_normalized(frame)
    assert lx == rx == pytest.approx(math.sin(0.6)) and ly == ry == pytest.approx(-math.sin(0.3))
