"""``kaocap export …``, ``kaocap fuse`` and ``kaocap fuse-headpose``: each subcommand calls one
public function.

Registered in :func:`kaocap.cli.build_parser` with ``add_export_parsers(sub)``.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from kaocap.errors import ConfigError
from kaocap.export.convert import DEFAULT_FORMATS, FORMATS

_LAYOUTS = ("NCHW", "NHWC")


def add_export_parsers(sub: argparse._SubParsersAction) -> None:
    """Add ``export`` (with its own subcommands) and ``fuse`` to the top-level parser."""
    export = sub.add_parser("export", help="export models and inspect ONNX graphs ('kaocap[export]')")
    commands = export.add_subparsers(dest="export_command", required=True)
    stats = commands.add_parser("stats", help="op histogram, Transpose count, parameters, file size")
    stats.add_argument("model", help=".onnx file")
    stats.add_argument("--json", action="store_true", help="print the statistics as JSON")
    stats.set_defaults(func=cmd_export_stats)
    model = commands.add_parser("model", help="a kaocap ONNX learner -> TFLite fp32/fp16/int8 and OpenVINO IR, "
                                "each checked against the ONNX file on real face crops")  # fmt: skip
    model.add_argument("onnx", help="the learner's .onnx (its card embedded, or beside it as .card.json)")
    model.add_argument("--out", required=True, help="folder for the files and their cards")
    model.add_argument("--formats", default=",".join(DEFAULT_FORMATS),
                       help=f"comma-separated, of {', '.join(FORMATS)} (default: %(default)s)")
    model.add_argument("--calibration-images", nargs="+", metavar="PATH",
                       help="images or folders of images with faces: int8 calibration and parity inputs "
                            "(default: the embedded portrait, one face; int8 needs these)")  # fmt: skip
    model.set_defaults(func=cmd_export_model)

    fuse = sub.add_parser("fuse", help="one ONNX graph for the capture step: uint8 frames + ROIs -> crop -> network")
    fuse.add_argument("network", help="the network, .onnx with one float32 image input")
    fuse.add_argument("-o", "--out", required=True, help="fused .onnx to write (only after the parity check)")
    fuse.add_argument("--layout", required=True, type=str.upper, choices=_LAYOUTS,
                      help="the network input's layout (stated, never guessed)")
    fuse.add_argument("--size", type=int, help="crop side in px (default: the network input's fixed size)")
    fuse.add_argument("--rois", choices=("matrix", "rect"), default="matrix",
                      help="ROI input: (N,K,2,3) crop matrices (default) or (N,K,5) cx,cy,w,h,rotation_rad")
    fuse.add_argument("--scale", type=float, nargs="+", default=[1 / 255], metavar="S",
                      help="network input = pixel * scale + offset; 1 or 3 values (default 1/255)")
    fuse.add_argument("--offset", type=float, nargs="+", default=[0.0], metavar="O", help="1 or 3 values (default 0)")
    fuse.add_argument("--no-round", action="store_true", help="keep fractional sampled pixels (no uint8 rounding)")
    fuse.add_argument("--tolerance", type=float, default=1e-3, help="max abs error vs the unfused pipeline (1e-3)")
    fuse.add_argument("--check-runtime", action="append", default=[], choices=("onnxruntime", "openvino"),
                      help="also run the written file on this runtime and compare (repeatable)")
    fuse.set_defaults(func=cmd_fuse)

    head = sub.add_parser("fuse-headpose", help="kaocap's face model (front range) and head model (full range) "
                          "as one ONNX graph with a mask-weighted pose, DMHead-style, batch N")  # fmt: skip
    head.add_argument("-o", "--out", required=True, help="fused .onnx to write (only after the parity check)")
    head.add_argument("--front", help="front-range branch .onnx (default: kaocap's face model)")
    head.add_argument("--rear", help="full-range branch .onnx with roi and presence outputs (default: kaocap's head model)")
    head.add_argument("--check-runtime", action="append", default=[], choices=("onnxruntime", "openvino"),
                      help="also run the written file on this runtime and compare (repeatable)")
    head.set_defaults(func=cmd_fuse_headpose)


def _values(name: str, values: list[float]) -> float | tuple[float, float, float]:
    if len(values) == 1:
        return values[0]
    if len(values) == 3:
        return (values[0], values[1], values[2])
    raise ConfigError(f"--{name} takes 1 or 3 values, got {len(values)}")


def cmd_export_stats(args: argparse.Namespace) -> int:
    from kaocap.export.stats import graph_stats

    stats = graph_stats(args.model)
    print(json.dumps(stats.to_dict(), indent=2) if args.json else f"{args.model}\n{stats.format()}")
    return 0


def cmd_export_model(args: argparse.Namespace) -> int:
    from kaocap.export.calibration import face_crops
    from kaocap.export.convert import export_model, learner_card

    formats = [f.strip() for f in args.formats.split(",") if f.strip()]
    unknown = [f for f in formats if f not in FORMATS]
    if unknown or not formats:
        raise ConfigError(f"--formats: unknown {', '.join(unknown) or '(none given)'}; known: {', '.join(FORMATS)}")
    size = int(learner_card(Path(args.onnx)).get("image_size", 128))  # a file that is no learner fails first
    if "tflite-int8" in formats and not args.calibration_images:
        raise ConfigError("tflite-int8 needs --calibration-images (real faces to calibrate on)")
    crops = face_crops(args.calibration_images, size)
    print(export_model(args.onnx, args.out, crops, formats).format())
    return 0


def cmd_fuse_headpose(args: argparse.Namespace) -> int:
    from kaocap import models
    from kaocap.export.headpose import fuse_head_pose_files
    from kaocap.export.stats import graph_stats

    front = args.front or models.model_path(models.KAOCAP_FACE_MODEL)
    rear = args.rear or models.model_path(models.KAOCAP_HEAD_MODEL)
    report = fuse_head_pose_files(front, rear, args.out, runtimes=tuple(args.check_runtime))
    print(f"wrote {args.out}")
    print(report)
    print(graph_stats(args.out).format())
    return 0


def cmd_fuse(args: argparse.Namespace) -> int:
    from kaocap.export.capture import CaptureOptions, fuse

    options = CaptureOptions(layout=args.layout, size=args.size, roi_format=args.rois,
                             scale=_values("scale", args.scale), offset=_values("offset", args.offset),
                             round_pixels=not args.no_round)  # fmt: skip
    result = fuse(args.network, args.out, options, tolerance=args.tolerance, runtimes=tuple(args.check_runtime))
    print(f"wrote {result.path}")
    print(result.parity)
    print(result.stats.format())
    return 0
