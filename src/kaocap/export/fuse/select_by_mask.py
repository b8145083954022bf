"""Pass: run two branch graphs on the same inputs and pick each sample's outputs with a mask.

The generic pattern behind a DMHead-style front/rear fusion: both branches see every sample;
``Where(mask, first, second)`` keeps, per sample (first dimension), one branch's outputs.
"""

from __future__ import annotations

import numpy as np
from onnx import ModelProto, TensorProto, helper, numpy_helper

from kaocap.export._onnx import graph_inputs
from kaocap.export.fuse._graph import GraphError, infer_value_infos, tensor_names
from kaocap.export.fuse.merge import merge
from kaocap.export.fuse.prefix import prefix_names


def select_by_mask(first: ModelProto, second: ModelProto, *, mask: str = "mask",
                   prefixes: tuple[str, str] = ("a/", "b/")) -> ModelProto:
    """One model running both branches; each output ``o`` becomes
    ``Where(mask, first.o, second.o)`` per sample.

    The branches must have the same input names and types (they are shared) and the same
    output names. ``mask`` is ``(N,)`` bool, True where a sample takes ``first``'s outputs:
    a new graph input, or, where ``mask`` names a tensor of a branch after prefixing
    (e.g. ``"a/is_front"``), that tensor. Outputs keep their names; every output must have
    the batch as its first dimension. Branch internals get ``prefixes``.

    >>> fused = select_by_mask(front, rear, mask="use_front")       # doctest: +SKIP
    >>> session.run({"image": x, "use_front": np.abs(yaw) < 90})    # doctest: +SKIP
    """
    shared = _check_branches(first, second)
    model = prefixed_branches(first, second, shared, prefixes)
    graph = model.graph
    if mask not in tensor_names(graph):
        graph.input.append(helper.make_tensor_value_info(mask, TensorProto.BOOL, ["N"]))
    infos = infer_value_infos(model)
    outputs = []
    for out in first.graph.output:
        rank = len(out.type.tensor_type.shape.dim)
        if rank == 0:
            raise GraphError(f"output {out.name!r} is a scalar: no sample dimension to select along")
        sample_mask = _mask_of_rank(graph, mask, rank)
        graph.node.append(helper.make_node("Where", [sample_mask, prefixes[0] + out.name, prefixes[1] + out.name],
                                           [out.name], name=f"select/{out.name}"))  # fmt: skip
        outputs.append(infos.get(prefixes[0] + out.name, out))
    del graph.output[:]
    for out, info in zip(first.graph.output, outputs):
        graph.output.append(helper.make_tensor_value_info(out.name, info.type.tensor_type.elem_type,
                                                          _dims(info)))  # fmt: skip
    return model


def prefixed_branches(first: ModelProto, second: ModelProto, shared: list[str], prefixes: tuple[str, str]) -> ModelProto:
    """Both branches in one graph, every name prefixed except the ``shared`` inputs."""
    a, b = (prefix_names(m, p, keep=shared) for m, p in zip((first, second), prefixes))
    return merge(a, b, {name: name for name in shared})


def _check_inputs(first: ModelProto, second: ModelProto) -> list[str]:
    """The shared input names; raises GraphError unless both branches take the same inputs."""
    ins_a = {i.name: i.type.tensor_type.elem_type for i in graph_inputs(first)}
    ins_b = {i.name: i.type.tensor_type.elem_type for i in graph_inputs(second)}
    if ins_a != ins_b:
        raise GraphError(f"branches need the same inputs: {sorted(ins_a.items())} vs {sorted(ins_b.items())}")
    return list(ins_a)


def _check_branches(first: ModelProto, second: ModelProto) -> list[str]:
    shared = _check_inputs(first, second)
    outs_a = [o.name for o in first.graph.output]
    if sorted(outs_a) != sorted(o.name for o in second.graph.output):
        raise GraphError(f"branches need the same output names: {outs_a} vs {[o.name for o in second.graph.output]}")
    return shared


def _mask_of_rank(graph, mask: str, rank: int) -> str:
    """``mask`` reshaped to ``(N, 1, ..., 1)`` of ``rank`` dims (one Reshape per rank)."""
    if rank == 1:
        return mask
    name = f"select/{mask}_rank{rank}"
    if name not in {o for n in graph.node for o in n.output}:
        shape = numpy_helper.from_array(np.array([-1] + [1] * (rank - 1), np.int64), f"{name}_shape")
        graph.initializer.append(shape)
        graph.node.append(helper.make_node("Reshape", [mask, shape.name], [name], name=name))
    return name


def _dims(info) -> list:
    return [d.dim_value if d.HasField("dim_value") else (d.dim_param or None)
            for d in info.type.tensor_type.shape.dim]
