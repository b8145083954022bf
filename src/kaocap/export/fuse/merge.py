"""Pass: merge two graphs into one, chaining tensors of the first into inputs of the second or
sharing inputs between them."""

from __future__ import annotations

from collections.abc import Mapping

from onnx import ModelProto, helper

from kaocap.export.fuse._graph import (
    GraphError,
    infer_value_infos,
    opset,
    rename_tensors,
    tensor_names,
)
from kaocap.export.fuse.opset import change_opset
from kaocap.export.fuse.prefix import prefix_names


def merge(first: ModelProto, second: ModelProto, io_map: Mapping[str, str] | None = None, *,
          prefixes: tuple[str, str] = ("", "")) -> ModelProto:
    """One model running ``first`` then ``second``.

    io_map: ``second`` input name -> ``first`` tensor name (names before prefixing). A graph
        output or intermediate tensor of ``first`` chains into that input; a graph input of
        ``first`` makes the two graphs share it. Mapped inputs stop being graph inputs.
    prefixes: prepended to every name of ``first`` / ``second`` (inputs and outputs too).

    Outputs: all of ``first``'s, then all of ``second``'s (remove some with ``cut_outputs``).
    The default-domain opset is raised to the higher of the two. Raises GraphError on a name
    clash (use ``prefixes``), an unknown name, or an element-type mismatch.

    >>> fused = merge(crop, net, {"image": "crop"}, prefixes=("", "net/"))  # doctest: +SKIP
    """
    first, second = _same_opset(first, second)
    a, b = prefix_names(first, prefixes[0]), prefix_names(second, prefixes[1])
    links = {prefixes[1] + k: prefixes[0] + v for k, v in (io_map or {}).items()}
    _check_links(a, b, links)
    rename_tensors(b.graph, links)
    b_inputs = [i for i in b.graph.input if i.name not in set(links.values())]
    clash = (tensor_names(a.graph) & tensor_names(b.graph)) - set(links.values())
    if clash:
        raise GraphError(f"both graphs use the names {sorted(clash)[:5]}: give merge() prefixes")
    graph = helper.make_graph(
        [*a.graph.node, *b.graph.node], f"{a.graph.name}+{b.graph.name}",
        [*a.graph.input, *b_inputs], [*a.graph.output, *b.graph.output],
        [*a.graph.initializer, *b.graph.initializer], value_info=[*a.graph.value_info, *b.graph.value_info],
        sparse_initializer=[*a.graph.sparse_initializer, *b.graph.sparse_initializer],
    )  # fmt: skip
    model = helper.make_model(graph, opset_imports=_opset_imports(a, b), producer_name="kaocap")
    model.ir_version = max(a.ir_version, b.ir_version)
    model.functions.extend([*a.functions, *b.functions])
    props = {p.key: p.value for p in (*b.metadata_props, *a.metadata_props)}
    helper.set_model_props(model, props)
    return model


def _same_opset(first: ModelProto, second: ModelProto) -> tuple[ModelProto, ModelProto]:
    va, vb = opset(first), opset(second)
    if va and vb and va != vb:
        return (change_opset(first, vb), second) if va < vb else (first, change_opset(second, va))
    return first, second


def _check_links(a: ModelProto, b: ModelProto, links: Mapping[str, str]) -> None:
    b_inputs = {i.name: i for i in b.graph.input}
    missing = [k for k in links if k not in b_inputs]
    if missing:
        raise GraphError(f"io_map names inputs the second graph lacks: {missing}")
    a_names = tensor_names(a.graph)
    unknown = [v for v in links.values() if v not in a_names]
    if unknown:
        raise GraphError(f"io_map names tensors the first graph lacks: {unknown}")
    a_types = infer_value_infos(a)
    for target, source in links.items():
        want = b_inputs[target].type.tensor_type.elem_type
        got = a_types[source].type.tensor_type.elem_type if source in a_types else want
        if want and got and want != got:
            raise GraphError(f"{source!r} ({helper.tensor_dtype_to_string(got)}) cannot feed "
                             f"{target!r} ({helper.tensor_dtype_to_string(want)})")


def _opset_imports(a: ModelProto, b: ModelProto) -> list:
    versions: dict[str, int] = {}
    for entry in (*a.opset_import, *b.opset_import):
        domain = "" if entry.domain == "ai.onnx" else entry.domain
        if domain in versions and versions[domain] != entry.version and domain:
            raise GraphError(f"the graphs import domain {domain!r} at versions {versions[domain]} and {entry.version}")
        versions[domain] = max(versions.get(domain, 0), entry.version)
    return [helper.make_opsetid(d, v) for d, v in versions.items()]
