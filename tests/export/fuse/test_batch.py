import numpy as np
import pytest

from kaocap.export import parity
from kaocap.export._onnx import value_shape
from kaocap.export.fuse import GraphError, set_batch
from kaocap.export.parity import ParityError
from tests.export._graphs import affine_relu, batch_one_reshape, ops


def _x(n: int) -> dict[str, np.ndarray]:
    return {"x": np.linspace(-1, 1, n * 12, dtype=np.float32).reshape(n, 2, 2, 3)}


def _reference(feeds):
    x = feeds["x"]
    w = np.arange(48, dtype=np.float32).reshape(12, 4) / 48
    return {"y": np.maximum(x, 0).reshape(len(x), 12) @ w}


def test_batch_one_export_becomes_dynamic_and_its_reshape_follows():
    before = batch_one_reshape()
    after = set_batch(before, "N")
    assert value_shape(after.graph.input[0]) == ("N", 2, 2, 3)
    assert value_shape(after.graph.output[0]) == ("N", 4)
    assert ops(after) == ops(before) == {"Relu": 1, "Reshape": 1, "MatMul": 1}
    parity.check(before, after, _x(1), 1e-6)
    parity.check(_reference, after, [_x(1), _x(3), _x(8)], 1e-5)


def test_fixed_batch():
    after = set_batch(affine_relu(), 4)
    assert value_shape(after.graph.input[0]) == (4, 3)
    parity.check(affine_relu(), after, {"x": np.ones((4, 3), np.float32)}, 0.0)


def test_without_fixing_reshapes_batch_two_fails_parity():
    after = set_batch(batch_one_reshape(), "N", fix_reshapes=False)
    with pytest.raises(ParityError, match="candidate fails to run"):  # the Reshape still asks for [1, 12]
        parity.check(_reference, after, _x(2), 1e-5)


def test_bad_batch_values():
    for bad in (0, -1, True, 1.5):
        with pytest.raises(GraphError):
            set_batch(affine_relu(), bad)
