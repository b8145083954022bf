"""One small runtime interface: numpy in, numpy out, whatever engine runs the network.

>>> from kaocap.runtime import open_session                       # doctest: +SKIP
>>> session = open_session(path, "openvino", threads=1)
>>> outputs = session.run({session.inputs[0].name: batch})
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

import numpy as np
from numpy.typing import NDArray

from kaocap.errors import ModelError, RuntimeNotAvailable

#: Runtimes by name, and the model file suffixes each one reads.
RUNTIME_SUFFIXES: dict[str, tuple[str, ...]] = {
    "openvino": (".tflite", ".onnx", ".xml"),
    "litert": (".tflite",),
    "onnxruntime": (".onnx",),
}
RUNTIMES: tuple[str, ...] = tuple(RUNTIME_SUFFIXES)


@dataclass(frozen=True, slots=True)
class TensorSpec:
    """A named tensor: ``shape`` uses -1 for a dynamic dimension; ``dtype`` a numpy dtype name."""

    name: str
    shape: tuple[int, ...]
    dtype: str


class Session(Protocol):
    """A loaded network. ``run`` takes and returns float32/uint8 numpy arrays by tensor name."""

    runtime: str
    inputs: tuple[TensorSpec, ...]
    outputs: tuple[TensorSpec, ...]

    def run(self, feeds: Mapping[str, NDArray]) -> dict[str, NDArray]: ...


def available_runtimes() -> tuple[str, ...]:
    """The runtimes whose Python package imports on this machine."""
    import importlib.util

    modules = {"openvino": "openvino", "litert": "ai_edge_litert", "onnxruntime": "onnxruntime"}
    return tuple(r for r in RUNTIMES if importlib.util.find_spec(modules[r]) is not None)


def open_session(path: str | Path, runtime: str | None = None, *, threads: int = 1) -> Session:
    """Load ``path`` with ``runtime`` (default: the first runtime that reads its suffix).

    Raises ModelError for a missing or unreadable file and RuntimeNotAvailable for a runtime
    that is not installed or does not read that file type.
    """
    path = Path(path)
    if not path.is_file():
        raise ModelError(f"model file not found: {path}")
    suffix = path.suffix.lower()
    if runtime is None:
        runtime = next((r for r in available_runtimes() if suffix in RUNTIME_SUFFIXES[r]), None)
        if runtime is None:
            raise RuntimeNotAvailable(f"no installed runtime reads {suffix} files ({path.name})")
    if runtime not in RUNTIME_SUFFIXES:
        raise RuntimeNotAvailable(f"unknown runtime {runtime!r}; choose one of {', '.join(RUNTIMES)}")
    if suffix not in RUNTIME_SUFFIXES[runtime]:
        readable = ", ".join(RUNTIME_SUFFIXES[runtime])
        raise RuntimeNotAvailable(f"{runtime} does not read {suffix} files (it reads {readable})")
    if runtime not in available_runtimes():
        raise RuntimeNotAvailable(f"runtime {runtime!r} is not installed (pip install kaocap)")
    if threads < 1:
        raise ValueError(f"threads must be >= 1, got {threads}")
    try:
        if runtime == "openvino":
            from kaocap.runtime.openvino import OpenVinoSession as cls
        elif runtime == "litert":
            from kaocap.runtime.litert import LiteRtSession as cls
        else:
            from kaocap.runtime.onnxruntime import OrtSession as cls
        return cls(path, threads=threads)
    except (ModelError, RuntimeNotAvailable):
        raise
    except Exception as exc:  # each engine raises its own types for a corrupt file
        first_line = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise ModelError(f"cannot load {path.name} with {runtime}: {first_line[:200]}") from exc


def check_feeds(specs: tuple[TensorSpec, ...], feeds: Mapping[str, NDArray]) -> None:
    """Raise ValueError where ``feeds`` misses an input or has the wrong rank/static dims."""
    for spec in specs:
        if spec.name not in feeds:
            raise ValueError(f"missing input {spec.name!r}")
        arr = np.asarray(feeds[spec.name])
        # The batch (first) dimension may always differ: every adapter reshapes for it.
        ok = arr.ndim == len(spec.shape) and all(
            d < 0 or d == a for d, a in zip(spec.shape[1:], arr.shape[1:])
        )
        if not ok:
            raise ValueError(f"input {spec.name!r} expects shape {spec.shape}, got {arr.shape}")


@contextlib.contextmanager
def opencv_threads(threads: int) -> Iterator[None]:
    """Cap OpenCV's worker threads at ``threads`` while inside; the previous count is restored.

    The crops around every network call are OpenCV warps. Its default pool (one worker per
    core) splits each small warp across cores and its workers spin (sched_yield) after each
    call: in the live loop paced at 30 fps a 256x256 landmark crop cost 1.95 ms of CPU per frame
    that way and 1.07 ms with one thread (README "CPU budget"). Every output pixel is computed
    the same way whichever thread computes it, so results do not change. The count is
    process-wide: two jobs running at once in one process share it.

    >>> with opencv_threads(1):                                      # doctest: +SKIP
    ...     result = pipe(image, timestamp_ms=0)
    """
    import cv2

    if threads < 1:
        raise ValueError(f"threads must be >= 1, got {threads}")
    previous = cv2.getNumThreads()
    cv2.setNumThreads(threads)
    try:
        yield
    finally:
        cv2.setNumThreads(previous)
