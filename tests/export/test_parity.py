import numpy as np
import onnx
import pytest

from kaocap.export import parity
from kaocap.export._onnx import example_feeds
from kaocap.export.parity import ParityError
from kaocap.runtime import open_session
from tests.export._graphs import affine_relu, two_heads

X = {"x": np.linspace(-2, 2, 12, dtype=np.float32).reshape(4, 3)}


def _numpy(feeds):
    return {"y": np.maximum(feeds["x"] * 2 + np.array([0.5, -0.5, 0.0], np.float32), 0)}


def test_model_against_numpy_callable_and_report():
    report = parity.check(_numpy, affine_relu(), X, 1e-6)
    assert report.ok and report.cases == 1 and set(report.max_abs_error) == {"y"}
    assert "ok" in str(report)


def test_difference_beyond_tolerance_raises_and_per_output_tolerance():
    shifted = lambda feeds: {"y": _numpy(feeds)["y"] + 0.01}
    with pytest.raises(ParityError, match="FAIL"):
        parity.check(_numpy, shifted, X, 1e-3)
    assert parity.check(_numpy, shifted, X, {"y": 0.02}).max_abs_error["y"] == pytest.approx(0.01, abs=1e-6)


def test_missing_outputs_and_shapes_raise():
    with pytest.raises(ParityError, match="no output to compare"):
        parity.check(_numpy, two_heads(), X)
    with pytest.raises(ParityError, match="missing"):
        parity.check(_numpy, affine_relu(), X, output_map=["y", "z"])
    with pytest.raises(ParityError, match="shape"):
        parity.check(_numpy, lambda f: {"y": _numpy(f)["y"][:2]}, X)


def test_nan_and_inf_equal_on_both_sides_are_no_error():
    value = {"y": np.array([np.nan, np.inf, 1.0])}
    assert parity.check(lambda f: value, lambda f: value, {}, 0.0).ok
    with pytest.raises(ParityError):
        parity.check(lambda f: value, lambda f: {"y": np.array([0.0, np.inf, 1.0])}, {}, 1.0)


def test_runtime_sessions_and_files(tmp_path):
    path = tmp_path / "m.onnx"
    parity.save_checked(affine_relu(), path, _numpy, [X, example_feeds(affine_relu(), batch=7)], 1e-5)
    for runtime in ("onnxruntime", "openvino"):
        parity.check(path, open_session(path, runtime), X, 1e-5)


def test_nothing_is_written_when_parity_fails(tmp_path):
    path = tmp_path / "bad.onnx"
    with pytest.raises(ParityError):
        parity.save_checked(affine_relu(scale=3.0), path, _numpy, X, 1e-3)
    assert not path.exists()
    broken = affine_relu()
    broken.graph.node[0].input[0] = "nowhere"
    with pytest.raises(ParityError, match="not valid"):
        parity.save_checked(broken, path, _numpy, X)
    assert not path.exists() and isinstance(broken, onnx.ModelProto)
