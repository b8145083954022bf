"""Pass: change the batch (first) dimension of a graph's inputs and outputs."""

from __future__ import annotations

import numpy as np
from onnx import ModelProto, numpy_helper

from kaocap.export.fuse._graph import GraphError, copy_model, prune


def set_batch(model: ModelProto, batch: int | str = "N", *, fix_reshapes: bool = True) -> ModelProto:
    """A copy of ``model`` whose inputs and outputs have ``batch`` as their first dimension:
    a symbol (str) for a dynamic batch, or a fixed size (int >= 1).

    Intermediate ``value_info`` shapes are dropped (runtimes re-infer them). With
    ``fix_reshapes``, a Reshape whose constant target shape starts with the old fixed batch
    (e.g. ``[1, 1434]`` in a batch-1 export) gets ``-1`` there (``0``, copy the input's first
    dim, where the shape already holds a ``-1``). Other batch-specific constants are not
    rewritten: check the result with :func:`kaocap.export.parity.check` at two batch sizes.

    >>> set_batch(model, "N").graph.input[0].type.tensor_type.shape.dim[0].dim_param  # doctest: +SKIP
    'N'
    """
    if isinstance(batch, bool) or not isinstance(batch, (int, str)) or (isinstance(batch, int) and batch < 1):
        raise GraphError(f"batch must be a symbol or an int >= 1, got {batch!r}")
    out = copy_model(model)
    graph = out.graph
    inits = {t.name for t in graph.initializer}
    values = [v for v in (*graph.input, *graph.output) if v.name not in inits]
    old = {v.type.tensor_type.shape.dim[0].dim_value for v in values if _has_batch(v)} - {0}
    for value in values:
        if not _has_batch(value):
            raise GraphError(f"{value.name!r} has no first dimension to change")
        dim = value.type.tensor_type.shape.dim[0]
        if isinstance(batch, str):
            dim.dim_param = batch
        else:
            dim.dim_value = batch
    del graph.value_info[:]
    if fix_reshapes and len(old) == 1 and old != {batch}:
        _fix_reshapes(graph, old.pop())
    return out


def _has_batch(value) -> bool:
    tensor = value.type.tensor_type
    return tensor.HasField("shape") and len(tensor.shape.dim) > 0


def _constants(graph) -> dict[str, np.ndarray]:
    """Initializers and Constant-node outputs (``value`` attribute) by name."""
    values = {t.name: numpy_helper.to_array(t) for t in graph.initializer}
    for node in graph.node:
        if node.op_type == "Constant" and node.attribute and node.attribute[0].name == "value":
            values[node.output[0]] = numpy_helper.to_array(node.attribute[0].t)
    return values


def _fix_reshapes(graph, old_batch: int) -> None:
    constants = _constants(graph)
    inits = {t.name: t for t in graph.initializer}
    readers: dict[str, int] = {}
    for node in graph.node:
        for name in node.input:
            readers[name] = readers.get(name, 0) + 1
    changed = False
    for node in graph.node:
        if node.op_type != "Reshape" or len(node.input) < 2 or node.input[1] not in constants:
            continue
        shape = constants[node.input[1]].astype(np.int64)
        if shape.ndim != 1 or shape.size == 0 or shape[0] != old_batch:
            continue
        shape[0] = 0 if -1 in shape[1:] else -1
        if node.input[1] in inits and readers[node.input[1]] == 1:
            inits[node.input[1]].CopyFrom(numpy_helper.from_array(shape, node.input[1]))
        else:  # a Constant node, or shared with another reader: this Reshape gets its own
            name = f"{node.input[1]}__batch_{node.output[0]}"
            graph.initializer.append(numpy_helper.from_array(shape, name))
            node.input[1] = name
            changed = True
    if changed:
        prune(graph)
