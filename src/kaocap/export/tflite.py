"""ONNX learner -> TFLite: fp32, fp16 weights, int8 (calibrated on real face crops).

onnx2tf turns the ONNX graph into an NHWC Keras model (no Transpose flood: it rewrites every
convolution, pooling and reduction for channels-last instead of wrapping each one in a pair of
Transposes); TensorFlow's converter then writes the flatbuffer with builtin ops only (no Flex
ops, so plain LiteRT runs it). Chosen over litert-torch by measurement (figures in
:mod:`kaocap.export.convert`): it reads the ONNX learner file itself, converts 4x faster, keeps
the batch dynamic and leaves no Transpose, where litert-torch leaves one and fixes batch 1.

Layout: a 4-D image input (N, C, H, W) becomes (N, H, W, C) in the TFLite file; every other
input and every output keeps its shape. Input and output tensors carry the ONNX names, and the
card is embedded as TFLite metadata under ``kaocap_card`` (:func:`read_metadata`).

Precisions: ``fp32``; ``fp16`` (fp16 weights, dequantised to fp32 at load: half the size, fp32
arithmetic); ``int8`` (int8 weights and activations, per-channel scales, activation ranges from
``calibration``; float32 input and output, so it is fed exactly as the fp32 file). On x86,
LiteRT's XNNPACK delegate takes no int8 HARD_SWISH (MobileNetV3's activation): the int8 graph
falls apart into 29 delegated pieces and runs 2-3x slower than fp32 (``blendshapes_cnn_s_lmk``,
1 thread: 2.2-2.7 ms against 0.8-1.1 ms). int8 buys size (1.8 MB against 5.8 MB), not speed here.

>>> keras = keras_model("blendshapes_cnn_s_lmk.onnx")                      # doctest: +SKIP
>>> blob = to_tflite(keras, ["image"], OUTPUTS, "int8", calibration=crops_nhwc)
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

from kaocap.errors import ModelError, RuntimeNotAvailable
from kaocap.export._onnx import EXTRA_HINT
from kaocap.runtime.litert import _quiet_stderr as quiet_stderr

PRECISIONS = ("fp32", "fp16", "int8")
METADATA_KEY = "kaocap_card"
#: TFLite's file identifier (flatbuffer schema).
_IDENTIFIER = b"TFL3"


def require_converter() -> tuple[Any, Any]:
    """``(onnx2tf, tensorflow)``, or RuntimeNotAvailable naming the extra that carries them."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")  # TensorFlow's C++ start-up chatter
    try:
        with quiet_stderr():  # "Could not find cuda drivers" and absl's preamble, every run
            import onnx2tf
            import tensorflow as tf
    except ImportError as exc:
        raise RuntimeNotAvailable(f"TFLite export needs onnx2tf and tensorflow ({EXTRA_HINT}): {exc}") from exc
    return onnx2tf, tf


def keras_model(onnx_path: str | Path) -> Any:
    """onnx2tf's NHWC Keras model of an ONNX file (no onnxsim pass; ``onnx_path`` is left as is)."""
    onnx2tf, _ = require_converter()
    with tempfile.TemporaryDirectory() as scratch:
        copy = Path(scratch) / "model.onnx"  # onnx2tf rewrites its input file (op names) in place
        shutil.copyfile(onnx_path, copy)
        try:
            return onnx2tf.convert(input_onnx_file_path=str(copy), output_folder_path=scratch,
                                   disable_model_save=True, not_use_onnxsim=True, non_verbose=True)  # fmt: skip
        except (Exception, SystemExit) as exc:  # onnx2tf exits the process on some failures
            raise ModelError(f"onnx2tf cannot convert {Path(onnx_path).name}: {_first_line(exc)}") from exc


def to_tflite(keras: Any, input_names: Sequence[str], output_names: Sequence[str], precision: str, *,
              calibration: Mapping[str, NDArray[np.float32]] | None = None) -> bytes:  # fmt: skip
    """The TFLite flatbuffer of ``keras`` at ``precision`` (one of PRECISIONS).

    input_names / output_names: the ONNX names, in the ONNX graph's order (onnx2tf keeps it);
    they become the TFLite tensor names, by position (the function converted returns a list,
    whose order the flatbuffer's outputs keep; parity against the ONNX file is what proves it).
    calibration: int8 only, by input name, in the TFLite layout (images (N, H, W, C) float32),
    one sample per row: real inputs, a few dozen to a few hundred.
    """
    _, tf = require_converter()
    if precision not in PRECISIONS:
        raise ValueError(f"precision must be one of {PRECISIONS}, got {precision!r}")
    if len(keras.inputs) != len(input_names) or len(keras.outputs) != len(output_names):
        raise ModelError(f"onnx2tf's model has {len(keras.inputs)} inputs and {len(keras.outputs)} outputs, "
                         f"the ONNX graph {len(input_names)} and {len(output_names)}")  # fmt: skip
    specs = [tf.TensorSpec(t.shape, t.dtype, name) for t, name in zip(keras.inputs, input_names)]
    serve = tf.function(lambda *x: list(keras(list(x))), input_signature=specs)
    # No trackable object: with one, TensorFlow round-trips a SavedModel (10x slower, same file).
    converter = tf.lite.TFLiteConverter.from_concrete_functions([serve.get_concrete_function()])
    converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS]
    if precision == "fp16":
        converter.optimizations = [tf.lite.Optimize.DEFAULT]
        converter.target_spec.supported_types = [tf.float16]
    elif precision == "int8":
        converter.optimizations = [tf.lite.Optimize.DEFAULT]
        converter.representative_dataset = _representative(calibration, input_names)
        converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
    try:
        with quiet_stderr():  # the quantiser prints its settings; errors come back in the exception
            blob = converter.convert()
    except Exception as exc:  # converter errors are long MLIR dumps: keep the first line
        raise ModelError(f"TFLite {precision} conversion failed: {_first_line(exc)}") from exc
    return _name_tensors(blob, input_names, output_names)


def convert_isolated(onnx_path: str | Path, input_names: Sequence[str], output_names: Sequence[str],
                     precisions: Sequence[str], *,
                     calibration: Mapping[str, NDArray[np.float32]] | None = None) -> dict[str, bytes]:  # fmt: skip
    """:func:`keras_model` then :func:`to_tflite` for each of ``precisions``, in a fresh process.

    TensorFlow cannot share a process with everything kaocap may have loaded before (importing it
    after MediaPipe, PyTorch or the GL renderer can crash the interpreter), so the conversion runs
    apart; errors come back as the same ModelError / RuntimeNotAvailable, a crash as ModelError.
    """
    import concurrent.futures as cf
    import multiprocessing

    _check_installed()
    context = multiprocessing.get_context("spawn")
    with cf.ProcessPoolExecutor(max_workers=1, mp_context=context) as pool:
        job = pool.submit(_convert, str(onnx_path), list(input_names), list(output_names), list(precisions),
                          None if calibration is None else dict(calibration))  # fmt: skip
        try:
            return job.result()
        except cf.process.BrokenProcessPool:
            raise ModelError(f"the TFLite converter crashed on {Path(onnx_path).name}") from None


def _check_installed() -> None:
    """RuntimeNotAvailable, as :func:`require_converter` raises it, without importing TensorFlow."""
    import importlib.util
    import sys

    for name in ("onnx2tf", "tensorflow"):
        if sys.modules.get(name, False) is None or (name not in sys.modules and importlib.util.find_spec(name) is None):
            raise RuntimeNotAvailable(f"TFLite export needs onnx2tf and tensorflow ({EXTRA_HINT}): no module named {name!r}")


def _convert(onnx_path: str, input_names: list[str], output_names: list[str], precisions: list[str],
             calibration: dict[str, NDArray[np.float32]] | None) -> dict[str, bytes]:  # fmt: skip
    keras = keras_model(onnx_path)
    return {p: to_tflite(keras, input_names, output_names, p, calibration=calibration) for p in precisions}


def _representative(calibration: Mapping[str, NDArray] | None, input_names: Sequence[str]):
    if not calibration or any(name not in calibration for name in input_names):
        raise ValueError(f"int8 needs calibration arrays for every input ({', '.join(input_names)})")
    count = min(len(calibration[name]) for name in input_names)
    if count == 0:
        raise ValueError("int8 calibration needs at least one sample")

    def samples():
        for i in range(count):
            yield [np.ascontiguousarray(calibration[name][i : i + 1], np.float32) for name in input_names]

    return samples


def _schema():
    from ai_edge_litert import schema_py_generated

    return schema_py_generated


def _load(blob: bytes):
    return _schema().ModelT.InitFromPackedBuf(bytearray(blob), 0)


def _pack(model) -> bytes:
    import flatbuffers

    builder = flatbuffers.Builder(1024)
    builder.Finish(model.Pack(builder), file_identifier=_IDENTIFIER)
    return bytes(builder.Output())


def _name_tensors(blob: bytes, input_names: Sequence[str], output_names: Sequence[str]) -> bytes:
    """Name the graph's input and output tensors, in order, after the ONNX graph's."""
    model = _load(blob)
    graph = model.subgraphs[0]
    for indices, names in ((graph.inputs, input_names), (graph.outputs, output_names)):
        if len(indices) != len(names):
            raise ModelError(f"the TFLite graph has {len(indices)} tensors where the ONNX graph has {list(names)}")
        for index, name in zip(indices, names):
            graph.tensors[index].name = name.encode()
    return _pack(model)


def with_metadata(blob: bytes, card: Mapping[str, Any]) -> bytes:
    """``blob`` with ``card`` (JSON) added as the TFLite metadata entry METADATA_KEY."""
    schema, model = _schema(), _load(blob)
    buffer = schema.BufferT()
    buffer.data = np.frombuffer(json.dumps(card, sort_keys=True).encode(), np.uint8)
    model.buffers.append(buffer)
    entry = schema.MetadataT()
    entry.name, entry.buffer = METADATA_KEY.encode(), len(model.buffers) - 1
    model.metadata = [m for m in (model.metadata or []) if m.name != METADATA_KEY.encode()] + [entry]
    return _pack(model)


def read_metadata(path: str | Path) -> dict[str, Any]:
    """The card embedded in a TFLite file (ModelError when it carries none)."""
    model = _load(Path(path).read_bytes())
    for entry in model.metadata or []:
        if entry.name == METADATA_KEY.encode():
            return json.loads(bytes(model.buffers[entry.buffer].data).decode())
    raise ModelError(f"{path} carries no {METADATA_KEY} metadata")


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return (text.splitlines()[0] if text else type(exc).__name__)[:300]
