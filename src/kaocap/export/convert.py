"""Export a kaocap ONNX learner to TFLite (fp32, fp16, int8) and OpenVINO IR, each file checked.

``export_model(onnx, out_dir, crops, formats)`` converts, then runs every file on every
installed runtime that reads it and compares it with the ONNX file (run by onnxruntime) on real
face crops (:func:`kaocap.export.calibration.face_crops`), as one batch of all crops and as a
batch of one (the batch stays dynamic in every format):

====================  ==================================  ====================================
format                file                                parity against the ONNX file
====================  ==================================  ====================================
``tflite-fp32``       ``<stem>_fp32.tflite`` (NHWC input)  within TOLERANCE["fp32"]
``tflite-fp16``       ``<stem>_fp16.tflite`` (NHWC input)  within TOLERANCE["fp16"]
``tflite-int8``       ``<stem>_int8.tflite`` (NHWC input)  reported: max error, blendshape r
``openvino-ir``       ``<stem>_openvino.xml`` + ``.bin``   within TOLERANCE["fp32"]
``openvino-ir-fp16``  ``<stem>_openvino_fp16.xml`` + bin  within TOLERANCE["fp16"]
====================  ==================================  ====================================

A file is moved to its name only once its parity holds. Each gets its card beside it
(``<name>.card.json``: the learner's card with the file's format, precision and input layout,
the source's sha256, the parity figures and the sha256 of the file(s)), so that
``LearnedModel(path, runtime)`` loads it and refuses a modified file; the card without the
figures and hashes is also embedded in the file (TFLite metadata, OpenVINO ``rt_info``).

The TFLite converter, chosen by measurement on ``blendshapes_cnn_s_lmk`` (2-core x86, loaded):
onnx2tf (ONNX -> NHWC Keras -> TFLite, :mod:`kaocap.export.tflite`) converts in 5 s, leaves no
Transpose and keeps the batch dynamic; litert-torch (torch module -> TFLite) takes 20 s, leaves
one Transpose in the body (two with an NCHW input), fixes batch 1 and needs the torch module
rather than the ONNX file. Both run fp32 in 0.8 ms on LiteRT (1 thread, batch 1).

>>> crops = face_crops(["faces/"], 128)                                    # doctest: +SKIP
>>> print(export_model("blendshapes_cnn_s_lmk.onnx", "out", crops).format())
"""

from __future__ import annotations

import json
import math
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

from kaocap.errors import ConfigError, ModelError, OutputError
from kaocap.export._onnx import graph_inputs, load_model, run_model
from kaocap.export.file_stats import FileStats, file_stats
from kaocap.models import sha256_file
from kaocap.runtime import RUNTIME_SUFFIXES, Session, available_runtimes, open_session

#: format -> (file kind, precision, file name suffix after the stem).
FORMATS: dict[str, tuple[str, str, str]] = {
    "tflite-fp32": ("tflite", "fp32", "_fp32.tflite"),
    "tflite-fp16": ("tflite", "fp16", "_fp16.tflite"),
    "tflite-int8": ("tflite", "int8", "_int8.tflite"),
    "openvino-ir": ("openvino-ir", "fp32", "_openvino.xml"),
    "openvino-ir-fp16": ("openvino-ir", "fp16", "_openvino_fp16.xml"),
}
DEFAULT_FORMATS = ("tflite-fp32", "tflite-fp16", "tflite-int8", "openvino-ir")
#: Largest |ONNX - file| per output and precision (translation in cm, the rest unitless).
TOLERANCE: dict[str, dict[str, float]] = {
    "fp32": {"blendshapes": 1e-3, "rotation_6d": 1e-3, "translation_cm": 1e-2, "landmarks": 1e-3},
    "fp16": {"blendshapes": 1e-2, "rotation_6d": 1e-2, "translation_cm": 0.2, "landmarks": 1e-2},
}


@dataclass(frozen=True, slots=True)
class ExportedFile:
    """One written file. format: a FORMATS key. parity: runtime -> output -> max |ONNX - file|
    over every crop (batch of all crops, then batch 1). blendshape_pearson: Pearson r of the
    file's blendshapes (every crop x 52) against the ONNX file's, on the first runtime.
    seconds: conversion and parity wall time."""

    path: Path
    card_path: Path
    format: str
    stats: FileStats
    parity: Mapping[str, Mapping[str, float]]
    blendshape_pearson: float
    seconds: float

    def summary(self) -> str:
        """A few lines for people: statistics, then max |err| per runtime and output."""
        precision = FORMATS[self.format][1]
        tolerance = TOLERANCE.get(precision)
        names = list(next(iter(self.parity.values())))
        rows = [(runtime, [f"{errors[n]:.2g}" for n in names]) for runtime, errors in self.parity.items()]
        rows.append(("tolerance", [f"{tolerance[n]:g}" for n in names] if tolerance else ["reported"] * len(names)))
        return "\n".join([
            f"{self.path} ({self.format}, {self.seconds:.1f} s)",
            *("  " + line for line in self.stats.format().splitlines()),
            "  max |err| vs ONNX  " + "".join(f"{n:>16}" for n in names),
            *(f"    {label:<16}" + "".join(f"{v:>16}" for v in values) for label, values in rows),
            f"  blendshapes vs ONNX: Pearson r {self.blendshape_pearson:.4f}",
        ])  # fmt: skip


@dataclass(frozen=True, slots=True)
class ExportReport:
    """What :func:`export_model` wrote. source_stats: the ONNX file's; crops: parity inputs."""

    source: Path
    source_stats: FileStats
    crops: int
    files: tuple[ExportedFile, ...]

    def format(self) -> str:
        """The source's statistics, then every file's :meth:`ExportedFile.summary`."""
        head = [f"{self.source} (parity on {self.crops} real face crops, batch {self.crops} and 1)",
                *("  " + line for line in self.source_stats.format().splitlines())]  # fmt: skip
        return "\n".join([*head, *(f.summary() for f in self.files)])


def export_model(onnx_path: str | Path, out_dir: str | Path, crops: NDArray[np.float32],
                 formats: Sequence[str] = DEFAULT_FORMATS, *, runtimes: Sequence[str] | None = None) -> ExportReport:  # fmt: skip
    """Convert the ONNX learner ``onnx_path`` to ``formats`` in ``out_dir`` (see the table above).

    crops: (N, 3, S, S) float32 RGB 0..1 real face crops as the learner takes them: the parity
    inputs of every format and int8's calibration set. runtimes: those to check on (default:
    every installed one that reads the file). Raises ModelError (not a learner, conversion or
    parity failure), RuntimeNotAvailable (converter not installed), ConfigError (unknown
    format, crops of the wrong shape).
    """
    source, out_dir = Path(onnx_path), Path(out_dir)
    card = learner_card(source)
    unknown = [f for f in formats if f not in FORMATS]
    if unknown:
        raise ConfigError(f"unknown export format(s) {', '.join(unknown)}; known: {', '.join(FORMATS)}")
    job = _Job(source, load_model(source), card, _check_crops(card, crops), formats)
    files = tuple(_export_one(job, fmt, out_dir, runtimes) for fmt in formats)
    return ExportReport(source, file_stats(source), len(crops), files)


def learner_card(path: Path) -> dict[str, Any]:
    """The learner's card: the card file beside it (sha256 checked) if there is one, else the
    card embedded in the ONNX file. ModelError for a file that is not a kaocap image learner."""
    from kaocap.blendshapes.learned import CARD_KEY, read_card

    model = load_model(path)
    embedded = next((p.value for p in model.metadata_props if p.key == CARD_KEY), None)
    if embedded is None:
        raise ModelError(f"{path.name} is not a kaocap learner (no {CARD_KEY} metadata)")
    has_file = path.with_name(path.stem + ".card.json").is_file()
    card = read_card(path) if has_file else json.loads(embedded)
    if card.get("input_kind") != "image":
        raise ModelError(f"{path.name}: only image learners are exported to TFLite/IR (input_kind "
                         f"{card.get('input_kind')!r})")  # fmt: skip
    return {k: v for k, v in card.items() if k not in ("sha256", "parity_max_abs")}


def _check_crops(card: Mapping[str, Any], crops: NDArray) -> NDArray[np.float32]:
    size = int(card.get("image_size", 128))
    crops = np.ascontiguousarray(crops, np.float32)
    if crops.ndim != 4 or crops.shape[1:] != (3, size, size) or len(crops) == 0:
        raise ConfigError(f"crops must be (N, 3, {size}, {size}) float32, got {crops.shape}")
    return crops


class _Job:
    """The source (path and ModelProto), its card, the crops and the ONNX outputs on them, and
    onnx2tf's Keras model (made once, on first use)."""

    def __init__(self, source: Path, model: Any, card: dict[str, Any], crops: NDArray[np.float32],
                 formats: Sequence[str] = ()) -> None:  # fmt: skip
        self.source, self.model, self.card, self.crops = source, model, card, crops
        self.source_sha256 = sha256_file(source)
        self.reference = run_model(model, {"image": crops})
        self.input_names = [i.name for i in graph_inputs(model)]
        self.output_names = [o.name for o in model.graph.output]
        self.tflite_precisions = [FORMATS[f][1] for f in formats if FORMATS[f][0] == "tflite"]
        self._blobs: dict[str, bytes] | None = None

    def write(self, fmt: str, path: Path) -> dict[str, Any]:
        """Write ``fmt`` to ``path`` with its card embedded; returns that card."""
        kind, precision, _ = FORMATS[fmt]
        card = {**self.card, "format": kind, "precision": precision,
                "converted_from": {"file": self.source.name, "sha256": self.source_sha256}}  # fmt: skip
        if kind == "openvino-ir":
            from kaocap.export.openvino_ir import to_openvino_ir

            to_openvino_ir(self.source, path, card, precision=precision)
            return card
        from kaocap.export import tflite

        if self._blobs is None or precision not in self._blobs:  # every precision asked for, in one go
            nhwc = {"image": np.ascontiguousarray(self.crops.transpose(0, 2, 3, 1))}
            precisions = list(dict.fromkeys([*self.tflite_precisions, precision]))
            self._blobs = tflite.convert_isolated(self.source, self.input_names, self.output_names, precisions,
                                                  calibration=nhwc if "int8" in precisions else None)  # fmt: skip
        card["inputs"] = [_nhwc(spec) for spec in self.card.get("inputs", [])]
        _write_bytes(path, tflite.with_metadata(self._blobs[precision], card))
        return card


def _nhwc(spec: Mapping[str, Any]) -> dict[str, Any]:
    """A card input spec as the TFLite file has it: NCHW images become NHWC."""
    if spec.get("layout") != "NCHW":
        return dict(spec)
    n, c, h, w = spec["shape"]
    return {**spec, "shape": [n, h, w, c], "layout": "NHWC"}


def _write_bytes(path: Path, blob: bytes) -> None:
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(blob)
    except OSError as exc:
        raise OutputError(f"cannot write {path}: {exc}") from exc


def _export_one(conv: _Job, fmt: str, out_dir: Path, runtimes: Sequence[str] | None) -> ExportedFile:
    """Convert to a temporary name, check parity, then move the file(s) in place and write the card."""
    start = time.perf_counter()
    kind, precision, suffix = FORMATS[fmt]
    final = out_dir / (conv.source.stem + suffix)
    tmp = final.with_name(final.stem + ".tmp" + final.suffix)
    try:
        card = conv.write(fmt, tmp)
        parity, pearson = _parity(tmp, card, conv, TOLERANCE.get(precision), runtimes)
        paths = [(tmp, final)] + ([(tmp.with_suffix(".bin"), final.with_suffix(".bin"))] if kind == "openvino-ir" else [])
        for src, dst in paths:
            src.replace(dst)
    finally:
        for leftover in (tmp, tmp.with_suffix(".bin")):
            leftover.unlink(missing_ok=True)
    files = [dst for _, dst in paths]
    card.update(parity_max_abs=parity, blendshape_pearson_vs_onnx=pearson,
                sha256={f.name: sha256_file(f) for f in files})  # fmt: skip
    card_path = final.with_name(final.stem + ".card.json")
    try:
        card_path.write_text(json.dumps(card, indent=1, sort_keys=True))
    except OSError as exc:
        raise OutputError(f"cannot write {card_path}: {exc}") from exc
    return ExportedFile(final, card_path, fmt, file_stats(final), parity, pearson, time.perf_counter() - start)


def _parity(path: Path, card: Mapping[str, Any], conv: _Job, tolerance: Mapping[str, float] | None,
            runtimes: Sequence[str] | None) -> tuple[dict[str, dict[str, float]], float]:  # fmt: skip
    """({runtime: {output: max |err|}}, blendshape Pearson r on the first runtime) against the
    ONNX model. Raises ParityError beyond ``tolerance`` (None: report only; a file that fails to
    run or returns other shapes still raises)."""
    from kaocap.export.parity import check

    suffix = path.suffix.lower()
    installed = available_runtimes()
    chosen = [r for r in (runtimes or installed) if r in installed and suffix in RUNTIME_SUFFIXES[r]]
    if not chosen:
        raise ModelError(f"no installed runtime reads {suffix} files to check {path.name}")
    nhwc = {s["name"] for s in card.get("inputs", []) if s.get("layout") == "NHWC"}
    cases = [{"image": conv.crops}, {"image": conv.crops[:1]}]
    parity: dict[str, dict[str, float]] = {}
    pearson = math.nan
    for runtime in chosen:
        run = _feeder(open_session(path, runtime, threads=1), nhwc)
        parity[runtime] = dict(check(conv.model, run, cases, tolerance or math.inf).max_abs_error)
        if runtime == chosen[0]:
            pearson = _pearson(conv.reference["blendshapes"], run({"image": conv.crops})["blendshapes"])
    return parity, pearson


def _feeder(session: Session, nhwc: set[str]) -> Callable[[Mapping[str, NDArray]], dict[str, NDArray]]:
    """``session.run`` taking NCHW feeds: the inputs named in ``nhwc`` are transposed to NHWC."""
    def run(feeds: Mapping[str, NDArray]) -> dict[str, NDArray]:
        return session.run({k: np.ascontiguousarray(v.transpose(0, 2, 3, 1)) if k in nhwc else v
                            for k, v in feeds.items()})  # fmt: skip

    return run


def _pearson(a: NDArray, b: NDArray) -> float:
    """Pearson r of two arrays' elements (NaN when either is constant or not finite)."""
    a, b = np.asarray(a, np.float64).ravel(), np.asarray(b, np.float64).ravel()
    if not (np.isfinite(a).all() and np.isfinite(b).all()) or a.std() == 0 or b.std() == 0:
        return math.nan
    return float(np.corrcoef(a, b)[0, 1])
