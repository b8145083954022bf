import numpy as np
import pytest
from onnx import helper

from kaocap.export import parity
from kaocap.export._onnx import run_model
from kaocap.export.fuse import GraphError, add_outputs, select_by_mask
from tests.export._graphs import F, affine_relu, model, ops


def _branches():
    return affine_relu(scale=2.0), affine_relu(scale=-3.0)


def _reference(feeds):
    a, b = (run_model(m, {"x": feeds["x"]})["y"] for m in _branches())
    return {"y": np.where(feeds["mask"][:, None], a, b)}


def test_each_sample_takes_its_branch():
    fused = select_by_mask(*_branches())
    assert ops(fused) == {"Mul": 2, "Add": 2, "Relu": 2, "Reshape": 1, "Where": 1}
    assert [i.name for i in fused.graph.input] == ["x", "mask"]
    assert [o.name for o in fused.graph.output] == ["y"]
    x = np.linspace(-2, 2, 15, dtype=np.float32).reshape(5, 3)
    masks = [np.array([True, False, True, False, False]), np.ones(5, bool), np.zeros(5, bool)]
    parity.check(_reference, fused, [{"x": x, "mask": m} for m in masks], 0.0)


def test_mask_computed_by_a_branch():
    front = add_outputs(model(
        [helper.make_node("Relu", ["x"], ["y"]),
         helper.make_node("ReduceMax", ["x"], ["peak"], axes=[1], keepdims=0),
         helper.make_node("Less", ["peak", "one"], ["is_front"])],
        [("x", F, ["N", 3])], [("y", F, ["N", 3])], [("one", np.array(1.0, np.float32))], opset=17,
    ), [])  # fmt: skip
    rear = affine_relu(scale=-1.0)
    fused = select_by_mask(front, rear, mask="a/is_front")
    assert [i.name for i in fused.graph.input] == ["x"]
    x = np.array([[0.5, 0.2, -1], [3, 0, 0]], np.float32)
    y = run_model(fused, {"x": x})["y"]
    np.testing.assert_allclose(y[0], np.maximum(x[0], 0))
    np.testing.assert_allclose(y[1], run_model(rear, {"x": x[1:]})["y"][0])


def test_branches_must_agree():
    other = model([helper.make_node("Relu", ["z"], ["y"])], [("z", F, ["N", 3])], [("y", F, ["N", 3])])
    with pytest.raises(GraphError, match="same inputs"):
        select_by_mask(affine_relu(), other)
