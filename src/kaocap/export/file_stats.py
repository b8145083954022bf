"""Graph statistics of an exported file in any format: ONNX, TFLite, OpenVINO IR.

The same few numbers :mod:`kaocap.export.stats` gives for ONNX (op histogram, Transposes in the
body, parameters, size), read from a TFLite flatbuffer (with LiteRT's schema, no TensorFlow) or
an OpenVINO IR, so that converters can be compared on one table.

>>> stats = file_stats("blendshapes_cnn_s_lmk_fp32.tflite")               # doctest: +SKIP
>>> stats.transposes_in_body, stats.inputs
(0, (('image', (-1, 128, 128, 3)),))
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from kaocap.errors import ModelError

#: Ops that only convert a tensor's type: looked through when asking "is this Transpose at an input?".
_TFLITE_CASTS = frozenset({"QUANTIZE", "DEQUANTIZE", "CAST"})
_IR_CASTS = frozenset({"Convert"})
#: OpenVINO node types that are graph plumbing, not ops.
_IR_PLUMBING = frozenset({"Parameter", "Result", "Constant"})


@dataclass(frozen=True, slots=True)
class FileStats:
    """Statistics of one exported file.

    kind: ``onnx``, ``tflite`` or ``openvino-ir``. op_histogram: op type -> count, most frequent
    first, in the format's own op names (ONNX op types, TFLite builtin names, OpenVINO op types
    without Parameter/Result/Constant). transposes: all Transpose ops; transposes_at_io: those
    reading a graph input or writing a graph output (through a type conversion). parameters:
    elements of the constant tensors. file_size_bytes: on disk (IR: ``.xml`` + ``.bin``).
    inputs/outputs: (name, shape), -1 for a dynamic dimension.
    """

    kind: str
    op_histogram: dict[str, int]
    transposes: int
    transposes_at_io: int
    parameters: int
    file_size_bytes: int
    inputs: tuple[tuple[str, tuple[int, ...]], ...]
    outputs: tuple[tuple[str, tuple[int, ...]], ...]

    @property
    def transposes_in_body(self) -> int:
        return self.transposes - self.transposes_at_io

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dict."""
        return {"kind": self.kind, "op_histogram": self.op_histogram, "transposes": self.transposes,
                "transposes_at_io": self.transposes_at_io, "transposes_in_body": self.transposes_in_body,
                "parameters": self.parameters, "file_size_bytes": self.file_size_bytes,
                "inputs": {n: list(s) for n, s in self.inputs}, "outputs": {n: list(s) for n, s in self.outputs}}  # fmt: skip

    def format(self, top: int = 8) -> str:
        """A few lines for people: the ``top`` most frequent ops."""
        shape = lambda s: "[" + ",".join("?" if d < 0 else str(d) for d in s) + "]"
        ops = list(self.op_histogram.items())
        more = f", … {len(ops) - top} more op types" if len(ops) > top else ""
        return "\n".join([
            f"inputs:  {', '.join(f'{n} {shape(s)}' for n, s in self.inputs)}",
            f"outputs: {', '.join(f'{n} {shape(s)}' for n, s in self.outputs)}",
            (f"{sum(self.op_histogram.values())} ops, {self.parameters:,} parameters, "
             f"{self.file_size_bytes / 1e6:.2f} MB"),
            (f"Transpose: {self.transposes} ({self.transposes_at_io} at inputs/outputs, "
             f"{self.transposes_in_body} in the body)"),
            "ops: " + ", ".join(f"{op} {n}" for op, n in ops[:top]) + more,
        ])  # fmt: skip


def file_stats(path: str | Path) -> FileStats:
    """Statistics of an ``.onnx``, ``.tflite`` or OpenVINO ``.xml`` file (by suffix)."""
    path = Path(path)
    if not path.is_file():
        raise ModelError(f"model file not found: {path}")
    readers = {".onnx": _onnx_stats, ".tflite": _tflite_stats, ".xml": _ir_stats}
    if path.suffix.lower() not in readers:
        raise ModelError(f"no statistics for {path.suffix} files (reads {', '.join(readers)})")
    return readers[path.suffix.lower()](path)


def _histogram(ops: list[str]) -> dict[str, int]:
    return dict(sorted(Counter(ops).items(), key=lambda kv: (-kv[1], kv[0])))


def _onnx_stats(path: Path) -> FileStats:
    from kaocap.export.stats import graph_stats

    g = graph_stats(path)
    dims = lambda shape: tuple(d if isinstance(d, int) and d > 0 else -1 for d in shape)
    return FileStats("onnx", g.op_histogram, g.transposes, g.transposes_at_io, g.parameters, g.file_size_bytes,
                     tuple((n, dims(s)) for n, s in g.inputs), tuple((n, dims(s)) for n, s in g.outputs))  # fmt: skip


def _tflite_stats(path: Path) -> FileStats:
    from ai_edge_litert import schema_py_generated as schema

    try:
        model = schema.ModelT.InitFromPackedBuf(bytearray(path.read_bytes()), 0)
    except Exception as exc:  # flatbuffers raises struct/index errors for a file that is not TFLite
        raise ModelError(f"cannot read {path.name} as TFLite: {exc}") from exc
    names = {v: k for k, v in vars(schema.BuiltinOperator).items() if not k.startswith("_")}
    codes = [names.get(max(c.builtinCode, c.deprecatedBuiltinCode), "CUSTOM") if not c.customCode
             else c.customCode.decode() for c in model.operatorCodes]  # fmt: skip
    graph = model.subgraphs[0]
    ops = [(codes[op.opcodeIndex], list(op.inputs), list(op.outputs)) for op in graph.operators]
    ins, outs = set(graph.inputs), set(graph.outputs)
    for name, op_in, op_out in ops:  # look through type conversions next to the graph's inputs/outputs
        if name in _TFLITE_CASTS and op_in[0] in ins:
            ins.add(op_out[0])
        if name in _TFLITE_CASTS and op_out[0] in outs:
            outs.add(op_in[0])
    constant = [t for t in graph.tensors if t.buffer and model.buffers[t.buffer].data is not None
                and len(model.buffers[t.buffer].data)]  # fmt: skip
    io = lambda indices: tuple((graph.tensors[i].name.decode(), _tflite_shape(graph.tensors[i])) for i in indices)
    return FileStats(
        "tflite", _histogram([name for name, _, _ in ops]),
        transposes=sum(name == "TRANSPOSE" for name, _, _ in ops),
        transposes_at_io=sum(name == "TRANSPOSE" and (i[0] in ins or o[0] in outs) for name, i, o in ops),
        parameters=sum(int(np.prod(t.shape)) if t.shape is not None else 1 for t in constant),
        file_size_bytes=path.stat().st_size, inputs=io(graph.inputs), outputs=io(graph.outputs),
    )  # fmt: skip


def _tflite_shape(tensor) -> tuple[int, ...]:
    shape = tensor.shapeSignature if tensor.shapeSignature is not None else tensor.shape
    return tuple(int(d) for d in (shape if shape is not None else ()))


def _ir_stats(path: Path) -> FileStats:
    import openvino as ov

    try:
        model = ov.Core().read_model(str(path))
    except Exception as exc:  # OpenVINO raises its own types for a file that is not IR
        raise ModelError(f"cannot read {path.name} as OpenVINO IR: {str(exc).strip()[:200]}") from exc
    nodes = model.get_ordered_ops()
    ops = [n for n in nodes if n.get_type_name() not in _IR_PLUMBING]
    transposes = [n for n in ops if n.get_type_name() == "Transpose"]
    size = path.stat().st_size + (path.with_suffix(".bin").stat().st_size if path.with_suffix(".bin").is_file() else 0)
    io = lambda ports: tuple((p.get_any_name(), tuple(d.get_length() if d.is_static else -1
                                                      for d in p.get_partial_shape())) for p in ports)  # fmt: skip
    return FileStats(
        "openvino-ir", _histogram([n.get_type_name() for n in ops]),
        transposes=len(transposes), transposes_at_io=sum(_ir_at_io(t) for t in transposes),
        parameters=sum(int(np.prod(list(n.get_output_shape(0)))) for n in nodes if n.get_type_name() == "Constant"),
        file_size_bytes=size, inputs=io(model.inputs), outputs=io(model.outputs),
    )  # fmt: skip


def _ir_at_io(node) -> bool:
    """Whether ``node`` reads a Parameter or feeds a Result (through type conversions)."""
    source = node.input_value(0).get_node()
    while source.get_type_name() in _IR_CASTS:
        source = source.input_value(0).get_node()
    if source.get_type_name() == "Parameter":
        return True
    consumers = lambda n: [t.get_node() for t in n.output(0).get_target_inputs()]
    frontier = consumers(node)
    while frontier:
        target = frontier.pop()
        if target.get_type_name() == "Result":
            return True
        if target.get_type_name() in _IR_CASTS:
            frontier += consumers(target)
    return False
