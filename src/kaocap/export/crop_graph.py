"""An ONNX graph that crops rotated ROIs out of uint8 frames and normalises them.

Geometry (the runtime's, :meth:`kaocap.types.Roi.crop_matrix` + ``cv2.warpAffine``):

* Pixel ``(x, y)`` of an ``S x S`` crop is centred at integer ``(x, y)``; the crop matrix
  ``M`` (2, 3) maps image px to crop px, so the crop pixel samples the image at
  ``M^-1 (x, y, 1)``, with image pixel centres at integers too (OpenCV's convention).
* Bilinear sampling; outside the image the border pixels are replicated
  (``cv2.BORDER_REPLICATE``).

In the graph: image coordinates ``u`` become GridSample's normalised coordinates with
``align_corners=0``, ``g = (2u + 1) / W - 1``, and ``padding_mode="border"`` clamps to the
border pixels, which is what BORDER_REPLICATE does for bilinear sampling.

Inputs:
* ``frames``: (N, H, W, 3) uint8, any channel order (passed through), H and W dynamic.
* ``rois``: ``roi_format="matrix"``: (N, K, 2, 3) float32 crop matrices, image px -> crop px
  (``roi.crop_matrix(S)``); ``roi_format="rect"``: (N, K, 5) float32
  ``cx, cy, w, h`` px and ``rotation_rad`` (clockwise as seen, :class:`kaocap.types.Roi`).
  K ROIs per frame (pad with any ROI where a frame has fewer faces).

Output ``crop``: (N*K, 3, S, S) (``layout="NCHW"``) or (N*K, S, S, 3) (``"NHWC"``) float32,
frame-major, ``pixel * scale + offset`` per channel.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from onnx import ModelProto, TensorProto, helper, numpy_helper

from kaocap.errors import ConfigError

ROI_FORMATS = ("matrix", "rect")
LAYOUTS = ("NCHW", "NHWC")
#: Prefix of every name inside the crop graph.
SCOPE = "crop/"


class _Nodes:
    """Collects nodes and constants under :data:`SCOPE`."""

    def __init__(self) -> None:
        self.nodes: list = []
        self.inits: list = []
        self._names: set[str] = set()

    def _new(self, name: str) -> str:
        full = name if name.startswith(SCOPE) else SCOPE + name
        if full in self._names:
            raise ValueError(f"{full} is defined twice")  # a bug in this module, not bad input
        self._names.add(full)
        return full

    def const(self, name: str, value) -> str:
        full = self._new(name)
        self.inits.append(numpy_helper.from_array(np.asarray(value), full))
        return full

    def op(self, op_type: str, inputs: Sequence[str], name: str, **attrs) -> str:
        out = self._new(name)
        self.nodes.append(helper.make_node(op_type, list(inputs), [out], name=out, **attrs))
        return out


def crop_graph(size: int, *, roi_format: str = "matrix", layout: str = "NCHW",
               scale: float | Sequence[float] = 1 / 255, offset: float | Sequence[float] = 0.0,
               round_pixels: bool = True, opset: int = 17, frames: str = "frames", rois: str = "rois",
               output: str = "crop/image") -> ModelProto:
    """The crop + normalisation graph described in the module docstring (opset >= 16).

    round_pixels: round sampled values to integers before normalising, as a uint8 crop
    (``cv2.warpAffine`` on a uint8 frame) does: measured on the embedded portrait, crops then
    equal OpenCV's but for rare off-by-one pixels (mean |diff| < 0.02 levels); without
    rounding they differ by up to 0.5 levels everywhere.

    >>> m = crop_graph(256, layout="NHWC")                            # doctest: +SKIP
    >>> session.run({"frames": frames, "rois": matrices})["crop/image"].shape  # (N*K, 256, 256, 3)
    """
    _check_options(size, roi_format, layout, opset)
    b = _Nodes()
    image = b.op("Cast", [b.op("Transpose", [frames], "nchw_u8", perm=[0, 3, 1, 2])], "nchw", to=TensorProto.FLOAT)
    inverse = _inverse_matrix_t(b, rois) if roi_format == "matrix" else _rect_inverse_t(b, rois, size)
    grid = _grid(b, frames, *inverse, size)
    mode = "linear" if opset >= 20 else "bilinear"
    crop = b.op("GridSample", [image, grid], "sampled", mode=mode, padding_mode="border", align_corners=0)
    if round_pixels:
        crop = b.op("Round", [crop], "rounded")
    crop = _normalise(b, crop, scale, offset)
    perm = [0, 2, 1, 3, 4] if layout == "NCHW" else [0, 2, 3, 4, 1]
    per_face = b.op("Reshape", [crop, b.const("split_k", [0, 3, -1, size, size])], "per_face")
    moved = b.op("Transpose", [per_face], "faces_first", perm=perm)
    flat = [-1, 3, size, size] if layout == "NCHW" else [-1, size, size, 3]
    b.op("Reshape", [moved, b.const("flat_shape", flat)], output)
    roi_shape = ["N", "K", 2, 3] if roi_format == "matrix" else ["N", "K", 5]
    out_shape = ["faces", 3, size, size] if layout == "NCHW" else ["faces", size, size, 3]
    graph = helper.make_graph(
        b.nodes, "crop",
        [helper.make_tensor_value_info(frames, TensorProto.UINT8, ["N", "H", "W", 3]),
         helper.make_tensor_value_info(rois, TensorProto.FLOAT, roi_shape)],
        [helper.make_tensor_value_info(output, TensorProto.FLOAT, out_shape)], b.inits,
    )  # fmt: skip
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)], producer_name="kaocap")
    model.ir_version = 8
    return model


def _check_options(size: int, roi_format: str, layout: str, opset: int) -> None:
    if roi_format not in ROI_FORMATS:
        raise ConfigError(f"roi_format must be one of {ROI_FORMATS}, got {roi_format!r}")
    if layout not in LAYOUTS:
        raise ConfigError(f"layout must be one of {LAYOUTS}, got {layout!r}")
    if not isinstance(size, int) or size < 1:
        raise ConfigError(f"crop size must be a positive int, got {size!r}")
    if opset < 16:
        raise ConfigError(f"GridSample needs opset >= 16, got {opset}")


def _inverse_matrix_t(b: _Nodes, rois: str) -> tuple[str, str]:
    """The inverse of each (2, 3) crop matrix [A | t], transposed: ``A^-T`` (N, K, 2, 2) and
    ``-(A^-1 t)^T`` (N, K, 1, 2), so that ``[x, y] @ A^-T + row = M^-1 (x, y, 1)``."""
    a = b.op("Slice", [rois, b.const("a_lo", [0]), b.const("a_hi", [2]), b.const("last", [-1])], "a")
    a4 = b.op("Reshape", [a, b.const("k4", [0, 0, 4])], "a4")  # [a, b, c, d]
    rev = b.op("Gather", [a4, b.const("rev_idx", np.array([3, 2, 1, 0], np.int64))], "rev", axis=-1)
    det = b.op("MatMul", [b.op("Mul", [a4, rev], "a_rev"),
                          b.const("det_w", np.array([[0.5], [-0.5], [-0.5], [0.5]], np.float32))], "det")  # fmt: skip
    signed = b.op("Mul", [rev, b.const("adj_sign", np.array([1, -1, -1, 1], np.float32))], "adj")  # [d,-c,-b,a]
    inv4 = b.op("Div", [signed, det], "inv4")
    inv_a_t = b.op("Reshape", [inv4, b.const("k22", [0, 0, 2, 2])], "inv_a_t")
    t = b.op("Slice", [rois, b.const("t_lo", [2]), b.const("t_hi", [3]), b.const("last_t", [-1])], "t")
    t_row = b.op("Reshape", [t, b.const("k12", [0, 0, 1, 2])], "t_row")
    inv_t_row = b.op("Neg", [b.op("MatMul", [t_row, inv_a_t], "t_inv_a_t")], "inv_t_row")
    return inv_a_t, inv_t_row


def _rect_inverse_t(b: _Nodes, rois: str, size: int) -> tuple[str, str]:
    """As :func:`_inverse_matrix_t` from ``cx, cy, w, h, rotation``: crop px -> image px is
    ``u = c + R diag(w, h) / S (p - S/2)``, R the rotation (as in Roi.crop_matrix)."""
    def part(name: str, lo: int, hi: int) -> str:
        return b.op("Slice", [rois, b.const(f"{name}_lo", [lo]), b.const(f"{name}_hi", [hi]),
                              b.const(f"{name}_axis", [-1])], name)  # fmt: skip

    centre, wh, angle = part("centre", 0, 2), part("wh", 2, 4), part("angle", 4, 5)
    cos, sin = b.op("Cos", [angle], "cos"), b.op("Sin", [angle], "sin")
    rot4 = b.op("Concat", [cos, sin, b.op("Neg", [sin], "neg_sin"), cos], "rot4", axis=-1)  # [c, s, -s, c]
    wwhh = b.op("Gather", [wh, b.const("wwhh_idx", np.array([0, 0, 1, 1], np.int64))], "wwhh", axis=-1)
    inv4 = b.op("Mul", [b.op("Mul", [rot4, wwhh], "rot_wh"), b.const("inv_size", np.float32(1.0 / size))], "inv4")
    inv_a_t = b.op("Reshape", [inv4, b.const("k22", [0, 0, 2, 2])], "inv_a_t")
    half = b.const("half", np.full((1, 2), size / 2, np.float32))
    centre_row = b.op("Reshape", [centre, b.const("k12", [0, 0, 1, 2])], "centre_row")
    inv_t_row = b.op("Sub", [centre_row, b.op("MatMul", [half, inv_a_t], "half_inv_a_t")], "inv_t_row")
    return inv_a_t, inv_t_row


def _grid(b: _Nodes, frames: str, inv_a_t: str, inv_t_row: str, size: int) -> str:
    """(N, K*S, S, 2) GridSample coordinates of every crop pixel (K crops stacked in height).

    Separable: image xy of crop pixel (x, y) = x * row 0 + y * row 1 of ``A^-T`` + the
    translation row, built from two (S, 2) constants (not an S*S table) by broadcasting."""
    axis = np.arange(size, dtype=np.float32)
    xs = b.const("xs", np.stack([axis, np.zeros_like(axis)], 1))  # (S, 2) rows [x, 0]
    ys = b.const("ys", np.stack([np.zeros_like(axis), axis], 1))  # (S, 2) rows [0, y]
    x_part = b.op("Reshape", [b.op("MatMul", [xs, inv_a_t], "x_rows"), b.const("k1s", [0, 0, 1, size, 2])], "x_part")
    y_part = b.op("Reshape", [b.op("MatMul", [ys, inv_a_t], "y_rows"), b.const("ks1", [0, 0, size, 1, 2])], "y_part")
    offset = b.op("Reshape", [inv_t_row, b.const("k11", [0, 0, 1, 1, 2])], "offset_row")
    image_xy = b.op("Add", [b.op("Add", [x_part, y_part], "xy_sum"), offset], "image_xy")  # (N, K, S, S, 2)
    shape = b.op("Shape", [frames], "frames_shape")
    wh = b.op("Cast", [b.op("Gather", [shape, b.const("wh_axes", np.array([2, 1], np.int64))], "wh_i")],
              "wh_f", to=TensorProto.FLOAT)  # fmt: skip
    two, one = b.const("two", np.float32(2.0)), b.const("one", np.float32(1.0))
    grid_scale = b.op("Div", [two, wh], "grid_scale")  # g = u * 2/W + (1/W - 1)
    grid_shift = b.op("Sub", [b.op("Div", [one, wh], "inv_wh"), one], "grid_shift")
    grid = b.op("Add", [b.op("Mul", [image_xy, grid_scale], "grid_scaled"), grid_shift], "grid_flat")
    return b.op("Reshape", [grid, b.const("grid_shape", [0, -1, size, 2])], "grid")


def _normalise(b: _Nodes, crop: str, scale, offset) -> str:
    """``crop * scale + offset``, per channel where given three values (dim 1 of NCHW)."""
    for name, value, op, neutral in (("scale", scale, "Mul", 1.0), ("offset", offset, "Add", 0.0)):
        arr = np.asarray(value, np.float32)
        if arr.size not in (1, 3):
            raise ConfigError(f"{name} must be one value or three (per channel), got {arr.size}")
        if np.all(arr == neutral):
            continue
        const = b.const(name, arr.reshape(1, 3, 1, 1) if arr.size == 3 else arr.reshape(()))
        crop = b.op(op, [crop, const], f"normalised_{name}")
    return crop
