import numpy as np

from kaocap.export import parity
from kaocap.export.fuse import prefix_names
from tests.export._graphs import affine_relu, ops

X = {"x": np.linspace(-2, 2, 12, dtype=np.float32).reshape(4, 3)}


def test_prefix_renames_everything_but_kept_names_and_keeps_outputs():
    before = affine_relu()
    after = prefix_names(before, "p/", keep=["x"])
    assert ops(after) == ops(before) == {"Mul": 1, "Add": 1, "Relu": 1}
    assert [i.name for i in after.graph.input] == ["x"]
    assert [o.name for o in after.graph.output] == ["p/y"]
    assert {t.name for t in after.graph.initializer} == {"p/w", "p/b"}
    assert [n.name for n in after.graph.node] == ["p/mul", "p/add", "p/relu"]
    parity.check(before, after, X, 0.0, output_map={"y": "p/y"})


def test_prefix_is_pure_and_renames_inputs_without_keep():
    before = affine_relu()
    after = prefix_names(before, "q_")
    assert before.graph.input[0].name == "x"  # the input model is untouched
    parity.check(before, after, X, 0.0, input_map={"x": "q_x"}, output_map={"y": "q_y"})
