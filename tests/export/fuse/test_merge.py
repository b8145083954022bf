import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from kaocap.export import parity
from kaocap.export._onnx import run_model
from kaocap.export.fuse import GraphError, merge
from tests.export._graphs import affine_relu, ops, two_heads

X = {"x": np.linspace(-2, 2, 12, dtype=np.float32).reshape(4, 3)}


def _chained(feeds):
    y = run_model(affine_relu(), feeds)["y"]
    return {"head/a": run_model(two_heads(), {"x": y})["a"], "y": y}


def test_chain_an_output_into_an_input():
    fused = merge(affine_relu(), two_heads(), {"x": "y"}, prefixes=("", "head/"))
    assert ops(fused) == {"Mul": 1, "Add": 1, "Relu": 2, "Neg": 1, "Exp": 1, "ReduceSum": 1}
    assert [i.name for i in fused.graph.input] == ["x"]
    assert [o.name for o in fused.graph.output] == ["y", "head/a", "head/b"]
    parity.check(_chained, fused, X, 1e-6)


def test_share_one_input():
    fused = merge(affine_relu(), two_heads(), {"x": "x"}, prefixes=("", "h/"))
    assert [i.name for i in fused.graph.input] == ["x"]
    out = run_model(fused, X)
    np.testing.assert_allclose(out["h/a"], run_model(two_heads(), X)["a"])
    np.testing.assert_allclose(out["y"], run_model(affine_relu(), X)["y"])


def test_name_clash_needs_prefixes_and_types_must_match():
    with pytest.raises(GraphError, match="prefixes"):
        merge(affine_relu(), affine_relu())
    with pytest.raises(GraphError, match="lacks"):
        merge(affine_relu(), two_heads(), {"x": "missing"}, prefixes=("", "h/"))


def test_lower_opset_is_raised():
    fused = merge(affine_relu(opset=13), two_heads(), {"x": "y"}, prefixes=("", "h/"))
    assert {o.domain: o.version for o in fused.opset_import}[""] == 17
    parity.check(_chained, fused, X, 1e-6, output_map={"head/a": "h/a"})


@settings(max_examples=25, deadline=None)
@given(hnp.arrays(np.float32, st.tuples(st.integers(1, 5), st.just(3)),
                  elements=st.floats(-100, 100, width=32)))
def test_merge_keeps_outputs_on_any_input(x):
    fused = merge(affine_relu(), two_heads(), {"x": "y"}, prefixes=("", "head/"))
    parity.check(_chained, fused, {"x": x}, 1e-6 * max(1.0, float(np.abs(x).max())))
