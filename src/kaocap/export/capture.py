"""The fused capture step: ONE ONNX graph from uint8 frames and ROI transforms to network outputs.

``frames`` (N, H, W, 3) uint8 + ``rois`` (N, K, 2, 3) crop matrices or (N, K, 5) rectangles
-> crop inside the graph (GridSample, OpenCV's pixel convention, border replicate; see
:mod:`kaocap.export.crop_graph`) -> ``pixel * scale + offset`` -> the network -> each network
output reshaped from (N*K, ...) to (N, K, ...). A user of any ONNX runtime (C++, C#, Unity,
web) needs no Python pre-processing.

The network is any ONNX model with one float32 input of rank 4 whose layout ("NCHW" or
"NHWC") is stated, never guessed; its batch is made dynamic (``set_batch``) and the only
Transposes added are the frame's HWC -> CHW before sampling and one on the crops.

>>> from kaocap.export.capture import CaptureOptions, fuse
>>> fuse("landmarks.onnx", "capture.onnx", CaptureOptions(layout="NHWC"))  # doctest: +SKIP
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

import cv2
import numpy as np
from numpy.typing import NDArray
from onnx import ModelProto, helper

from kaocap.errors import ConfigError
from kaocap.export import parity
from kaocap.export._onnx import graph_inputs, load_model, value_shape
from kaocap.export.crop_graph import LAYOUTS, ROI_FORMATS, crop_graph
from kaocap.export.fuse import GraphError, cut_outputs, merge, set_batch
from kaocap.export.fuse._graph import opset
from kaocap.export.stats import GraphStats, graph_stats
from kaocap.types import Roi

FRAMES, ROIS, CROP = "frames", "rois", "crop/image"
#: Prefix of the network's tensors inside the fused graph (its outputs keep their names).
NET_SCOPE = "net/"


@dataclass(frozen=True, slots=True)
class CaptureOptions:
    """How the fused graph feeds the network.

    layout: the network input's layout, "NCHW" or "NHWC".
    size: crop side S px; None = the network input's fixed (square) spatial size.
    roi_format: "matrix": rois (N, K, 2, 3) float32 = ``roi.crop_matrix(S)`` (image px -> crop
        px); "rect": rois (N, K, 5) float32 ``cx, cy, w, h`` px, ``rotation_rad``.
    scale, offset: network input = pixel value (0..255) * scale + offset; one value or three
        (per channel, in the frames' channel order).
    round_pixels: round sampled values as a uint8 crop does (see crop_graph).
    """

    layout: str
    size: int | None = None
    roi_format: str = "matrix"
    scale: float | tuple[float, float, float] = 1 / 255
    offset: float | tuple[float, float, float] = 0.0
    round_pixels: bool = True

    def __post_init__(self) -> None:
        if self.layout not in LAYOUTS:
            raise ConfigError(f"layout must be one of {', '.join(LAYOUTS)}, got {self.layout!r}")
        if self.roi_format not in ROI_FORMATS:
            raise ConfigError(f"roi_format must be one of {', '.join(ROI_FORMATS)}, got {self.roi_format!r}")


@dataclass(frozen=True, slots=True)
class FuseResult:
    """What ``fuse`` wrote: the path, its parity report and its graph statistics."""

    path: Path
    parity: parity.ParityReport
    stats: GraphStats


def crop_size(network: ModelProto, options: CaptureOptions) -> int:
    """The crop side S: ``options.size``, else the network input's fixed square H = W."""
    if options.size is not None:
        return options.size
    shape = value_shape(_network_input(network))
    hw = shape[2:4] if options.layout == "NCHW" else shape[1:3]
    if not all(isinstance(d, int) and d > 0 for d in hw) or hw[0] != hw[1]:
        raise ConfigError(f"network input {shape} ({options.layout}) has no fixed square size: give a size")
    return int(hw[0])


def _network_input(network: ModelProto):
    inputs = graph_inputs(network)
    if len(inputs) != 1:
        raise GraphError(f"the network must have one input, it has {[i.name for i in inputs]}")
    value = inputs[0]
    if value.type.tensor_type.elem_type != 1 or len(value.type.tensor_type.shape.dim) != 4:
        raise GraphError(f"network input {value.name!r} must be a float32 tensor of rank 4")
    return value


def fuse_capture(network: ModelProto | str | Path, options: CaptureOptions) -> ModelProto:
    """The fused graph: inputs ``frames``, ``rois``; the network's outputs, each (N, K, ...)."""
    net = set_batch(load_model(network), "faces")
    net_input = _network_input(net).name
    size, version = crop_size(net, options), max(17, opset(net))
    crop = crop_graph(size, roi_format=options.roi_format, layout=options.layout, scale=options.scale,
                      offset=options.offset, round_pixels=options.round_pixels, opset=version,
                      frames=FRAMES, rois=ROIS, output=CROP)  # fmt: skip
    fused = merge(crop, net, {net_input: CROP}, prefixes=("", NET_SCOPE))
    outputs = list(net.graph.output)
    links = {ROIS: ROIS, **{f"unflatten/{o.name}/in": NET_SCOPE + o.name for o in outputs}}
    fused = merge(fused, _unflatten_graph(crop, outputs, version), links)
    fused = cut_outputs(fused, [CROP, *(NET_SCOPE + o.name for o in outputs)])
    meta = {**asdict(options), "size": size, "frames": FRAMES, "rois": ROIS}
    helper.set_model_props(fused, {**{p.key: p.value for p in fused.metadata_props},
                                   "kaocap.capture": json.dumps(meta)})  # fmt: skip
    return fused


def _unflatten_graph(crop: ModelProto, outputs: Sequence, version: int) -> ModelProto:
    """Inputs ``rois`` and each flat output (N*K, ...) -> the output (N, K, ...)."""
    nodes = [helper.make_node("Shape", [ROIS], ["unflatten/nk"], start=0, end=2)]
    ins, outs = [next(i for i in crop.graph.input if i.name == ROIS)], []
    for out in outputs:
        flat, rest = f"unflatten/{out.name}/in", f"unflatten/{out.name}/rest"
        nodes += [helper.make_node("Shape", [flat], [rest], start=1),
                  helper.make_node("Concat", ["unflatten/nk", rest], [f"{rest}/shape"], axis=0),
                  helper.make_node("Reshape", [flat, f"{rest}/shape"], [out.name])]  # fmt: skip
        dims = value_shape(out)
        elem = out.type.tensor_type.elem_type
        ins.append(helper.make_tensor_value_info(flat, elem, dims))
        outs.append(helper.make_tensor_value_info(out.name, elem, ["N", "K", *dims[1:]]))
    graph = helper.make_graph(nodes, "unflatten", ins, outs)
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", version)])


def roi_feed(rois: Sequence[Sequence[Roi]], size: int, roi_format: str = "matrix") -> NDArray[np.float32]:
    """The ``rois`` input for K ROIs in each of N frames: (N, K, 2, 3) or (N, K, 5) float32."""
    if roi_format == "matrix":
        return np.array([[r.crop_matrix(size) for r in frame] for frame in rois], np.float32)
    return np.array([[[*r.center_xy, *r.size_wh, r.rotation_rad] for r in frame] for frame in rois], np.float32)


def _rois_from_feed(rois: NDArray, size: int, roi_format: str) -> list[NDArray[np.float64]]:
    """(N*K) crop matrices (2, 3) from a ``rois`` feed."""
    if roi_format == "matrix":
        return list(np.asarray(rois, np.float64).reshape(-1, 2, 3))
    return [Roi(r[:2].astype(np.float32), r[2:4].astype(np.float32), float(r[4])).crop_matrix(size)
            for r in np.asarray(rois, np.float32).reshape(-1, 5)]  # fmt: skip


def unfused_capture(network, options: CaptureOptions) -> Callable[[Mapping[str, NDArray]], dict[str, NDArray]]:
    """The same step unfused, the parity reference: per face ``cv2.warpAffine`` (INTER_LINEAR,
    BORDER_REPLICATE) -> ``* scale + offset`` -> the network through a runtime Session (a path
    opens with onnxruntime), one face per call. Outputs (N, K, ...)."""
    from kaocap.runtime import open_session

    session = open_session(network, "onnxruntime") if isinstance(network, (str, Path)) else network
    name = session.inputs[0].name
    shape = session.inputs[0].shape
    size = options.size or (shape[2] if options.layout == "NCHW" else shape[1])
    if size < 1:
        raise ConfigError(f"network input {shape} ({options.layout}) has no fixed size: give a size")
    scale, offset = np.asarray(options.scale, np.float32), np.asarray(options.offset, np.float32)

    def run(feeds: Mapping[str, NDArray]) -> dict[str, NDArray]:
        frames, rois = np.asarray(feeds[FRAMES]), np.asarray(feeds[ROIS])
        n, k = rois.shape[:2]
        results: list[dict[str, NDArray]] = []
        for i, matrix in enumerate(_rois_from_feed(rois, size, options.roi_format)):
            crop = cv2.warpAffine(frames[i // k], matrix, (size, size), flags=cv2.INTER_LINEAR,
                                  borderMode=cv2.BORDER_REPLICATE).astype(np.float32)  # fmt: skip
            x = crop * scale + offset
            x = x.transpose(2, 0, 1) if options.layout == "NCHW" else x
            results.append(session.run({name: x[None].astype(np.float32)}))
        return {o: np.concatenate([r[o] for r in results]).reshape(n, k, *results[0][o].shape[1:])
                for o in results[0]}  # fmt: skip

    return run


def example_inputs(size: int, roi_format: str = "matrix") -> dict[str, NDArray]:
    """Parity inputs from the embedded portrait: 2 frames (it and its mirror) x 3 ROIs each
    (the face, rotated, and one reaching past the image edge)."""
    from kaocap.capture import default_image

    image = default_image()
    frames = np.stack([image, np.ascontiguousarray(image[:, ::-1])])
    c, s = np.array([256, 200], np.float32), np.float32(240)
    rois = [Roi(c, np.array([s, s], np.float32), 0.0), Roi(c + 10, np.array([s, s * 1.2], np.float32), 0.4),
            Roi(np.array([60, 470], np.float32), np.array([300, 300], np.float32), -0.75 * math.pi)]
    return {FRAMES: frames, ROIS: roi_feed([rois, rois], size, roi_format)}


def fuse(network: str | Path, out: str | Path, options: CaptureOptions, *,
         inputs: Mapping[str, NDArray] | Sequence[Mapping[str, NDArray]] | None = None,
         tolerance: float | Mapping[str, float] = 1e-3, runtimes: Sequence[str] = ()) -> FuseResult:
    """Build the fused graph of ``network``, check it against :func:`unfused_capture`, write it.

    inputs: parity feeds (default :func:`example_inputs`); tolerance: max abs error per
    output; runtimes: also run the written file on these runtimes (e.g. "openvino") and
    compare; the file is removed if one disagrees. Raises ParityError, nothing written.
    """
    fused = fuse_capture(network, options)
    size = crop_size(load_model(network), options)
    feeds = inputs if inputs is not None else example_inputs(size, options.roi_format)
    reference = unfused_capture(network, options)
    report = parity.save_checked(fused, out, reference, feeds, tolerance)
    for runtime in runtimes:
        from kaocap.runtime import open_session

        try:
            parity.check(reference, open_session(out, runtime), feeds, tolerance)
        except parity.ParityError:
            Path(out).unlink(missing_ok=True)
            raise
    return FuseResult(Path(out), report, graph_stats(out))
