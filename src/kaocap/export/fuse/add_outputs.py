"""Pass: expose intermediate tensors as graph outputs."""

from __future__ import annotations

from collections.abc import Iterable

from onnx import ModelProto

from kaocap.export.fuse._graph import GraphError, copy_model, infer_value_infos


def add_outputs(model: ModelProto, names: Iterable[str]) -> ModelProto:
    """A copy of ``model`` with the tensors ``names`` appended to its outputs.

    Each must be produced by a node or be a graph input; its type (and shape where known)
    comes from shape inference. Names that already are outputs are left as they are.

    >>> add_outputs(model, ["features"]).graph.output[-1].name       # doctest: +SKIP
    'features'
    """
    out = copy_model(model)
    graph = out.graph
    produced = {o for node in graph.node for o in node.output} | {i.name for i in graph.input}
    existing = {o.name for o in graph.output}
    wanted = [n for n in dict.fromkeys(names) if n not in existing]
    unknown = [n for n in wanted if n not in produced]
    if unknown:
        raise GraphError(f"no node or input produces {', '.join(map(repr, unknown))}")
    infos = infer_value_infos(out) if wanted else {}
    for name in wanted:
        info = infos.get(name)
        if info is None or not info.type.tensor_type.elem_type:
            raise GraphError(f"cannot infer the type of {name!r} to make it an output")
        graph.output.append(info)
    return out
