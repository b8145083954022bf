"""Head ROIs (kaocap.pose.head): upright at every yaw where the eye-line ROI flips, and the
``roi`` output round trip between a crop and the image."""

from __future__ import annotations

import math

import numpy as np
import pytest

from kaocap.landmarks.process import roi_from_landmarks
from kaocap.pose.head import apply_roi, head_rois, relative_roi, up_angle
from kaocap.pose.process import load_face_geometry
from kaocap.types import Roi, euler_to_matrix


def _view(yaw: float, pitch: float = 0.0, roll: float = 0.0):
    """MediaPipe's canonical face (cm) turned by the Euler angles, seen orthographically at
    10 px/cm about (300, 200): (image points (468, 2) px, y down; the rotation)."""
    rotation = euler_to_matrix(yaw, pitch, roll)
    cam = load_face_geometry().canonical @ rotation.T
    return np.stack([300 + 10 * cam[:, 0], 200 - 10 * cam[:, 1]], axis=1), rotation


@pytest.mark.parametrize("roll", [-30.0, 0.0, 25.0])
def test_frontal_head_roi_matches_mediapipe_roi(roll):
    points, rotation = _view(5.0, -5.0, roll)
    face = roi_from_landmarks(points)
    cx, cy, side, theta = head_rois(points[None], rotation[None])[0]
    assert math.degrees(abs(theta - face.rotation_rad)) < 3.0
    assert np.hypot(cx - face.center_xy[0], cy - face.center_xy[1]) < 0.05 * side
    assert abs(side / face.size_wh[0] - 1) < 0.25  # MediaPipe boxes the points on image axes


def test_head_roi_stays_upright_through_a_turn():
    """Over a full turn with a 10 deg roll, the head ROI's rotation follows the projected up
    axis (the roll, seen as a nod at the profiles) and its side changes smoothly; the eye-line
    ROI spins to the opposite angle behind the head."""
    thetas, sides, eye, yaws = [], [], [], np.arange(-180, 181, 5)
    for yaw in yaws:
        points, rotation = _view(float(yaw), 0.0, 10.0)
        _, _, side, theta = head_rois(points[None], rotation[None])[0]
        thetas.append(theta)
        sides.append(side)
        eye.append(roi_from_landmarks(points).rotation_rad)
    # The head's up axis Ry(yaw) Rz(roll) e_y seen on the image: (-sin r cos y, cos r), and an
    # ROI angle is clockwise as the viewer sees it.
    r = math.radians(10)
    expected = np.arctan2(-math.sin(r) * np.cos(np.radians(yaws)), math.cos(r))
    np.testing.assert_allclose(thetas, expected, atol=1e-9)
    assert np.abs(np.diff(sides) / np.array(sides[:-1])).max() < 0.1
    assert math.degrees(abs(abs(eye[0]) - math.pi)) < 15  # behind the head the eye line flips


def test_up_angle_is_the_roll_of_a_frontal_face():
    assert math.degrees(up_angle(euler_to_matrix(0, 0, -20)[None])[0]) == pytest.approx(20, abs=1e-6)


def test_relative_then_apply_gives_the_target_back():
    rng = np.random.default_rng(0)
    crops = np.column_stack([rng.uniform(100, 400, (20, 2)), rng.uniform(50, 200, 20), rng.uniform(-3, 3, 20)])
    targets = crops + np.column_stack([rng.normal(0, 20, (20, 2)), np.zeros(20), rng.normal(0, 0.3, 20)])
    targets[:, 2] = crops[:, 2] * rng.uniform(0.8, 1.25, 20)
    outputs = relative_roi(targets, crops)
    for crop, target, out in zip(crops, targets, outputs):
        roi = apply_roi(Roi(crop[:2].astype(np.float32), np.full(2, crop[2], np.float32), float(crop[3])), out)
        np.testing.assert_allclose(roi.center_xy, target[:2], atol=1e-3)
        assert roi.size_wh[0] == pytest.approx(target[2], rel=1e-5)
        assert math.cos(roi.rotation_rad - target[3]) == pytest.approx(1.0, abs=1e-9)


def test_relative_roi_is_what_the_crop_sees():
    """A target 10% of the side to the crop's right, in a crop turned 90 deg clockwise, is
    straight below the crop centre in the image."""
    crop = np.array([[200.0, 100.0, 50.0, math.pi / 2]])
    out = relative_roi(np.array([[200.0, 105.0, 50.0, math.pi / 2]]), crop)[0]
    np.testing.assert_allclose(out, [0.1, 0.0, 0.0, 0.0], atol=1e-6)
