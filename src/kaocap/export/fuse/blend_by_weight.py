"""Pass: run two branch graphs on the same inputs and mix each sample's outputs by a weight.

The soft form of :func:`kaocap.export.fuse.select_by_mask`: where a hard mask would make the
fused output jump when a sample crosses from one branch's range to the other's (a head turning
from the front-range model to the rear-range one), ``w * first + (1 - w) * second`` with a
weight ramping over a band of the range passes through it continuously; a weight of 0 or 1 is
the hard selection.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from onnx import ModelProto, TensorProto, helper

from kaocap.export.fuse._graph import GraphError, infer_value_infos, tensor_names
from kaocap.export.fuse.select_by_mask import _check_inputs, _dims, _mask_of_rank, prefixed_branches


def blend_by_weight(first: ModelProto, second: ModelProto, *, weight: str, blend: Sequence[str],
                    keep: Mapping[str, str] | None = None, prefixes: tuple[str, str] = ("a/", "b/")) -> ModelProto:  # fmt: skip
    """One model running both branches; each output ``o`` in ``blend`` (both branches have it)
    becomes ``weight * first.o + (1 - weight) * second.o`` per sample (first dimension).

    weight: ``(N,)`` float, a new graph input or a tensor of a branch after prefixing (e.g.
        ``"b/front_weight"``). keep: further outputs, new name -> branch tensor after prefixing
        (e.g. ``{"roi": "b/roi", "face_visible": "b/front_weight"}``). The branches share
    their inputs (same names and types). Outputs: ``blend``, then ``keep``, in that order.

    >>> fused = blend_by_weight(front, rear, weight="w", blend=["rotation_6d"])   # doctest: +SKIP
    """
    shared = _check_inputs(first, second)
    model = prefixed_branches(first, second, shared, prefixes)
    graph = model.graph
    names = tensor_names(graph)
    if weight not in names:
        graph.input.append(helper.make_tensor_value_info(weight, TensorProto.FLOAT, ["N"]))
    for name in [*(p + o for o in blend for p in prefixes), *(keep or {}).values()]:
        if name not in names:
            raise GraphError(f"no tensor {name!r} in the branches (names carry the prefixes {prefixes})")
    infos = infer_value_infos(model)
    outputs = []
    for out in blend:
        a, _ = (infos.get(p + out) for p in prefixes)
        rank = len(a.type.tensor_type.shape.dim) if a is not None else 0
        if rank == 0:
            raise GraphError(f"output {out!r} has no known sample dimension to blend along")
        w = _mask_of_rank(graph, weight, rank)
        graph.node.extend([
            helper.make_node("Sub", [prefixes[0] + out, prefixes[1] + out], [f"blend/{out}_diff"], name=f"blend/{out}_sub"),
            helper.make_node("Mul", [w, f"blend/{out}_diff"], [f"blend/{out}_scaled"], name=f"blend/{out}_mul"),
            helper.make_node("Add", [prefixes[1] + out, f"blend/{out}_scaled"], [out], name=f"blend/{out}"),
        ])  # fmt: skip
        outputs.append(helper.make_tensor_value_info(out, a.type.tensor_type.elem_type, _dims(a)))
    for out, source in (keep or {}).items():
        graph.node.append(helper.make_node("Identity", [source], [out], name=f"keep/{out}"))
        info = infos.get(source)
        elem = info.type.tensor_type.elem_type if info is not None else TensorProto.FLOAT
        outputs.append(helper.make_tensor_value_info(out, elem, _dims(info) if info is not None else None))
    del graph.output[:]
    graph.output.extend(outputs)
    return model
