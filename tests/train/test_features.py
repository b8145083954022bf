"""Geometric features, crop coordinates and rotation conventions of the learners."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from kaocap.blendshapes import features as F
from kaocap.blendshapes.learned import matrix_to_rotation_6d, rotation_6d_to_matrix
from kaocap.blendshapes.rules import RULES, RuleSolver, cues, frame_rotation
from kaocap.constants import BLENDSHAPES
from kaocap.types import Roi, euler_to_matrix, matrix_to_euler


@pytest.fixture(scope="module")
def face(tiny_dataset):
    """One real face: (478, 3) crop px landmarks and its sample's labels."""
    from kaocap.train.samples import load_samples

    return load_samples([tiny_dataset], "test", with_crops=False)


def _similarity(mesh, scale, shift):
    out = mesh * scale
    out[..., :2] += shift
    return out


@given(st.floats(0.2, 5.0), st.floats(-500, 500), st.floats(-500, 500))
@settings(max_examples=25, deadline=None)
def test_features_ignore_image_translation_and_scale(face, scale, dx, dy):
    mesh = face.mesh[:3].astype(np.float64) * 300
    moved = _similarity(mesh, scale, np.array([dx, dy]))
    np.testing.assert_allclose(F.geometric_features(moved), F.geometric_features(mesh), atol=2e-5)
    np.testing.assert_allclose(F.normalise_mesh(moved), F.normalise_mesh(mesh), atol=2e-5)


def test_in_plane_rotation_only_moves_the_pose_features(face):
    mesh = face.mesh[:2].astype(np.float64)
    angle = np.radians(30)
    r2 = np.array([[np.cos(angle), -np.sin(angle)], [np.sin(angle), np.cos(angle)]])
    turned = mesh.copy()
    turned[..., :2] = mesh[..., :2] @ r2.T
    a, b = F.geometric_features(mesh), F.geometric_features(turned)
    k = F.NUM_POSE_FEATURES
    np.testing.assert_allclose(a[:, :-k], b[:, :-k], atol=1e-5)
    assert np.abs(a[:, -k:] - b[:, -k:]).max() > 0.1


def test_landmarks_to_crop_follows_the_roi():
    rng = np.random.default_rng(0)
    pts = np.column_stack([rng.uniform(100, 200, 478), rng.uniform(50, 150, 478), rng.uniform(-20, 20, 478)])
    roi = Roi(np.array([150.0, 100.0], np.float32), np.array([160.0, 160.0], np.float32), 0.3)
    moved = Roi(roi.center_xy * 2 + 7, roi.size_wh * 2, 0.3)
    pts2 = pts * 2
    pts2[:, :2] += 7
    np.testing.assert_allclose(F.landmarks_to_crop(pts2, moved), F.landmarks_to_crop(pts, roi), atol=1e-5)
    centre = F.landmarks_to_crop(np.array([[150.0, 100.0, 0.0]] * 478), roi)
    np.testing.assert_allclose(centre[0, :2], [0.5, 0.5], atol=1e-6)


angles = st.tuples(st.floats(-179, 179), st.floats(-89.9, 89.9), st.floats(-179, 179))


@given(angles)
@settings(max_examples=50, deadline=None)
def test_6d_round_trip(ypr):
    r = euler_to_matrix(*ypr)[None]
    np.testing.assert_allclose(rotation_6d_to_matrix(matrix_to_rotation_6d(r)), r, atol=1e-6)


@given(st.lists(st.floats(-3, 3), min_size=6, max_size=6))
@settings(max_examples=50, deadline=None)
def test_6d_gives_a_rotation(values):
    x = np.array(values)[None]
    if np.linalg.norm(x[0, :3]) < 1e-2 or np.linalg.norm(np.cross(x[0, :3], x[0, 3:])) < 1e-2:
        return
    r = rotation_6d_to_matrix(x)[0]
    np.testing.assert_allclose(r.T @ r, np.eye(3), atol=1e-9)
    assert np.linalg.det(r) == pytest.approx(1.0)


def test_6d_torch_matches_numpy():
    torch = pytest.importorskip("torch")
    from kaocap.train import nets

    x = np.random.default_rng(1).standard_normal((20, 6))
    np.testing.assert_allclose(nets.rotation_6d_to_matrix(torch.from_numpy(x)).numpy(), rotation_6d_to_matrix(x), atol=1e-9)
    r = rotation_6d_to_matrix(x)
    np.testing.assert_allclose(nets.matrix_to_rotation_6d(torch.from_numpy(r)).numpy(), matrix_to_rotation_6d(r), atol=1e-6)


@given(angles, st.floats(-3.1, 3.1))
@settings(max_examples=30, deadline=None)
def test_crop_rotation_round_trip(ypr, roi_angle):
    r = euler_to_matrix(*ypr)
    back = F.crop_to_camera_rotation(F.camera_to_crop_rotation(r, roi_angle), roi_angle)
    np.testing.assert_allclose(back, r, atol=1e-9)


def test_crop_frame_removes_the_image_roll(face):
    """The ROI levels the eyes, so the roll seen in the crop frame varies far less than the roll
    in the camera frame (the tiny set's frames are rotated by up to 25 degrees); the opposite
    sign convention would double it instead."""
    roll = lambda rs: np.array([matrix_to_euler(r)[2] for r in rs])
    camera = F.crop_to_camera_rotation(face.rotation_crop, face.roi[:, 4])
    wrong = F.camera_to_crop_rotation(camera, -face.roi[:, 4])
    assert np.std(roll(camera)) > 10 and np.std(roll(face.rotation_crop)) < 0.5 * np.std(roll(camera))
    assert np.std(roll(wrong)) > 1.5 * np.std(roll(camera))


def test_augment_keeps_landmarks_and_rotation_consistent(face):
    """An affine crop moves the landmarks; the face frame they span turns by the same rotation
    that is applied to the label."""
    from kaocap.train.augment import AugmentConfig, affine_batch

    rng = np.random.default_rng(3)
    crops = np.zeros((len(face), 128, 128, 3), np.uint8)
    _, lm, rot = affine_batch(crops, face.mesh, face.rotation_crop, rng, AugmentConfig(rotation_deg=20))
    delta = rot @ np.transpose(face.rotation_crop, (0, 2, 1))  # Rz(delta) per sample
    frames = frame_rotation(lm) @ np.transpose(frame_rotation(face.mesh), (0, 2, 1))
    np.testing.assert_allclose(frames, delta, atol=2e-3)


def test_rules_recover_linear_ranges():
    rng = np.random.default_rng(0)
    feats = rng.standard_normal((200, F.NUM_FEATURES))
    c = cues(feats)
    lo, hi = -0.5, 1.5
    labels = np.clip(np.nan_to_num((c - lo) / (hi - lo)), 0, 1)
    valid = (labels > 0) & (labels < 1)  # the linear part only
    meshes = np.zeros((200, 478, 3))
    solver = RuleSolver()
    solver.lo[:] = np.nan
    fitted = RuleSolver().fit(feats, labels, valid, np.tile(np.eye(3), (200, 1, 1)), meshes + np.eye(3)[None, :1])
    for j, name in enumerate(BLENDSHAPES):
        if name in RULES and RULES[name][1] > 0:
            assert fitted.lo[j] == pytest.approx(lo, abs=1e-6) and fitted.hi[j] == pytest.approx(hi, abs=1e-6)
    assert not fitted.valid[BLENDSHAPES.index("tongueOut")]
    again = RuleSolver.from_dict(fitted.to_dict())
    np.testing.assert_array_equal(again.lo, fitted.lo)


def test_inference_and_eval_never_import_torch():
    import subprocess
    import sys

    code = ("import sys, kaocap.blendshapes.learned, kaocap.blendshapes.rules, kaocap.eval.learners, "
            "kaocap.eval.learners_report, kaocap.train.cli; sys.exit('torch' in sys.modules)")  # fmt: skip
    assert subprocess.run([sys.executable, "-c", code], check=False).returncode == 0
