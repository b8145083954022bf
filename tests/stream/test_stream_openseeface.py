"""OpenSeeFace packets: decoded with the tracker's documented layout; pose checked against
OpenSeeFace's own solvePnP on its face model; 3D points from a projected canonical face."""

from __future__ import annotations

import struct
import time

import cv2
import numpy as np
import pytest

from kaocap.constants import BLENDSHAPES, NUM_LANDMARKS
from kaocap.errors import InputError
from kaocap.pose.process import load_face_geometry
from kaocap.stream.openseeface import (
    OSF_CM_PER_UNIT,
    OSF_FEATURES,
    OSF_FROM_MESH,
    PACKET_SIZE,
    OpenSeeFaceSender,
    decode_openseeface,
    encode_openseeface,
    osf_features,
    osf_pose,
)
from kaocap.stream.schema import sender_frame
from kaocap.types import Face, FrameResult, HeadPose, euler_to_matrix, quaternion_to_matrix
from tests.stream._net import udp_receiver

W, H, FOCAL_PX = 640, 480, 600.0
#: OpenSeeFace's face model (tracker.py), contour 0-16 and nose 27-30, z scaled by 1.3.
OSF_CONTOUR = np.array([
    [0.50194, 0.28030, -0.49561], [0.48377, 0.15031, -0.50000], [0.46233, 0.01987, -0.49781],
    [0.43017, -0.11278, -0.49123], [0.38130, -0.25112, -0.46491], [0.31761, -0.35653, -0.40132],
    [0.24840, -0.44335, -0.30482], [0.15900, -0.51157, -0.22588], [0.00194, -0.55490, -0.16009],
    [-0.15900, -0.51157, -0.22588], [-0.24840, -0.44335, -0.30482], [-0.31761, -0.35653, -0.40132],
    [-0.38130, -0.25112, -0.46491], [-0.43017, -0.11278, -0.49123], [-0.46233, 0.01987, -0.49781],
    [-0.48377, 0.15031, -0.50000], [-0.50194, 0.28030, -0.49561], [0.0, 0.25503, -0.08553],
    [0.0, 0.16240, -0.04825], [0.0, 0.07218, -0.01535], [0.0, 0.0, 0.0],
]) * [1.0, 1.0, 1.3]  # fmt: skip


def projected_face(euler_deg: tuple[float, float, float], translation_cm=(0.0, 0.0, -50.0)) -> Face:
    """A Face whose 478 landmarks are MediaPipe's canonical face posed and projected (pinhole,
    FOCAL_PX); iris centres at the eye-contour centres."""
    rotation = euler_to_matrix(*euler_deg)
    canonical = load_face_geometry().canonical
    cam = canonical @ rotation.T + translation_cm  # kaocap camera frame, cm
    depth = -cam[:, 2]
    lm = np.zeros((NUM_LANDMARKS, 3))
    lm[:468, 0] = W / 2 + FOCAL_PX * cam[:, 0] / depth
    lm[:468, 1] = H / 2 - FOCAL_PX * cam[:, 1] / depth
    lm[:468, 2] = (depth - depth.mean()) * FOCAL_PX / depth.mean()
    lm[468:473] = lm[[33, 133, 159, 145]].mean(0)  # right iris
    lm[473:478] = lm[[263, 362, 386, 374]].mean(0)  # left iris
    lm = lm.astype(np.float32)
    box = np.array([*lm[:, :2].min(0), *lm[:, :2].max(0)], np.float32)
    pose = HeadPose(rotation.astype(np.float32), np.array(translation_cm, np.float32))
    from tests.stream.conftest import _roi

    shapes = np.full(len(BLENDSHAPES), 0.2, np.float32)
    return Face(
        3, 0.9, box, lm, shapes, np.ones(len(BLENDSHAPES), bool), pose, _roi(box[:2], 100.0)
    )


def osf_solve_pnp(face: Face) -> tuple[np.ndarray, np.ndarray]:
    """What OpenSeeFace itself computes for this physical pose: solvePnP of its model on
    (row, column) points with its camera matrix. Returns (R, tvec in model units)."""
    model_k = OSF_CONTOUR * [-1.0, 1.0, 1.0]  # to kaocap's face model frame, cm scale
    cam = (
        model_k * OSF_CM_PER_UNIT @ face.pose.rotation.T.astype(np.float64)
        + face.pose.translation_cm
    )
    col = W / 2 + W * cam[:, 0] / -cam[:, 2]
    row = W / 2 + W * -cam[:, 1] / -cam[:, 2]  # OpenSeeFace uses cx = width / 2 for rows too
    camera = np.array([[W, 0, W / 2], [0, W, H / 2], [0, 0, 1]], np.float64)
    points = np.stack([row, col - W / 2 + H / 2], 1)
    ok, rvec, tvec = cv2.solvePnP(
        OSF_CONTOUR, points, camera, np.zeros(4), flags=cv2.SOLVEPNP_ITERATIVE
    )
    assert ok
    return cv2.Rodrigues(rvec)[0], tvec.ravel()


@pytest.mark.parametrize("euler", [(0, 0, 0), (25, 0, 0), (0, 15, 0), (0, 0, 10), (-20, 10, -8)])
def test_pose_matches_openseeface_solvepnp(euler) -> None:
    face = projected_face(euler, translation_cm=(3.0, -2.0, -60.0))
    quat, euler_deg, translation = osf_pose(face)
    r_osf, t_osf = osf_solve_pnp(face)
    x, y, z, w = quat
    np.testing.assert_allclose(quaternion_to_matrix(np.array([w, x, y, z])).T, r_osf, atol=1e-4)
    np.testing.assert_allclose(translation, t_osf, rtol=1e-3, atol=1e-3)
    rebuilt = cv2.RQDecomp3x3(r_osf)[0]  # same rotation, whichever Euler branch cv2 picks
    np.testing.assert_allclose(_euler_matrix(euler_deg), _euler_matrix(rebuilt), atol=1e-4)


def _euler_matrix(deg) -> np.ndarray:
    ax, ay, az = np.radians(deg)
    rx = cv2.Rodrigues(np.array([ax, 0.0, 0.0]))[0]
    ry = cv2.Rodrigues(np.array([0.0, ay, 0.0]))[0]
    rz = cv2.Rodrigues(np.array([0.0, 0.0, az]))[0]
    return rz @ ry @ rx


def test_packet_decoded_with_the_documented_layout() -> None:
    face = projected_face((15.0, -5.0, 3.0))
    result = FrameResult(5000, 125, (W, H), (face,))
    frame = sender_frame(result)
    with udp_receiver() as rx, OpenSeeFaceSender("127.0.0.1", rx.getsockname()[1]) as osf:
        osf.send(FrameResult(4960, 124, (W, H)))  # no face: nothing sent
        osf.send(result)
        data = rx.recv(65536)
    assert len(data) == PACKET_SIZE == 1785
    # The first fields by hand, as OpenSee.cs reads them.
    t, face_id, width, height, right_open, left_open = struct.unpack_from("<di4f", data)
    assert (face_id, width, height) == (3, W, H) and abs(t - time.time()) < 60
    assert (
        right_open == pytest.approx(0.8) and left_open == pytest.approx(0.8) and data[28] == 1
    )  # u8 "3D fit ok"
    (record,) = decode_openseeface(data)
    np.testing.assert_allclose(record.points_xy, face.landmarks[list(OSF_FROM_MESH), :2], atol=1e-3)
    np.testing.assert_allclose(record.confidence, 0.9, atol=1e-6)
    quat, euler, translation = osf_pose(face)
    np.testing.assert_allclose(record.euler_deg, euler, atol=1e-4)
    np.testing.assert_allclose(record.quaternion_xyzw, quat, atol=1e-6)
    np.testing.assert_allclose(record.translation, translation, atol=1e-5)
    assert list(record.features) == list(OSF_FEATURES)
    for name, value in osf_features(frame).items():
        assert record.features[name] == pytest.approx(value, abs=1e-6)
    assert record.features["eye_l"] == pytest.approx(-0.0) and record.features[
        "mouth_open"
    ] == pytest.approx(0.2)


def test_3d_points_in_openseeface_model_frame() -> None:
    def record(euler, distance_cm):
        face = projected_face(euler, translation_cm=(0.0, 0.0, -distance_cm))
        return decode_openseeface(
            encode_openseeface(sender_frame(FrameResult(0, 0, (W, H), (face,))), (W, H))
        )[0]

    frontal = record((0, 0, 0), 50.0)
    pts = frontal.points_3d * [1.0, -1.0, -1.0]  # undo the wire's (x, -y, -z)
    assert np.abs(pts[30]).max() < 1e-6  # origin at the nose tip
    assert pts[36, 0] > 0.25 and pts[45, 0] < -0.25  # right eye at +x (subject's right)
    assert np.linalg.norm(pts[36] - pts[45]) == pytest.approx(0.6596, abs=1e-3)
    assert (
        pts[19, 1] > pts[37, 1] > pts[30, 1] > pts[51, 1] > pts[8, 1]
    )  # brow, eye, nose, lip, chin
    assert pts[68, 2] < pts[36, 2] and pts[69, 2] < pts[45, 2]  # eyeballs behind the eyes
    np.testing.assert_allclose(pts[66], (pts[36] + pts[39]) / 2, atol=0.05)  # pupils
    # Un-rotated: the same model points whatever the pose (far away, where perspective is weak).
    far, turned = record((0, 0, 0), 500.0), record((30, 10, -5), 500.0)
    np.testing.assert_allclose(turned.points_3d, far.points_3d, atol=0.01)


def test_bad_packets() -> None:
    for bad in (b"", b"\x00" * (PACKET_SIZE - 1), b"\x00" * (PACKET_SIZE + 1)):
        with pytest.raises(InputError):
            decode_openseeface(bad)
    assert len(decode_openseeface(b"\x00" * (2 * PACKET_SIZE))) == 2
