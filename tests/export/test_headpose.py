"""The DMHead-style fused head-pose graph (kaocap.export.headpose): one ONNX file running kaocap's
face model and head model on the same crops, equal to the two run apart plus the numpy fusion."""

from __future__ import annotations

import math

import numpy as np
import pytest

pytest.importorskip("onnx")

from kaocap import models
from kaocap.export import headpose, parity
from kaocap.export.fuse import GraphError
from kaocap.pose import fusion
from kaocap.runtime import open_session


@pytest.fixture(scope="module")
def branches():
    return models.model_path(models.KAOCAP_FACE_MODEL), models.model_path(models.KAOCAP_HEAD_MODEL)


@pytest.fixture(scope="module")
def fused(branches, tmp_path_factory):
    path = tmp_path_factory.mktemp("headpose") / "headpose.onnx"
    report = headpose.fuse_head_pose_files(*branches, path, runtimes=("onnxruntime", "openvino"))
    return path, report


def test_fused_graph_equals_the_branches_run_apart(fused, branches):
    path, report = fused
    assert report.ok and set(report.max_abs_error) == set(headpose.OUTPUTS)
    session = open_session(path, "openvino")
    assert [o.name for o in session.outputs] == list(headpose.OUTPUTS)
    rng = np.random.default_rng(1)
    for n in (1, 3, 32):  # dynamic batch
        feeds = {"image": rng.random((n, 3, 128, 128), dtype=np.float32)}
        parity.check(headpose.unfused_head_pose(*branches), session, [feeds], 1e-3)


def test_a_wrong_fusion_is_caught(fused, branches, monkeypatch):
    """The parity check sees a reference that mixes the raw 6D outputs instead of unit ones
    (the reference is computed, not copied from the graph)."""
    path, _ = fused
    monkeypatch.setattr(fusion, "unit_6d", lambda x: np.asarray(x, np.float32).reshape(-1, 6))
    with pytest.raises(parity.ParityError, match="rotation_6d"):
        parity.check(headpose.unfused_head_pose(*branches), path, headpose.example_inputs(), 1e-3)


def test_front_weight_ramp():
    """1 up to FRONT_FULL_DEG between the face and camera axes, 0 from REAR_FULL_DEG, linear in
    the cosine between, and a continuous fused rotation across it."""
    from kaocap.blendshapes.learned import matrix_to_rotation_6d
    from kaocap.types import euler_to_matrix

    yaws = np.arange(-180, 181, 1.0)
    rear = matrix_to_rotation_6d(np.stack([euler_to_matrix(y, 0, 0) for y in yaws]))
    w = fusion.front_weight(rear)
    assert (w[np.abs(yaws) <= fusion.FRONT_FULL_DEG] == 1).all() and (w[np.abs(yaws) >= fusion.REAR_FULL_DEG] == 0).all()
    front = matrix_to_rotation_6d(np.stack([euler_to_matrix(y + 4, 0, 0) for y in yaws]))  # 4 deg apart
    fused, _ = fusion.fuse_rotations(front, rear)
    steps = np.degrees(np.arccos(np.clip((fused[1:, :3] * fused[:-1, :3]).sum(1) / np.linalg.norm(fused[1:, :3], axis=1)
                                         / np.linalg.norm(fused[:-1, :3], axis=1), -1, 1)))  # fmt: skip
    assert steps.max() < 1.5 and math.isclose(float(w[180]), 1.0)


def test_branches_need_their_outputs(branches):
    with pytest.raises(GraphError, match="rear .* no output roi"):
        headpose.fuse_head_pose(branches[0], branches[0])
