"""Graph statistics that matter for export: op histogram, Transposes, parameters, file size.

>>> stats = graph_stats("landmarks.onnx")                          # doctest: +SKIP
>>> stats.transposes, stats.transposes_in_body, stats.parameters
(2, 0, 1234567)
>>> print(stats.format())
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from kaocap.export._onnx import graph_inputs, load_model, require_onnx, value_shape

#: Ops that only move data between layouts; Transposes among them are what converters flood.
_LAYOUT_OPS = frozenset({"Transpose"})


@dataclass(frozen=True, slots=True)
class GraphStats:
    """Statistics of one ONNX graph (subgraphs of If/Loop included in the op counts).

    op_histogram: op type -> count, most frequent first. transposes: all Transpose nodes;
    transposes_at_io: those reading a graph input or writing a graph output (possibly through
    a Cast); transposes_in_body: the rest (the converter's Transpose flood, target 0).
    parameters: elements of all initializers and Constant tensors. file_size_bytes: the file
    on disk, or the serialised size for an in-memory model. inputs/outputs: (name, shape).
    """

    op_histogram: dict[str, int]
    nodes: int
    transposes: int
    transposes_at_io: int
    parameters: int
    file_size_bytes: int
    opset: int
    inputs: tuple[tuple[str, tuple], ...]
    outputs: tuple[tuple[str, tuple], ...]

    @property
    def transposes_in_body(self) -> int:
        return self.transposes - self.transposes_at_io

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dict."""
        return {"op_histogram": self.op_histogram, "nodes": self.nodes, "transposes": self.transposes,
                "transposes_at_io": self.transposes_at_io, "transposes_in_body": self.transposes_in_body,
                "parameters": self.parameters, "file_size_bytes": self.file_size_bytes, "opset": self.opset,
                "inputs": {n: list(s) for n, s in self.inputs},
                "outputs": {n: list(s) for n, s in self.outputs}}  # fmt: skip

    def format(self) -> str:
        """A few lines for people."""
        shape = lambda s: "[" + ",".join("?" if d is None else str(d) for d in s) + "]"
        lines = [
            f"inputs:  {', '.join(f'{n} {shape(s)}' for n, s in self.inputs)}",
            f"outputs: {', '.join(f'{n} {shape(s)}' for n, s in self.outputs)}",
            (f"opset {self.opset}, {self.nodes} nodes, {self.parameters:,} parameters, "
            f"{self.file_size_bytes / 1e6:.2f} MB"),
            (f"Transpose: {self.transposes} ({self.transposes_at_io} at inputs/outputs, "
            f"{self.transposes_in_body} in the body)"),
            "ops: " + ", ".join(f"{op} {n}" for op, n in self.op_histogram.items()),
        ]
        return "\n".join(lines)


def graph_stats(model) -> GraphStats:
    """Statistics of a ModelProto or an ``.onnx`` file."""
    require_onnx()
    proto = load_model(model)  # ModelError for a missing or unreadable file
    size = Path(model).stat().st_size if isinstance(model, (str, Path)) else proto.ByteSize()
    model = proto
    nodes = list(_all_nodes(model.graph))
    histogram = Counter(n.op_type for n in nodes)
    return GraphStats(
        op_histogram=dict(sorted(histogram.items(), key=lambda kv: (-kv[1], kv[0]))),
        nodes=len(nodes),
        transposes=sum(histogram[op] for op in _LAYOUT_OPS),
        transposes_at_io=_transposes_at_io(model.graph),
        parameters=_parameters(model.graph, nodes),
        file_size_bytes=size,
        opset=next((o.version for o in model.opset_import if o.domain in ("", "ai.onnx")), 0),
        inputs=tuple((v.name, value_shape(v)) for v in graph_inputs(model)),
        outputs=tuple((v.name, value_shape(v)) for v in model.graph.output),
    )


def _all_nodes(graph):
    from kaocap.export.fuse._graph import subgraphs

    for node in graph.node:
        yield node
        for sub in subgraphs(node):
            yield from _all_nodes(sub)


def _parameters(graph, nodes) -> int:
    count = sum(int(np.prod(t.dims)) for t in graph.initializer)
    count += sum(int(np.prod(s.dims)) for s in graph.sparse_initializer)
    for node in nodes:
        if node.op_type == "Constant":
            count += sum(int(np.prod(a.t.dims)) for a in node.attribute if a.name == "value")
    return count


def _transposes_at_io(graph) -> int:
    """Transposes next to the graph's inputs or outputs, looking through one Cast."""
    ins, outs = {i.name for i in graph.input}, {o.name for o in graph.output}
    for node in graph.node:
        if node.op_type == "Cast" and node.input and node.input[0] in ins:
            ins.add(node.output[0])
        if node.op_type == "Cast" and node.output and node.output[0] in outs:
            outs.add(node.input[0])
    return sum(1 for n in graph.node if n.op_type in _LAYOUT_OPS and (n.input[0] in ins or n.output[0] in outs))
