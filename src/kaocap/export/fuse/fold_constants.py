"""Pass: evaluate nodes whose inputs are all constants and store their results as initializers."""

from __future__ import annotations

import logging

import numpy as np
from onnx import ModelProto, NodeProto, helper, numpy_helper
from onnx.reference import ReferenceEvaluator

from kaocap.export.fuse._graph import copy_model, prune, subgraphs

log = logging.getLogger(__name__)

#: Ops whose result changes from run to run: never folded.
NONDETERMINISTIC = frozenset({"RandomNormal", "RandomUniform", "RandomNormalLike", "RandomUniformLike",
                              "Multinomial", "Bernoulli"})  # fmt: skip
#: Results larger than this stay computed at run time (ConstantOfShape/Expand/Tile would bloat the file).
MAX_FOLDED_BYTES = 16 << 20


def fold_constants(model: ModelProto, *, max_bytes: int = MAX_FOLDED_BYTES) -> ModelProto:
    """A copy of ``model`` where every default-domain node whose inputs are all initializers
    or results of other such nodes (Constant nodes included) is replaced by initializers.

    Evaluation uses ``onnx.reference`` at the model's opset. Not folded: random ops, nodes
    with subgraphs, custom domains, nodes producing a graph output, and results over
    ``max_bytes``. Initializers nothing reads any more are dropped.

    >>> [n.op_type for n in fold_constants(model).graph.node]       # doctest: +SKIP
    ['Conv', 'Relu']
    """
    out = copy_model(model)
    graph = out.graph
    input_names = {i.name for i in graph.input}
    values = {t.name: numpy_helper.to_array(t) for t in graph.initializer if t.name not in input_names}
    graph_outputs = {o.name for o in graph.output}
    folded: list[NodeProto] = []
    for node in graph.node:
        if not _foldable(node, values, graph_outputs):
            continue
        results = _evaluate(node, values, out.opset_import)
        if results is None or sum(r.nbytes for r in results) > max_bytes:
            continue
        values.update({name: r for name, r in zip(node.output, results) if name})
        folded.append(node)
    if not folded:
        return out
    gone = {id(n) for n in folded}
    keep = [n for n in graph.node if id(n) not in gone]
    del graph.node[:]
    graph.node.extend(keep)
    existing = {t.name for t in graph.initializer}
    for node in folded:
        for name in node.output:
            if name and name not in existing:
                graph.initializer.append(numpy_helper.from_array(np.asarray(values[name]), name))
    prune(graph)
    log.debug("folded %d nodes", len(folded))
    return out


def _foldable(node: NodeProto, values: dict, graph_outputs: set[str]) -> bool:
    return (
        node.domain in ("", "ai.onnx")
        and node.op_type not in NONDETERMINISTIC
        and not any(True for _ in subgraphs(node))
        and all(not n or n in values for n in node.input)
        and not any(o in graph_outputs for o in node.output)
    )


def _evaluate(node: NodeProto, values: dict, opset_import) -> list[np.ndarray] | None:
    """The node's outputs on constant inputs, or None where the reference evaluator fails."""
    inputs = [n for n in node.input if n]
    graph = helper.make_graph(
        [node], "fold",
        [helper.make_tensor_value_info(n, helper.np_dtype_to_tensor_dtype(values[n].dtype), values[n].shape)
         for n in dict.fromkeys(inputs)],
        [helper.make_empty_tensor_value_info(o) for o in node.output if o],
    )  # fmt: skip
    model = helper.make_model(graph, opset_imports=list(opset_import))
    try:
        results = ReferenceEvaluator(model).run(None, {n: values[n] for n in inputs})
    except Exception as exc:  # noqa: BLE001 - an op the reference evaluator lacks stays for the runtime
        log.debug("not folding %s (%s): %s", node.name or node.op_type, node.op_type, exc)
        return None
    return [np.asarray(r) for r in results]

