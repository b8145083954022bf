"""OpenVINO adapter: reads .tflite, .onnx and IR .xml; latency hints, capped threads.

Models are compiled once per input shape actually used (static shapes run faster on the CPU
plugin; a model with a fixed batch of 1 can still take a batch of N), and kept for reuse.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

import numpy as np
from numpy.typing import NDArray

from kaocap.runtime import TensorSpec, check_feeds

_CORE = None


def _core():
    global _CORE
    if _CORE is None:
        import openvino as ov

        _CORE = ov.Core()
    return _CORE


def _spec(port) -> TensorSpec:
    shape = tuple(d.get_length() if d.is_static else -1 for d in port.get_partial_shape())
    name = port.get_any_name() if port.get_names() else f"port{port.get_index()}"
    return TensorSpec(name, shape, port.get_element_type().to_dtype().name)


class OpenVinoSession:
    runtime = "openvino"

    def __init__(self, path: Path, *, threads: int = 1) -> None:
        import openvino as ov
        import openvino.properties as props
        import openvino.properties.hint as hints

        self._ov = ov
        self._model = _core().read_model(str(path))
        self._config = {
            hints.performance_mode: hints.PerformanceMode.LATENCY,
            props.inference_num_threads: threads,
            hints.num_requests: 1,
        }
        self.inputs = tuple(_spec(p) for p in self._model.inputs)
        self.outputs = tuple(_spec(p) for p in self._model.outputs)
        self._compiled: dict[tuple, tuple] = {}
        # The common case first: batch 1.
        self._compile(tuple(tuple(1 if d < 0 else d for d in s.shape) for s in self.inputs))

    def _compile(self, shapes: tuple) -> tuple:
        self._model.reshape({port: list(shape) for port, shape in zip(self._model.inputs, shapes)})
        compiled = _core().compile_model(self._model, "CPU", self._config)
        entry = (compiled, compiled.create_infer_request())
        self._compiled[shapes] = entry
        return entry

    def run(self, feeds: Mapping[str, NDArray]) -> dict[str, NDArray]:
        check_feeds(self.inputs, feeds)
        ordered = [np.ascontiguousarray(feeds[s.name]) for s in self.inputs]
        key = tuple(a.shape for a in ordered)
        _, request = self._compiled.get(key) or self._compile(key)
        for i, array in enumerate(ordered):  # zero-copy inputs, no data-dispatcher overhead
            request.set_input_tensor(i, self._ov.Tensor(array, shared_memory=True))
        request.infer()
        return {spec.name: request.get_output_tensor(i).data.copy() for i, spec in enumerate(self.outputs)}
