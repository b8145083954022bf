"""The fused capture graph equals the unfused pipeline (cv2.warpAffine -> normalise -> network)
on real face frames, on onnxruntime and OpenVINO."""

from __future__ import annotations

import math

import cv2
import numpy as np
import onnx
import pytest

from kaocap.capture import default_image, read_image
from kaocap.errors import ConfigError
from kaocap.export import parity
from kaocap.export._onnx import run_model
from kaocap.export.capture import CaptureOptions, fuse, fuse_capture, roi_feed, unfused_capture
from kaocap.export.crop_graph import crop_graph
from kaocap.export.fuse import GraphError
from kaocap.runtime import available_runtimes
from kaocap.types import Roi
from tests.conftest import shared
from tests.export._graphs import conv_net

S = 64
#: Max abs error per output of the test network. ``embedding`` pools the whole crop: 1e-3 holds
#: with a wide margin (measured <1e-5). ``heatmap`` is per pixel: OpenCV's float warp rounds a
#: few crop pixels (0.003-0.1 %, each within 2e-3 of a .5 tie) the other way, one grey level,
#: which moves the heatmap values near them by up to ~2.5e-3 (measured on these frames); the
#: other heatmap values stay within 1e-3 (checked below).
TOLERANCE = {"embedding": 1e-3, "heatmap": 5e-3}
RUNTIMES = tuple(r for r in ("onnxruntime", "openvino") if r in available_runtimes())


@pytest.fixture(scope="module")
def face_roi() -> Roi:
    """The ROI kaocap's Pipeline finds on the embedded portrait."""
    from kaocap import Pipeline
    from kaocap.config import PipelineConfig

    cfg = PipelineConfig.image_mode()
    with Pipeline(cfg) as pipe:
        return pipe(default_image(), 1).faces[0].roi


def _variants(roi: Roi, shift_xy=(0.0, 0.0)) -> list[Roi]:
    """Four ROIs per frame: the face, turned, larger and off-centre (past the edge), small."""
    c = roi.center_xy + np.asarray(shift_xy, np.float32)
    return [Roi(c, roi.size_wh, roi.rotation_rad),
            Roi(c + 7.3, roi.size_wh * 0.9, roi.rotation_rad + 0.6),
            Roi(c + np.float32([-180, 150]), roi.size_wh * 1.4, -0.8 * math.pi),
            Roi(c - 11.1, roi.size_wh * 0.45, roi.rotation_rad - 0.2)]  # fmt: skip


def _real_feeds(face_roi: Roi, roi_format: str) -> dict[str, np.ndarray]:
    """2 real frames (the portrait and a shifted copy) x 4 ROIs from the Pipeline's result."""
    image = default_image()
    moved = np.roll(image, (17, -23), axis=(0, 1))
    rois = [_variants(face_roi), _variants(face_roi, (-23, 17))]
    return {"frames": np.stack([image, moved]), "rois": roi_feed(rois, S, roi_format)}


def _net(tmp_path, layout: str, size: int = S):
    path = tmp_path / f"net_{layout}.onnx"
    onnx.save(conv_net(layout, size), str(path))
    return path


@pytest.mark.parametrize("roi_format", ["matrix", "rect"])
@pytest.mark.parametrize("layout", ["NCHW", "NHWC"])
def test_fused_equals_unfused_on_real_faces(tmp_path, face_roi, layout, roi_format):
    options = CaptureOptions(layout=layout, roi_format=roi_format)
    feeds = _real_feeds(face_roi, roi_format)
    result = fuse(_net(tmp_path, layout), tmp_path / "fused.onnx", options, inputs=feeds,
                  tolerance=TOLERANCE, runtimes=RUNTIMES)  # fmt: skip
    assert result.parity.max_abs_error["embedding"] < 1e-4
    assert [name for name, _ in result.stats.inputs] == ["frames", "rois"]
    assert dict(result.stats.outputs) == {"embedding": ("N", "K", 5), "heatmap": ("N", "K", 1, S // 4, S // 4)}
    # The crop adds two Transposes (frame HWC -> CHW, crops to faces-first); the NHWC net has its own.
    assert result.stats.transposes == (3 if layout == "NHWC" else 2)
    assert result.stats.op_histogram["GridSample"] == 1
    out, ref = run_model(onnx.load(str(result.path)), feeds), unfused_capture(_net(tmp_path, layout), options)(feeds)
    assert out["embedding"].shape == (2, 4, 5)
    assert np.mean(np.abs(out["heatmap"] - ref["heatmap"]) > 1e-3) < 0.005


def test_one_frame_many_faces_of_a_real_photo(tmp_path):
    """A real group photo: every face kaocap finds, in one call."""
    from kaocap import Pipeline
    from kaocap.config import PipelineConfig

    image = read_image(shared("images", "codeformer", "inputs", "whole_imgs", "02.jpg"))
    cfg = PipelineConfig.image_mode(max_faces=4)
    with Pipeline(cfg) as pipe:
        rois = [face.roi for face in pipe(image, 1).faces]
    assert len(rois) == 4
    feeds = {"frames": image[None], "rois": roi_feed([rois], 256)}
    result = fuse(_net(tmp_path, "NHWC", 256), tmp_path / "fused.onnx", CaptureOptions(layout="NHWC"),
                  inputs=feeds, tolerance=TOLERANCE, runtimes=RUNTIMES)  # fmt: skip
    assert result.parity.max_abs_error["embedding"] < 1e-4


def test_crops_match_opencv_pixels(face_roi):
    feeds = _real_feeds(face_roi, "matrix")
    crops = run_model(crop_graph(S, layout="NHWC", scale=1.0), feeds)["crop/image"].reshape(2, 4, S, S, 3)
    for n in range(2):
        for k in range(4):
            ref = cv2.warpAffine(feeds["frames"][n], feeds["rois"][n, k].astype(np.float64), (S, S),
                                 flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)  # fmt: skip
            diff = np.abs(crops[n, k] - ref)
            assert diff.max() <= 1.0 and (diff == 0).mean() > 0.995, (n, k)


def test_normalisation_per_channel_and_unrounded(tmp_path, face_roi):
    options = CaptureOptions(layout="NCHW", scale=(1 / 127.5, 1 / 127.5, 1 / 64), offset=(-1, -1, -2),
                             round_pixels=False)  # fmt: skip
    net = _net(tmp_path, "NCHW")
    feeds = _real_feeds(face_roi, "matrix")
    # Unrounded crops differ from uint8 ones by up to half a grey level everywhere.
    parity.check(unfused_capture(net, options), fuse_capture(net, options), feeds, {"embedding": 2e-3},
                 output_map=["embedding"])  # fmt: skip


@pytest.mark.parametrize("version", [13, 21])
def test_other_network_opsets(tmp_path, face_roi, version):
    """An older network is converted up to 17; from opset 20 on GridSample's mode is 'linear'."""
    net = tmp_path / "net.onnx"
    onnx.save(conv_net("NCHW", S, opset=version), str(net))
    options = CaptureOptions(layout="NCHW")
    fused = fuse_capture(net, options)
    assert {o.domain: o.version for o in fused.opset_import}[""] == max(17, version)
    parity.check(unfused_capture(net, options), fused, _real_feeds(face_roi, "matrix"), TOLERANCE)


def test_network_must_be_one_float_image_and_layout_valid(tmp_path):
    with pytest.raises(ConfigError, match="layout"):
        CaptureOptions(layout="CHW")
    net = conv_net("NCHW")
    net.graph.input[0].type.tensor_type.shape.dim[3].dim_value = S + 1
    with pytest.raises(ConfigError, match="square"):
        fuse_capture(net, CaptureOptions(layout="NCHW"))
    two = conv_net("NCHW")
    two.graph.input.append(onnx.helper.make_tensor_value_info("extra", onnx.TensorProto.FLOAT, [1]))
    with pytest.raises(GraphError, match="one input"):
        fuse_capture(two, CaptureOptions(layout="NCHW"))


def test_cli_fuse_and_stats(tmp_path, capsys):
    from kaocap.cli import main

    out = tmp_path / "fused.onnx"
    args = ["fuse", str(_net(tmp_path, "NHWC")), "-o", str(out), "--layout", "nhwc", "--rois", "rect",
            "--tolerance", "5e-3", "--check-runtime", "openvino"]  # fmt: skip
    assert main(args) == 0
    text = capsys.readouterr().out
    assert f"wrote {out}" in text and "parity over 1 input set(s): ok" in text
    assert main(["export", "stats", str(out)]) == 0
    text = capsys.readouterr().out
    assert "Transpose: 3" in text and "GridSample 1" in text and "frames [N,H,W,3]" in text
    assert main(["export", "stats", str(out), "--json"]) == 0
    assert '"transposes": 3' in capsys.readouterr().out
    assert main(["fuse", str(out), "-o", str(tmp_path / "x.onnx"), "--layout", "nchw"]) == 4  # two inputs
    assert main(["export", "stats", str(tmp_path / "missing.onnx")]) == 4
