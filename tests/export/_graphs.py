"""Tiny graphs (3-5 nodes) built with onnx.helper for the pass tests."""

from __future__ import annotations

from collections import Counter

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

OPSET = 17


def model(nodes, inputs, outputs, initializers=(), opset: int = OPSET) -> onnx.ModelProto:
    """A checked model of ``nodes``; inputs/outputs as (name, elem_type, shape)."""
    graph = helper.make_graph(
        nodes, "tiny",
        [helper.make_tensor_value_info(*i) for i in inputs],
        [helper.make_tensor_value_info(*o) for o in outputs],
        [numpy_helper.from_array(np.asarray(v), n) for n, v in initializers],
    )  # fmt: skip
    m = helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)])
    m.ir_version = 8
    onnx.checker.check_model(m)
    return m


def ops(m: onnx.ModelProto) -> Counter:
    """Op histogram of the main graph."""
    return Counter(n.op_type for n in m.graph.node)


F = TensorProto.FLOAT


def affine_relu(scale: float = 2.0, name: str = "y", opset: int = OPSET) -> onnx.ModelProto:
    """x [N,3] -> Mul(w) -> Add(b) -> Relu -> y [N,3]; intermediates 'scaled', 'shifted'."""
    return model(
        [helper.make_node("Mul", ["x", "w"], ["scaled"], name="mul"),
         helper.make_node("Add", ["scaled", "b"], ["shifted"], name="add"),
         helper.make_node("Relu", ["shifted"], [name], name="relu")],
        [("x", F, ["N", 3])], [(name, F, ["N", 3])],
        [("w", np.full(3, scale, np.float32)), ("b", np.array([0.5, -0.5, 0.0], np.float32))], opset,
    )  # fmt: skip


def two_heads(opset: int = OPSET) -> onnx.ModelProto:
    """x [N,3] -> Relu -> h; h -> Neg -> a [N,3]; h -> Exp -> ReduceSum -> b [N,1].

    Before opset 13 ReduceSum takes its axes as an attribute, from 13 on as an input."""
    if opset < 13:
        reduce, inits = helper.make_node("ReduceSum", ["e"], ["b"], keepdims=1, axes=[1]), []
    else:
        reduce, inits = helper.make_node("ReduceSum", ["e", "axes"], ["b"], keepdims=1), [("axes", np.array([1], np.int64))]
    return model(
        [helper.make_node("Relu", ["x"], ["h"]), helper.make_node("Neg", ["h"], ["a"]),
         helper.make_node("Exp", ["h"], ["e"]), reduce],
        [("x", F, ["N", 3])], [("a", F, ["N", 3]), ("b", F, ["N", 1])], inits, opset,
    )  # fmt: skip


def constant_chain() -> onnx.ModelProto:
    """Constant c -> Add(c, k) -> Sqrt -> s; x [N,3] * s -> Relu -> y: 3 constant nodes."""
    c = helper.make_node("Constant", [], ["c"], value=numpy_helper.from_array(np.array([1.0, 4.0, 9.0], np.float32)))
    return model(
        [c, helper.make_node("Add", ["c", "k"], ["ck"]), helper.make_node("Sqrt", ["ck"], ["s"]),
         helper.make_node("Mul", ["x", "s"], ["xs"]), helper.make_node("Relu", ["xs"], ["y"])],
        [("x", F, ["N", 3])], [("y", F, ["N", 3])], [("k", np.array([0.0, 5.0, 7.0], np.float32))],
    )  # fmt: skip


def batch_one_reshape() -> onnx.ModelProto:
    """x [1,2,2,3] -> Relu -> Reshape [1,12] -> MatMul W [12,4] -> y [1,4] (a batch-1 export)."""
    w = np.arange(48, dtype=np.float32).reshape(12, 4) / 48
    return model(
        [helper.make_node("Relu", ["x"], ["r"]),
         helper.make_node("Reshape", ["r", "shape"], ["flat"]),
         helper.make_node("MatMul", ["flat", "w"], ["y"])],
        [("x", F, [1, 2, 2, 3])], [("y", F, [1, 4])],
        [("shape", np.array([1, 12], np.int64)), ("w", w)],
    )  # fmt: skip


def conv_net(layout: str = "NCHW", size: int = 64, seed: int = 0, opset: int = OPSET) -> onnx.ModelProto:
    """A small CNN exported with a fixed batch of 1, as converters often leave it.

    image [1,3,S,S] (NCHW) or [1,S,S,3] (NHWC, then a Transpose first, as TF exports have)
    -> Conv 3x3/2 -> Relu -> Conv 3x3/2 -> Relu -> two heads:
    ``embedding`` [1,5] (GlobalAveragePool -> Reshape [1,8] -> Gemm) and
    ``heatmap`` [1,1,S/4,S/4] (Conv 1x1).
    """
    rng = np.random.default_rng(seed)
    w = lambda *shape: (rng.standard_normal(shape) * 0.3).astype(np.float32)
    nodes, x = [], "image"
    if layout == "NHWC":
        nodes.append(helper.make_node("Transpose", ["image"], ["nchw"], perm=[0, 3, 1, 2]))
        x = "nchw"
    nodes += [
        helper.make_node("Conv", [x, "w1", "b1"], ["c1"], strides=[2, 2], pads=[1, 1, 1, 1]),
        helper.make_node("Relu", ["c1"], ["r1"]),
        helper.make_node("Conv", ["r1", "w2", "b2"], ["c2"], strides=[2, 2], pads=[1, 1, 1, 1]),
        helper.make_node("Relu", ["c2"], ["r2"]),
        helper.make_node("GlobalAveragePool", ["r2"], ["pooled"]),
        helper.make_node("Reshape", ["pooled", "flat"], ["features"]),
        helper.make_node("Gemm", ["features", "w3", "b3"], ["embedding"]),
        helper.make_node("Conv", ["r2", "w4"], ["heatmap"]),
    ]
    shape = [1, 3, size, size] if layout == "NCHW" else [1, size, size, 3]
    inits = [("w1", w(8, 3, 3, 3)), ("b1", w(8)), ("w2", w(8, 8, 3, 3)), ("b2", w(8)),
             ("flat", np.array([1, 8], np.int64)), ("w3", w(8, 5)), ("b3", w(5)), ("w4", w(1, 8, 1, 1))]
    return model(nodes, [("image", F, shape)],
                 [("embedding", F, [1, 5]), ("heatmap", F, [1, 1, size // 4, size // 4])], inits, opset)  # fmt: skip
