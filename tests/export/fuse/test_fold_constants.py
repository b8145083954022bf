import numpy as np
from onnx import helper

from kaocap.export import parity
from kaocap.export.fuse import fold_constants
from tests.export._graphs import F, constant_chain, model, ops

X = {"x": np.linspace(-2, 2, 12, dtype=np.float32).reshape(4, 3)}


def test_constant_subgraph_becomes_one_initializer():
    before = constant_chain()
    after = fold_constants(before)
    assert ops(before) == {"Constant": 1, "Add": 1, "Sqrt": 1, "Mul": 1, "Relu": 1}
    assert ops(after) == {"Mul": 1, "Relu": 1}
    assert [t.name for t in after.graph.initializer] == ["s"]
    parity.check(before, after, X, 0.0)


def test_random_ops_and_graph_outputs_are_not_folded():
    before = model(
        [helper.make_node("RandomUniform", [], ["r"], shape=[3], seed=1.0),
         helper.make_node("Add", ["x", "r"], ["y"]),
         helper.make_node("Relu", ["k"], ["kr"]),
         helper.make_node("Mul", ["y", "kr"], ["z"])],
        [("x", F, [3])], [("z", F, [3])], [("k", np.array([1.0, -1.0, 2.0], np.float32))],
    )  # fmt: skip
    after = fold_constants(before)
    assert ops(after) == {"RandomUniform": 1, "Add": 1, "Mul": 1}


def test_nothing_to_fold_returns_an_equal_copy():
    m = fold_constants(constant_chain())
    assert fold_constants(m) == m
