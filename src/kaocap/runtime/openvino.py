"""OpenVINO adapter: reads .tflite, .onnx and IR .xml; latency hints, capped threads."""

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
        import openvino.properties as props
        import openvino.properties.hint as hints

        core = _core()
        model = core.read_model(str(path))
        config = {
            hints.performance_mode: hints.PerformanceMode.LATENCY,
            props.inference_num_threads: threads,
            hints.num_requests: 1,
        }
        self._compiled = core.compile_model(model, "CPU", config)
        self._request = self._compiled.create_infer_request()
        self.inputs = tuple(_spec(p) for p in self._compiled.inputs)
        self.outputs = tuple(_spec(p) for p in self._compiled.outputs)

    def run(self, feeds: Mapping[str, NDArray]) -> dict[str, NDArray]:
        check_feeds(self.inputs, feeds)
        ordered = [np.ascontiguousarray(feeds[s.name]) for s in self.inputs]
        result = self._request.infer(ordered, share_inputs=True)
        return {
            spec.name: np.array(result[port])
            for spec, port in zip(self.outputs, self._compiled.outputs)
        }
