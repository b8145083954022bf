import numpy as np
import pytest
from onnx import helper

from kaocap.export import parity
from kaocap.export._onnx import run_model
from kaocap.export.fuse import GraphError, blend_by_weight
from tests.export._graphs import F, affine_relu, model, ops


def _branches():
    return affine_relu(scale=2.0), affine_relu(scale=-3.0)


def test_each_sample_mixes_its_branches():
    fused = blend_by_weight(*_branches(), weight="w", blend=["y"], keep={"y_second": "b/y"})
    assert ops(fused) == {"Mul": 3, "Add": 3, "Relu": 2, "Sub": 1, "Reshape": 1, "Identity": 1}
    assert [i.name for i in fused.graph.input] == ["x", "w"]
    assert [o.name for o in fused.graph.output] == ["y", "y_second"]

    def reference(feeds):
        a, b = (run_model(m, {"x": feeds["x"]})["y"] for m in _branches())
        w = feeds["w"][:, None]
        return {"y": w * a + (1 - w) * b, "y_second": b}

    x = np.linspace(-2, 2, 15, dtype=np.float32).reshape(5, 3)
    weights = [np.array([0, 0.25, 0.5, 1, 0.9], np.float32), np.ones(5, np.float32), np.zeros(5, np.float32)]
    parity.check(reference, fused, [{"x": x, "w": w} for w in weights], 1e-6)


def test_weight_computed_by_a_branch():
    """The second branch says how much of the first to take (a DMHead-style range weight)."""
    rear = model(
        [helper.make_node("Neg", ["x"], ["y"]),
         helper.make_node("ReduceMax", ["x"], ["peak"], axes=[1], keepdims=0),
         helper.make_node("Clip", ["peak", "zero", "one"], ["front_weight"])],
        [("x", F, ["N", 3])], [("y", F, ["N", 3]), ("front_weight", F, ["N"])],
        [("zero", np.array(0.0, np.float32)), ("one", np.array(1.0, np.float32))],
    )  # fmt: skip
    front = model([helper.make_node("Relu", ["x"], ["y"]), helper.make_node("Relu", ["x"], ["front_weight"])],
                  [("x", F, ["N", 3])], [("y", F, ["N", 3]), ("front_weight", F, ["N", 3])])  # fmt: skip
    fused = blend_by_weight(front, rear, weight="b/front_weight", blend=["y"], keep={"w": "b/front_weight"})
    assert [i.name for i in fused.graph.input] == ["x"]
    x = np.array([[0.5, 0.2, -1], [3, 0, 0], [-1, -2, -3]], np.float32)
    out = run_model(fused, {"x": x})
    w = np.clip(x.max(axis=1), 0, 1)[:, None]
    np.testing.assert_allclose(out["y"], w * np.maximum(x, 0) + (1 - w) * -x, atol=1e-6)
    np.testing.assert_allclose(out["w"], w[:, 0])


def test_unknown_tensor_is_named():
    with pytest.raises(GraphError, match="no tensor 'b/nope'"):
        blend_by_weight(*_branches(), weight="w", blend=["y"], keep={"z": "b/nope"})
