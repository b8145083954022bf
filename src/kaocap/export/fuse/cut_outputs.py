"""Pass: remove graph outputs and every node, initializer and value_info only they needed."""

from __future__ import annotations

from collections.abc import Iterable

from onnx import ModelProto

from kaocap.export.fuse._graph import GraphError, copy_model, prune


def cut_outputs(model: ModelProto, names: Iterable[str], *, drop_unused_inputs: bool = False) -> ModelProto:
    """A copy of ``model`` without the outputs ``names``, dead nodes pruned.

    Graph inputs stay (the interface is unchanged) unless ``drop_unused_inputs``.
    Raises GraphError for a name that is not an output, or when no output would remain.

    >>> cut_outputs(model, ["debug_crop"])                           # doctest: +SKIP
    """
    out = copy_model(model)
    graph = out.graph
    cut = set(names)
    unknown = cut - {o.name for o in graph.output}
    if unknown:
        raise GraphError(f"not graph outputs: {', '.join(sorted(map(repr, unknown)))}")
    kept = [o for o in graph.output if o.name not in cut]
    if not kept:
        raise GraphError("cutting every output would leave an empty graph")
    del graph.output[:]
    graph.output.extend(kept)
    prune(graph, drop_unused_inputs=drop_unused_inputs)
    return out
