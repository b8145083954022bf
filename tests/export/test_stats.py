import numpy as np
from onnx import helper

from kaocap.export.stats import graph_stats
from tests.export._graphs import F, constant_chain, model


def _layout_sandwich():
    """x NHWC -> Transpose -> Relu -> Transpose -> Transpose(back) -> y: one Transpose in the body."""
    return model(
        [helper.make_node("Transpose", ["x"], ["nchw"], perm=[0, 3, 1, 2]),
         helper.make_node("Relu", ["nchw"], ["r"]),
         helper.make_node("Transpose", ["r"], ["t"], perm=[0, 1, 3, 2]),
         helper.make_node("Transpose", ["t"], ["y"], perm=[0, 2, 3, 1])],
        [("x", F, ["N", 4, 4, 3])], [("y", F, ["N", 4, 4, 3])],
    )  # fmt: skip


def test_histogram_transposes_parameters_and_size(tmp_path):
    stats = graph_stats(_layout_sandwich())
    assert stats.op_histogram == {"Transpose": 3, "Relu": 1}
    assert (stats.transposes, stats.transposes_at_io, stats.transposes_in_body) == (3, 2, 1)
    assert stats.inputs == (("x", ("N", 4, 4, 3)),)
    path = tmp_path / "c.onnx"
    path.write_bytes(constant_chain().SerializeToString())
    stats = graph_stats(path)
    assert stats.parameters == 6 and stats.file_size_bytes == path.stat().st_size
    text = stats.format()
    assert "Transpose: 0" in text and "6 parameters" in text and "Constant 1" in text
    assert stats.to_dict()["op_histogram"]["Mul"] == 1
    assert np.isclose(stats.to_dict()["file_size_bytes"], path.stat().st_size)
