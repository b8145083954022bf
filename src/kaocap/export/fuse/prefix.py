"""Pass: prefix every tensor and node name of a graph (e.g. before merging two graphs)."""

from __future__ import annotations

from collections.abc import Iterable

from onnx import ModelProto

from kaocap.export.fuse._graph import copy_model, rename_tensors, subgraphs, tensor_names


def prefix_names(model: ModelProto, prefix: str, *, keep: Iterable[str] = ()) -> ModelProto:
    """A copy of ``model`` whose tensor and node names start with ``prefix``.

    Graph inputs and outputs are renamed too, except the names in ``keep`` (e.g. an input
    two branches share). Subgraph (If/Loop) names are renamed with the same map.

    >>> prefix_names(model, "front/").graph.output[0].name          # doctest: +SKIP
    'front/yaw'
    """
    out = copy_model(model)
    if not prefix:
        return out
    kept = set(keep)
    mapping = {n: prefix + n for n in tensor_names(out.graph) if n and n not in kept}
    rename_tensors(out.graph, mapping)
    _prefix_node_names(out.graph, prefix)
    return out


def _prefix_node_names(graph, prefix: str) -> None:
    for node in graph.node:
        if node.name:
            node.name = prefix + node.name
        for sub in subgraphs(node):
            _prefix_node_names(sub, prefix)
