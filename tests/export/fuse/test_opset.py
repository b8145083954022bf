import numpy as np
import pytest

from kaocap.export import parity
from kaocap.export.fuse import GraphError, change_opset, fold_constants
from kaocap.export.fuse._graph import opset
from tests.export._graphs import ops, two_heads

X = {"x": np.linspace(-2, 2, 12, dtype=np.float32).reshape(4, 3)}


@pytest.mark.parametrize("version", [13, 17, 21])
def test_upgrade_keeps_outputs(version):
    before = two_heads(opset=11)  # ReduceSum's axes: an attribute at 11, an input from 13
    after = change_opset(before, version)
    assert opset(after) == version
    assert ops(before) == {"Relu": 1, "Neg": 1, "Exp": 1, "ReduceSum": 1}
    assert ops(after) == {**ops(before), "Constant": 1}  # the axes, now an input
    reduce = next(n for n in after.graph.node if n.op_type == "ReduceSum")
    assert len(reduce.input) == 2 and not [a for a in reduce.attribute if a.name == "axes"]
    parity.check(before, after, X, 1e-6)
    folded = fold_constants(after)
    assert ops(folded) == ops(before)
    parity.check(before, folded, X, 1e-6)


def test_same_opset_is_a_copy_and_impossible_targets_raise():
    m = two_heads()
    assert change_opset(m, 17) == m and change_opset(m, 17) is not m
    with pytest.raises(GraphError, match="cannot convert"):
        change_opset(m, 1)
