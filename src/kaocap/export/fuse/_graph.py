"""Private helpers of the graph passes: copying, renaming, pruning, type lookup."""

from __future__ import annotations

from collections.abc import Iterator, Mapping

from kaocap.errors import ModelError
from kaocap.export._onnx import require_onnx

onnx = require_onnx()
from onnx import GraphProto, ModelProto, NodeProto, ValueInfoProto


class GraphError(ModelError):
    """A pass cannot apply to this graph (unknown tensor, name clash, unsupported pattern)."""


def copy_model(model: ModelProto) -> ModelProto:
    """A deep copy: passes never modify their input."""
    out = ModelProto()
    out.CopyFrom(model)
    return out


def subgraphs(node: NodeProto) -> Iterator[GraphProto]:
    """Graphs held by a node's attributes (If/Loop/Scan bodies)."""
    for attr in node.attribute:
        if attr.type == onnx.AttributeProto.GRAPH:
            yield attr.g
        elif attr.type == onnx.AttributeProto.GRAPHS:
            yield from attr.graphs


def rename_tensors(graph: GraphProto, mapping: Mapping[str, str]) -> None:
    """Rename tensors everywhere in ``graph`` and its subgraphs, in place.

    ONNX names are unique across nested graphs, so renaming every occurrence is safe.
    """
    if not mapping:
        return
    for values in (graph.input, graph.output, graph.value_info):
        for v in values:
            v.name = mapping.get(v.name, v.name)
    for init in graph.initializer:
        init.name = mapping.get(init.name, init.name)
    for sparse in graph.sparse_initializer:
        sparse.values.name = mapping.get(sparse.values.name, sparse.values.name)
    for node in graph.node:
        node.input[:] = [mapping.get(n, n) if n else n for n in node.input]
        node.output[:] = [mapping.get(n, n) if n else n for n in node.output]
        for sub in subgraphs(node):
            rename_tensors(sub, mapping)


def tensor_names(graph: GraphProto) -> set[str]:
    """Every tensor name of ``graph`` (inputs, outputs, initializers, node outputs, subgraphs)."""
    names = {v.name for v in (*graph.input, *graph.output, *graph.value_info)}
    names |= {t.name for t in graph.initializer} | {s.values.name for s in graph.sparse_initializer}
    for node in graph.node:
        names.update(n for n in node.output if n)
        for sub in subgraphs(node):
            names |= tensor_names(sub)
    return names


def node_inputs(node: NodeProto) -> set[str]:
    """Tensors a node reads, including outer-scope names its subgraphs read."""
    names = {n for n in node.input if n}
    for sub in subgraphs(node):
        local = tensor_names(sub)
        for inner in sub.node:
            names |= {n for n in node_inputs(inner) if n not in local}
        names |= {o.name for o in sub.output if o.name not in local}
    return names


def prune(graph: GraphProto, *, drop_unused_inputs: bool = False) -> None:
    """Remove nodes, initializers and value_info no graph output depends on, in place."""
    needed = {o.name for o in graph.output}
    kept: list[NodeProto] = []
    for node in reversed(graph.node):
        if any(o in needed for o in node.output):
            kept.append(node)
            needed |= node_inputs(node)
    del graph.node[:]
    graph.node.extend(reversed(kept))
    _keep_only(graph.initializer, lambda t: t.name in needed)
    _keep_only(graph.sparse_initializer, lambda s: s.values.name in needed)
    _keep_only(graph.value_info, lambda v: v.name in needed)
    if drop_unused_inputs:
        _keep_only(graph.input, lambda v: v.name in needed)


def _keep_only(repeated, keep) -> None:
    kept = [x for x in repeated if keep(x)]
    del repeated[:]
    repeated.extend(kept)


def infer_value_infos(model: ModelProto) -> dict[str, ValueInfoProto]:
    """Typed ValueInfo of every tensor shape inference can type (inputs, outputs, intermediates)."""
    try:
        inferred = onnx.shape_inference.infer_shapes(model, data_prop=True)
    except Exception as exc:  # inference errors come in several types
        raise GraphError(f"shape inference failed: {str(exc).strip()[:200]}") from exc
    g = inferred.graph
    infos = {v.name: v for v in (*g.value_info, *g.input, *g.output)}
    for init in g.initializer:
        infos.setdefault(init.name, onnx.helper.make_tensor_value_info(init.name, init.data_type, init.dims))
    return infos


def opset(model: ModelProto, domain: str = "") -> int:
    """The model's opset version for ``domain`` ('' = the default ONNX domain), 0 if none."""
    for entry in model.opset_import:
        if entry.domain in (domain, "ai.onnx" if domain == "" else domain):
            return entry.version
    return 0
