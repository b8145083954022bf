"""Private helpers shared by the export modules: importing onnx, loading, running, feeds."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
from numpy.typing import NDArray

from kaocap.errors import ModelError, RuntimeNotAvailable

if TYPE_CHECKING:
    import onnx

EXTRA_HINT = "pip install 'kaocap[export]'"


def require_onnx():
    """The ``onnx`` module, or RuntimeNotAvailable naming the extra that carries it."""
    try:
        import onnx
    except ImportError as exc:  # pragma: no cover - the test extra installs it
        raise RuntimeNotAvailable(f"export and fusion need the 'export' extra ({EXTRA_HINT})") from exc
    return onnx


def load_model(model: onnx.ModelProto | str | Path) -> onnx.ModelProto:
    """A ModelProto from a path (ModelError if missing or unreadable) or the proto itself."""
    onnx = require_onnx()
    if isinstance(model, onnx.ModelProto):
        return model
    path = Path(model)
    if not path.is_file():
        raise ModelError(f"model file not found: {path}")
    try:
        return onnx.load(str(path))
    except Exception as exc:  # onnx raises DecodeError and friends for a corrupt file
        raise ModelError(f"cannot read {path.name} as ONNX: {str(exc).strip()[:200]}") from exc


def ort_session(model: onnx.ModelProto, *, optimize: bool = False) -> Any:
    """An onnxruntime CPU session of an in-memory model (graph optimisations off by default,
    so that what runs is the graph as written)."""
    import onnxruntime as ort

    opts = ort.SessionOptions()
    opts.log_severity_level = 4  # errors are raised, not logged
    if not optimize:
        opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
    return ort.InferenceSession(model.SerializeToString(), opts, providers=["CPUExecutionProvider"])


def run_model(model: onnx.ModelProto, feeds: Mapping[str, NDArray]) -> dict[str, NDArray]:
    """Run ``model`` once with onnxruntime; every graph output by name."""
    sess = ort_session(model)
    names = [o.name for o in sess.get_outputs()]
    return dict(zip(names, sess.run(names, {k: np.ascontiguousarray(v) for k, v in feeds.items()})))


def graph_inputs(model: onnx.ModelProto) -> list:
    """The graph inputs that are real inputs (not initializers listed as inputs, IR < 4)."""
    inits = {t.name for t in model.graph.initializer}
    return [i for i in model.graph.input if i.name not in inits]


def value_dtype(value_info) -> np.dtype:
    """numpy dtype of a tensor ValueInfoProto."""
    from onnx import helper

    return np.dtype(helper.tensor_dtype_to_np_dtype(value_info.type.tensor_type.elem_type))


def value_shape(value_info) -> tuple[int | str | None, ...]:
    """Shape of a tensor ValueInfoProto: ints for fixed dims, the symbol (or None) otherwise."""
    dims = value_info.type.tensor_type.shape.dim
    return tuple(d.dim_value if d.HasField("dim_value") else (d.dim_param or None) for d in dims)


def example_feeds(model: onnx.ModelProto, *, batch: int = 2, seed: int = 0,
                  dims: Mapping[str, int] | None = None) -> dict[str, NDArray]:
    """Random feeds for every input: dim 0 -> ``batch`` where it is not fixed, other symbolic
    dims from ``dims`` (by symbol) or 1. Floats in -1..1, integers in 0..9, bools random."""
    rng = np.random.default_rng(seed)
    feeds = {}
    for value in graph_inputs(model):
        shape = []
        for axis, dim in enumerate(value_shape(value)):
            if isinstance(dim, int) and dim > 0:
                shape.append(dim)
            elif dims and dim in dims:
                shape.append(dims[dim])
            else:
                shape.append(batch if axis == 0 else 1)
        dtype = value_dtype(value)
        if dtype.kind == "f":
            feeds[value.name] = rng.uniform(-1, 1, shape).astype(dtype)
        elif dtype.kind == "b":
            feeds[value.name] = rng.random(shape) < 0.5
        else:
            feeds[value.name] = rng.integers(0, 10, shape).astype(dtype)
    return feeds
