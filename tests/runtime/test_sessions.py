"""The runtime layer: every installed runtime loads every model and agrees; errors are one line."""

from __future__ import annotations

import numpy as np
import pytest

from kaocap.capture import default_image
from kaocap.errors import ModelError, RuntimeNotAvailable
from kaocap.landmarks import process as lmk
from kaocap.models import model_path
from kaocap.runtime import available_runtimes, open_session, opencv_threads

TFLITE_RUNTIMES = [r for r in ("litert", "openvino") if r in available_runtimes()]


def _real_inputs(model_id: str) -> dict[str, np.ndarray]:
    """Network inputs made from the embedded portrait: a real face, not noise."""
    image = default_image()
    if model_id == "mediapipe_face_detector":
        from kaocap.detect.process import letterbox

        return {"input": letterbox(image)[0]}
    from kaocap import Pipeline
    from kaocap.config import PipelineConfig, TrackingConfig

    with Pipeline(PipelineConfig(model="mediapipe", tracking=TrackingConfig(enabled=False))) as pipe:
        face = pipe(image, 1).faces[0]
    if model_id == "mediapipe_face_landmarks":
        return {"input_12": lmk.crop(image, [face.roi])}
    from kaocap.blendshapes.process import network_input

    return {"serving_default_input_points:0": network_input(face.landmarks)}


@pytest.mark.parametrize("model_id", ["mediapipe_face_detector", "mediapipe_face_landmarks", "mediapipe_face_blendshapes"])
def test_runtimes_agree_on_real_inputs(model_id):
    if len(TFLITE_RUNTIMES) < 2:
        pytest.skip("needs LiteRT and OpenVINO")
    feeds = _real_inputs(model_id)
    outputs = {}
    for runtime in TFLITE_RUNTIMES:
        session = open_session(model_path(model_id), runtime)
        assert [s.name for s in session.inputs] == list(feeds)
        outputs[runtime] = session.run(feeds)
    reference, other = outputs.values()
    for name, value in reference.items():
        scale = max(1.0, float(np.abs(value).max()))
        np.testing.assert_allclose(other[name], value, atol=1e-3 * scale, err_msg=name)


def _tiny_onnx(path):
    import onnx
    from onnx import TensorProto, helper

    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", 3])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, ["N", 3])
    w = helper.make_tensor("w", TensorProto.FLOAT, [3], [1.0, 2.0, 3.0])
    graph = helper.make_graph([helper.make_node("Mul", ["x", "w"], ["m"]), helper.make_node("Relu", ["m"], ["y"])],
                              "tiny", [x], [y], [w])  # fmt: skip
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    onnx.save(model, path)


@pytest.mark.parametrize("runtime", [r for r in ("onnxruntime", "openvino") if r in available_runtimes()])
def test_onnx_models_run_with_a_dynamic_batch(tmp_path, runtime):
    pytest.importorskip("onnx")
    path = tmp_path / "tiny.onnx"
    _tiny_onnx(path)
    session = open_session(path, runtime)
    assert session.inputs[0].shape == (-1, 3)
    for batch in (1, 4):
        x = np.arange(batch * 3, dtype=np.float32).reshape(batch, 3) - 2
        np.testing.assert_allclose(session.run({"x": x})["y"], np.maximum(x * [1, 2, 3], 0))


def test_missing_model_file(tmp_path):
    with pytest.raises(ModelError, match="not found"):
        open_session(tmp_path / "nope.tflite")


def test_corrupt_model_file(tmp_path):
    path = tmp_path / "broken.tflite"
    path.write_bytes(b"this is not a model")
    for runtime in TFLITE_RUNTIMES:
        with pytest.raises(ModelError, match="cannot load broken.tflite") as err:
            open_session(path, runtime)
        assert "\n" not in str(err.value)


def test_runtime_that_cannot_read_the_file():
    with pytest.raises(RuntimeNotAvailable, match="does not read .tflite"):
        open_session(model_path("mediapipe_face_detector"), "onnxruntime")
    with pytest.raises(RuntimeNotAvailable, match="unknown runtime"):
        open_session(model_path("mediapipe_face_detector"), "tensorrt")


def test_wrong_input_shape_is_a_clear_error():
    session = open_session(model_path("mediapipe_face_blendshapes"), TFLITE_RUNTIMES[0])
    with pytest.raises(ValueError, match="expects shape"):
        session.run({session.inputs[0].name: np.zeros((1, 145, 2), np.float32)})


def test_onnxruntime_pool_threads_sleep_when_idle(tmp_path):
    """Spinning pool threads cost 4x the CPU of the work itself in a loop paced at 30 fps."""
    pytest.importorskip("onnx")
    if "onnxruntime" not in available_runtimes():
        pytest.skip("needs onnxruntime")
    path = tmp_path / "tiny.onnx"
    _tiny_onnx(path)
    session = open_session(path, "onnxruntime", threads=2)
    options = session._sess.get_session_options()
    assert options.intra_op_num_threads == 2
    for pool in ("intra_op", "inter_op"):
        assert options.get_session_config_entry(f"session.{pool}.allow_spinning") == "0"
    x = np.array([[-1.0, 0.5, 2.0]], np.float32)
    np.testing.assert_allclose(session.run({"x": x})["y"], [[0.0, 1.0, 6.0]])


def test_opencv_threads_caps_the_pool_and_restores_it():
    import cv2

    before = cv2.getNumThreads()
    with opencv_threads(1):
        assert cv2.getNumThreads() == 1
    assert cv2.getNumThreads() == before
    with pytest.raises(RuntimeError), opencv_threads(1):
        raise RuntimeError("restored on errors too")
    assert cv2.getNumThreads() == before
    with pytest.raises(ValueError, match="threads must be >= 1"), opencv_threads(0):
        pass


def test_landmark_crop_is_the_same_with_one_opencv_thread():
    from kaocap.types import Roi

    image = default_image()
    rois = [Roi(np.array([250.0, 210.0], np.float32), np.array([300.0, 300.0], np.float32), 0.3)]
    pooled = lmk.crop(image, rois)
    with opencv_threads(1):
        single = lmk.crop(image, rois)
    np.testing.assert_array_equal(single, pooled)
