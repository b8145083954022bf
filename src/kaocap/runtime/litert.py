"""LiteRT (TensorFlow Lite) adapter: reads .tflite with the XNNPACK CPU delegate."""

from __future__ import annotations

import contextlib
import os
import sys
from collections.abc import Iterator, Mapping
from pathlib import Path

import numpy as np
from numpy.typing import NDArray

from kaocap.runtime import TensorSpec, check_feeds


@contextlib.contextmanager
def _quiet_stderr() -> Iterator[None]:
    """Silence the C++ library's own stderr lines (file descriptor 2) while inside."""
    try:
        saved = os.dup(2)
    except OSError:  # no usable stderr: nothing to silence
        yield
        return
    try:
        sys.stderr.flush()
        with open(os.devnull, "wb") as devnull:
            os.dup2(devnull.fileno(), 2)
        yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)


def _spec(detail: dict) -> TensorSpec:
    sig = detail.get("shape_signature")
    shape = tuple(int(d) for d in (sig if sig is not None and len(sig) else detail["shape"]))
    return TensorSpec(detail["name"], shape, np.dtype(detail["dtype"]).name)


class LiteRtSession:
    runtime = "litert"

    def __init__(self, path: Path, *, threads: int = 1) -> None:
        from ai_edge_litert.interpreter import Interpreter

        with _quiet_stderr():  # LiteRT prints "INFO: Created TensorFlow Lite XNNPACK delegate"
            self._interp = Interpreter(model_path=str(path), num_threads=threads)
            self._interp.allocate_tensors()
        self._in = self._interp.get_input_details()
        self._out = self._interp.get_output_details()
        self.inputs = tuple(_spec(d) for d in self._in)
        self.outputs = tuple(_spec(d) for d in self._out)
        self._shapes = {d["index"]: tuple(d["shape"]) for d in self._in}

    def run(self, feeds: Mapping[str, NDArray]) -> dict[str, NDArray]:
        check_feeds(self.inputs, feeds)
        for spec, detail in zip(self.inputs, self._in):
            arr = np.ascontiguousarray(feeds[spec.name], dtype=detail["dtype"])
            if arr.shape != self._shapes[detail["index"]]:  # dynamic batch: resize once per shape
                self._interp.resize_tensor_input(detail["index"], arr.shape)
                self._interp.allocate_tensors()
                self._shapes[detail["index"]] = arr.shape
            self._interp.set_tensor(detail["index"], arr)
        self._interp.invoke()
        return {s.name: self._interp.get_tensor(d["index"]).copy() for s, d in zip(self.outputs, self._out)}
