import numpy as np
import pytest

from kaocap.export import parity
from kaocap.export._onnx import run_model
from kaocap.export.fuse import GraphError, add_outputs, cut_outputs
from tests.export._graphs import affine_relu, ops, two_heads

X = {"x": np.linspace(-2, 2, 12, dtype=np.float32).reshape(4, 3)}


def test_add_outputs_exposes_an_intermediate_with_its_type():
    before = affine_relu()
    after = add_outputs(before, ["shifted", "y"])
    assert [o.name for o in after.graph.output] == ["y", "shifted"]
    assert ops(after) == ops(before)
    parity.check(before, after, X, 0.0)  # the old output is unchanged
    out = run_model(after, X)
    np.testing.assert_allclose(out["shifted"], X["x"] * 2 + np.array([0.5, -0.5, 0.0]), atol=1e-6)
    assert after.graph.output[1].type.tensor_type.shape.dim[1].dim_value == 3


def test_add_outputs_rejects_unknown_names():
    with pytest.raises(GraphError, match="nope"):
        add_outputs(affine_relu(), ["nope"])


def test_cut_outputs_prunes_the_dead_branch():
    before = two_heads()
    after = cut_outputs(before, ["b"])
    assert ops(before) == {"Relu": 1, "Neg": 1, "Exp": 1, "ReduceSum": 1}
    assert ops(after) == {"Relu": 1, "Neg": 1}
    assert [o.name for o in after.graph.output] == ["a"]
    assert not after.graph.initializer  # 'axes' only fed the cut branch
    parity.check(before, after, X, 0.0)


def test_cut_outputs_keeps_inputs_unless_asked_and_refuses_to_empty():
    m = add_outputs(two_heads(), ["h"])
    assert [i.name for i in cut_outputs(m, ["a", "b"]).graph.input] == ["x"]
    with pytest.raises(GraphError, match="empty"):
        cut_outputs(two_heads(), ["a", "b"])
    with pytest.raises(GraphError, match="not graph outputs"):
        cut_outputs(two_heads(), ["h"])
