"""``kaocap fuse-headpose``: kaocap's face model (front range) and head model (full range) as ONE
ONNX graph, DMHead-style, with dynamic batch N.

Both branches read the same input, ``image`` (N, 3, 128, 128) RGB 0..1. The fused graph returns

=================  ==========  =====================================================
output             from        meaning
=================  ==========  =====================================================
``rotation_6d``    both        unit 6D head rotation as the crop sees it, the front
                               and full-range branches mixed by ``face_visible``
``face_visible``   full range  0..1 weight of the front branch (kaocap.pose.fusion)
``blendshapes``    front       (N, 52) 0..1, meaningful while the face is visible
``translation_cm`` front       (N, 3)
``landmarks``      front       (N, 478, 3) crop-normalised
``roi``            full range  (N, 4) where the head ROI is (kaocap.pose.head)
``presence``       full range  (N,) 0..1, a head in the crop
=================  ==========  =====================================================

It is built from the generic passes (``merge``, ``blend_by_weight``) and two small graphs
written here with ``onnx.helper`` (unit 6D, the front weight), and written only once it matches
the two networks run apart plus :func:`kaocap.pose.fusion.fuse_rotations` within 1e-3.

>>> fuse_head_pose_files(front_onnx, head_onnx, "headpose.onnx")   # doctest: +SKIP
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from pathlib import Path

import numpy as np
from numpy.typing import NDArray
from onnx import ModelProto, TensorProto, helper, numpy_helper

from kaocap.export import parity
from kaocap.export._onnx import load_model
from kaocap.export.fuse import GraphError, blend_by_weight, merge, set_batch
from kaocap.export.fuse._graph import opset, rename_tensors
from kaocap.pose import fusion

#: Outputs of the fused graph, in order.
OUTPUTS = ("rotation_6d", "face_visible", "blendshapes", "translation_cm", "landmarks", "roi", "presence")
_FRONT_KEEP = ("blendshapes", "translation_cm", "landmarks")
_REAR_KEEP = ("roi", "presence")


def _unit_6d_graph(version: int) -> ModelProto:
    """rotation_6d (N, 6) -> rotation_unit (N, 6): each 3-vector at unit length."""
    shapes = [numpy_helper.from_array(np.array(s, np.int64), n) for n, s in (("pairs", [-1, 2, 3]), ("flat", [-1, 6]))]
    nodes = [helper.make_node("Reshape", ["rotation_6d", "pairs"], ["unit/pairs"], name="unit/reshape"),
             helper.make_node("LpNormalization", ["unit/pairs"], ["unit/normed"], axis=2, p=2, name="unit/norm"),
             helper.make_node("Reshape", ["unit/normed", "flat"], ["rotation_unit"], name="unit/flatten")]  # fmt: skip
    graph = helper.make_graph(nodes, "unit_6d", [helper.make_tensor_value_info("rotation_6d", TensorProto.FLOAT, ["N", 6])],
                              [helper.make_tensor_value_info("rotation_unit", TensorProto.FLOAT, ["N", 6])], shapes)  # fmt: skip
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", version)])


def _front_weight_graph(version: int) -> ModelProto:
    """rotation_unit (N, 6) -> front_weight (N,): kaocap.pose.fusion.front_weight."""
    lo, hi = math.cos(math.radians(fusion.REAR_FULL_DEG)), math.cos(math.radians(fusion.FRONT_FULL_DEG))
    consts = {"cols": np.array([[0, 4], [1, 3]], np.int64), "lo": np.array(lo, np.float32),
              "inv_range": np.array(1 / (hi - lo), np.float32), "zero": np.array(0, np.float32),
              "one": np.array(1, np.float32)}  # fmt: skip
    nodes = [
        helper.make_node("Gather", ["rotation_unit", "cols"], ["w/pairs"], axis=1, name="w/gather"),  # (N, 2, 2)
        helper.make_node("ReduceProd", ["w/pairs"], ["w/products"], axes=[2], keepdims=0, name="w/prod"),  # (N, 2)
        helper.make_node("Split", ["w/products"], ["w/p0", "w/p1"], axis=1, num_outputs=2, name="w/split")
        if version >= 18 else helper.make_node("Split", ["w/products"], ["w/p0", "w/p1"], axis=1, name="w/split"),
        helper.make_node("Sub", ["w/p0", "w/p1"], ["w/facing2d"], name="w/facing"),  # (b1 x b2)_z = R[2, 2]
        helper.make_node("Squeeze", ["w/facing2d", "axis1"], ["w/facing"], name="w/squeeze"),
        helper.make_node("Sub", ["w/facing", "lo"], ["w/shifted"], name="w/shift"),
        helper.make_node("Mul", ["w/shifted", "inv_range"], ["w/ramp"], name="w/scale"),
        helper.make_node("Clip", ["w/ramp", "zero", "one"], ["front_weight"], name="w/clip"),
    ]  # fmt: skip
    inits = [numpy_helper.from_array(v, k) for k, v in {**consts, "axis1": np.array([1], np.int64)}.items()]
    graph = helper.make_graph(nodes, "front_weight", [helper.make_tensor_value_info("rotation_unit", TensorProto.FLOAT, ["N", 6])],
                              [helper.make_tensor_value_info("front_weight", TensorProto.FLOAT, ["N"])], inits)  # fmt: skip
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", version)])


def _with_unit_rotation(branch: ModelProto, scope: str, weight: bool = False) -> ModelProto:
    """``branch`` plus the output ``rotation_unit`` (and ``front_weight`` when ``weight``)."""
    version = opset(branch)
    model = merge(branch, _unit_6d_graph(version), {"rotation_6d": "rotation_6d"}, prefixes=("", scope))
    model = _rename_output(model, scope + "rotation_unit", "rotation_unit")
    if weight:
        model = merge(model, _front_weight_graph(version), {"rotation_unit": "rotation_unit"}, prefixes=("", scope + "w/"))
        model = _rename_output(model, scope + "w/front_weight", "front_weight")
    return model


def _rename_output(model: ModelProto, old: str, new: str) -> ModelProto:
    rename_tensors(model.graph, {old: new})
    return model


def fuse_head_pose(front: ModelProto | str | Path, rear: ModelProto | str | Path) -> ModelProto:
    """The fused graph (module docstring) of a face model with a landmark head (``front``) and a
    head model (``rear``, outputs ``roi`` and ``presence``)."""
    front, rear = load_model(front), load_model(rear)
    for model, needed, role in ((front, _FRONT_KEEP, "front (face model)"), (rear, _REAR_KEEP, "rear (head model)")):
        names = {o.name for o in model.graph.output}
        missing = [n for n in (*needed, "rotation_6d") if n not in names]
        if missing:
            raise GraphError(f"the {role} branch has no output {', '.join(missing)}")
    a = _with_unit_rotation(front, "front_unit/")
    b = _with_unit_rotation(rear, "rear_unit/", weight=True)
    keep = {"face_visible": "b/front_weight", **{n: f"a/{n}" for n in _FRONT_KEEP}, **{n: f"b/{n}" for n in _REAR_KEEP}}
    fused = blend_by_weight(a, b, weight="b/front_weight", blend=["rotation_unit"], keep=keep)
    fused = _rename_output(fused, "rotation_unit", "rotation_6d")
    order = {name: i for i, name in enumerate(OUTPUTS)}
    outputs = sorted(fused.graph.output, key=lambda o: order[o.name])
    del fused.graph.output[:]
    fused.graph.output.extend(outputs)
    fused = set_batch(fused, "N")
    del fused.metadata_props[:]
    fused.producer_name = "kaocap"
    return fused


def unfused_head_pose(front, rear):
    """The reference: both networks run apart (anything :func:`kaocap.export.parity.as_callable`
    runs), then :func:`kaocap.pose.fusion.fuse_rotations`."""
    run_front, run_rear = parity.as_callable(front), parity.as_callable(rear)

    def run(feeds: Mapping[str, NDArray]) -> dict[str, NDArray]:
        a, b = run_front(feeds), run_rear(feeds)
        rotation, weight = fusion.fuse_rotations(a["rotation_6d"], b["rotation_6d"])
        out = {"rotation_6d": rotation, "face_visible": weight}
        out.update({n: a[n] for n in _FRONT_KEEP})
        out.update({n: b[n] for n in _REAR_KEEP})
        return out

    return run


def example_inputs(seed: int = 0) -> list[dict[str, NDArray[np.float32]]]:
    """Parity feeds: the embedded portrait's face crop turned through 8 in-plane angles (the
    head model's weight then sweeps its range) as one batch, and its first row alone."""
    import cv2

    from kaocap.capture import default_image
    from kaocap.types import Roi

    image, crops = default_image(), []
    for k in range(8):
        roi = Roi(np.array([256, 200], np.float32), np.array([240, 240], np.float32), k * math.pi / 4)
        crops.append(cv2.warpAffine(image, roi.crop_matrix(128), (128, 128), borderMode=cv2.BORDER_REPLICATE))
    rng = np.random.default_rng(seed)
    batch = np.stack(crops).transpose(0, 3, 1, 2).astype(np.float32) / 255
    noise = rng.random((2, 3, 128, 128), dtype=np.float32)  # no head at all
    batch = np.concatenate([batch, noise])
    return [{"image": batch}, {"image": batch[:1]}]


def fuse_head_pose_files(front: str | Path, rear: str | Path, out: str | Path, *, tolerance: float = 1e-3,
                         runtimes: tuple[str, ...] = ()) -> parity.ParityReport:  # fmt: skip
    """Build, check against :func:`unfused_head_pose` and write the fused graph; also compare
    the written file on ``runtimes`` (removed if one disagrees)."""
    fused = fuse_head_pose(front, rear)
    reference = unfused_head_pose(front, rear)
    report = parity.save_checked(fused, out, reference, example_inputs(), tolerance)
    for runtime in runtimes:
        from kaocap.runtime import open_session

        try:
            parity.check(reference, open_session(out, runtime), example_inputs(), tolerance)
        except parity.ParityError:
            Path(out).unlink(missing_ok=True)
            raise
    return report
