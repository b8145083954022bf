"""``kaocap eval``: SuperCV's comparison table for kaocap's learners, the rule-based baseline and
MediaPipe's own blendshape model, on held-out people only (the dataset's ``test`` split).

Columns: mean (and per-shape) Pearson r against exact labels on held-out synthetic identities
and against the MediaPipe teacher on held-out real people (and against ARKit on real "take"
samples when the data has them); head-rotation MAE (mean of yaw/pitch/roll, degrees) against
synthetic labels, and yaw MAE on the labelled AFLW2000 samples; latency in ms at 1 thread
measured in this run through kaocap.runtime sessions; size in MB (fp16).

Numpy + runtimes only: no torch needed.

>>> report = evaluate([Path("runs/cnn"), Path("runs/rules")], [Path("ds/render"), Path("ds/real")])  # doctest: +SKIP
>>> write_report(report, Path("eval_out"))                                                         # doctest: +SKIP
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

from kaocap.blendshapes.features import crop_to_camera_rotation, geometric_features, normalise_mesh
from kaocap.blendshapes.learned import LearnedModel, LearnerOutput
from kaocap.blendshapes.rules import RuleSolver
from kaocap.constants import BLENDSHAPES, MEDIAPIPE_MISSING_BLENDSHAPES
from kaocap.errors import ModelError
from kaocap.eval.learners_aflw import AflwFaces, load_aflw_faces
from kaocap.eval.learners_metrics import (
    face_visible,
    lr_asymmetry,
    mean_corr,
    pearson_per_shape,
    rotation_mae_deg,
    yaw_pitch_deg,
)
from kaocap.runtime import available_runtimes, open_session
from kaocap.train.samples import SampleSet, load_samples

log = logging.getLogger(__name__)
_BATCH = 256
ONNX_RUNTIMES = ("onnxruntime", "openvino")
TFLITE_RUNTIMES = ("litert", "openvino")


@dataclass
class Row:
    """One line of the table. per-shape arrays are (52,) (NaN: undefined); latency_ms maps
    runtime -> median ms per face of the network alone; pipeline_ms adds what the learner needs
    before it (the 478-landmark network and feature extraction for mesh learners)."""

    name: str
    family: str
    synth_corr: float = float("nan")
    synth_per_shape: NDArray = field(default_factory=lambda: np.full(52, np.nan))
    real_corr: float = float("nan")
    real_per_shape: NDArray = field(default_factory=lambda: np.full(52, np.nan))
    take_corr: float = float("nan")
    synth_rotation_mae_deg: float = float("nan")
    synth_rear_rotation_mae_deg: float = float("nan")
    aflw_yaw_mae_deg: float = float("nan")
    latency_ms: dict[str, float] = field(default_factory=dict)
    pipeline_ms: float = float("nan")
    size_mb: float = float("nan")
    lr_gap: tuple[float, str] = (float("nan"), "")
    note: str = ""

    def best_latency(self) -> tuple[float, str]:
        if not self.latency_ms:
            return float("nan"), ""
        runtime = min(self.latency_ms, key=self.latency_ms.get)
        return self.latency_ms[runtime], runtime


@dataclass
class EvalReport:
    rows: list[Row]
    counts: dict[str, int]
    aflw_faces: int
    split: str
    settings: dict[str, Any]


class Predictor:
    """A learner behind one interface: ``predict(crops, mesh) -> LearnerOutput`` (crop frame)."""

    def __init__(self, card_path: Path, runtime: str | None = None) -> None:
        self.card = json.loads(Path(card_path).read_text())
        self.name, self.family = self.card["model_id"], self.card["family"]
        self.input_kind = self.card["input_kind"]
        folder = Path(card_path).parent
        if self.input_kind == "rules":
            self.rules: RuleSolver | None = RuleSolver.load(folder / self.card["weights"])
            self.model: LearnedModel | None = None
        else:
            self.rules, self.model = None, LearnedModel(folder / f"{self.name}.onnx", runtime)
        self.folder = folder.name

    @property
    def onnx(self) -> Path | None:
        return self.model.path if self.model else None

    def predict(self, crops: NDArray | None, mesh: NDArray) -> LearnerOutput:
        if self.rules is not None:
            return self.rules.predict(mesh)
        assert self.model is not None
        parts = [self.model.predict(crops=None if crops is None else crops[i : i + _BATCH], mesh=mesh[i : i + _BATCH])
                 for i in range(0, len(mesh), _BATCH)]  # fmt: skip
        joined = {f: [getattr(p, f) for p in parts] for f in LearnerOutput.__slots__}
        return LearnerOutput(**{f: None if v[0] is None else np.concatenate(v) for f, v in joined.items()})


def discover(model_dirs: Sequence[Path]) -> list[Path]:
    """Every ``*.card.json`` of a learner in ``model_dirs`` (files or folders), sorted."""
    found: list[Path] = []
    for d in model_dirs:
        d = Path(d)
        found += [d] if d.is_file() else sorted(d.glob("*.card.json"))
    if not found:
        raise ModelError(f"no learner cards (*.card.json) in {', '.join(map(str, model_dirs))}")
    return found


def _scores(row: Row, blend: NDArray, rot: NDArray, s: SampleSet, valid_shapes: NDArray[np.bool_]) -> None:
    """Blendshape r on synthetic faces that are visible (learners_metrics.face_visible: a face
    seen from behind shows no expression) and on real ones; rotation MAE on synthetic faces
    with |yaw| <= 90 (front) and > 90 (rear)."""
    valid = s.valid & valid_shapes[None]
    for domain, attr in (("render", "synth"), ("real", "real")):
        sel = (s.domain == domain) & (s.kind != "take")
        if domain == "render":
            front = np.abs(yaw_pitch_deg(s.rotation_crop)[:, 0]) <= 90.0
            if (sel & front).any():
                row.synth_rotation_mae_deg = rotation_mae_deg(rot[sel & front], s.rotation_crop[sel & front])
            if (sel & ~front).any():
                row.synth_rear_rotation_mae_deg = rotation_mae_deg(rot[sel & ~front], s.rotation_crop[sel & ~front])
            sel &= face_visible(s.rotation_crop)
        if sel.any():
            per = pearson_per_shape(blend[sel], s.blendshapes[sel], valid[sel])
            setattr(row, f"{attr}_per_shape", per)
            setattr(row, f"{attr}_corr", mean_corr(per))
    take = s.kind == "take"
    if take.any():
        row.take_corr = mean_corr(pearson_per_shape(blend[take], s.blendshapes[take], valid[take]))
    row.lr_gap = lr_asymmetry(row.synth_per_shape if np.isfinite(row.synth_corr) else row.real_per_shape)


def time_call(fn: Callable[[], object], repeats: int, warmup: int = 5) -> float:
    """Median wall time of ``fn()`` in ms."""
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return float(np.median(times) * 1000)


def _latencies(path: Path, feeds: dict[str, NDArray], runtimes: Sequence[str], repeats: int) -> dict[str, float]:
    out = {}
    for runtime in runtimes:
        if runtime in available_runtimes():
            session = open_session(path, runtime, threads=1)
            out[runtime] = time_call(lambda s=session: s.run(feeds), repeats)
    return out


def _mediapipe_latency(runtimes: Sequence[str], repeats: int) -> tuple[dict[str, float], dict[str, float], float]:
    """(blendshape net ms by runtime, landmark net ms by runtime, blendshape file MB)."""
    from kaocap.models import model_path

    blend, lmk = model_path("mediapipe_face_blendshapes"), model_path("mediapipe_face_landmarks")
    rng = np.random.default_rng(0)
    pts = {"input_points": (rng.random((1, 146, 2)) * 256).astype(np.float32)}
    img = rng.random((1, 256, 256, 3), dtype=np.float32)
    b = _latencies(blend, _named(blend, pts), runtimes, repeats)
    lm = _latencies(lmk, _named(lmk, {"image": img}), runtimes, repeats)
    return b, lm, blend.stat().st_size / 1e6


def _named(path: Path, feeds: dict[str, NDArray]) -> dict[str, NDArray]:
    """Feeds keyed by the model's own (single) input name."""
    spec = open_session(path, None, threads=1).inputs[0]
    return {spec.name: next(iter(feeds.values()))}


def _features_ms(kind: str, mesh: NDArray, repeats: int) -> float:
    if kind in ("features", "hybrid", "rules"):
        f = lambda: (geometric_features(mesh), normalise_mesh(mesh) if kind == "hybrid" else None)
    elif kind == "mesh":
        f = lambda: normalise_mesh(mesh)
    else:
        return 0.0
    return time_call(f, repeats)


def _aflw_yaw_mae(out: LearnerOutput, faces: AflwFaces) -> float:
    from kaocap.types import matrix_to_euler

    rot = crop_to_camera_rotation(out.rotation_crop, faces.roi_rotation_rad)
    yaw = np.array([matrix_to_euler(r)[0] for r in rot])
    return float(np.mean(np.abs(yaw - faces.yaw_deg)))


def learner_row(pred: Predictor, s: SampleSet, aflw: AflwFaces | None, lmk_ms: float, repeats: int) -> Row:
    """Score one learner on the held-out samples (and AFLW2000 faces), time it at 1 thread."""
    row = Row(pred.name, pred.family, size_mb=float(pred.card.get("size_mb_fp16", float("nan"))))
    crops = s.crops if pred.input_kind == "image" else None
    ok = np.ones(len(s), bool) if pred.input_kind == "image" else s.mesh_ok()
    out = pred.predict(None if crops is None else crops[ok], s.mesh[ok])
    shapes = pred.rules.valid if pred.rules is not None else np.ones(52, bool)
    _scores(row, out.blendshapes, out.rotation_crop, s.subset(ok), shapes)
    if aflw is not None and len(aflw.yaw_deg):
        row.aflw_yaw_mae_deg = _aflw_yaw_mae(pred.predict(aflw.crops, aflw.mesh), aflw)
    one_mesh = s.mesh[ok][:1]
    feat_ms = _features_ms(pred.input_kind, one_mesh, repeats)
    if pred.model is not None:
        feeds = pred.model.feeds(crops=None if crops is None else crops[:1], mesh=one_mesh)
        row.latency_ms = _latencies(pred.model.path, feeds, ONNX_RUNTIMES, repeats)
    else:
        row.latency_ms = {"numpy": time_call(lambda: pred.rules.predict(one_mesh), repeats)}  # type: ignore[union-attr]
        feat_ms = 0.0
    net_ms = row.best_latency()[0]
    row.pipeline_ms = net_ms + (0.0 if pred.input_kind == "image" else feat_ms + lmk_ms)
    return row


def mediapipe_row(s: SampleSet, aflw: AflwFaces | None, blend_ms: dict, lmk_ms: dict, size_mb: float) -> Row:
    """MediaPipe's blendshape model: its outputs are stored in the shards as teacher_*."""
    row = Row("mediapipe_blendshapes", "mediapipe", size_mb=size_mb, latency_ms=blend_ms,
              note="the teacher: its real-people r is 1 by construction")  # fmt: skip
    valid = np.array([n not in MEDIAPIPE_MISSING_BLENDSHAPES for n in BLENDSHAPES])
    have = np.isfinite(s.teacher_blendshapes[:, valid]).all(axis=1)
    if have.any():
        sub = s.subset(have)
        _scores(row, sub.teacher_blendshapes, sub.teacher_rotation_crop, sub, valid)
    if (s.domain == "real").any():
        row.real_corr, row.real_per_shape = 1.0, np.where(valid, 1.0, np.nan)
    if aflw is not None and len(aflw.yaw_deg):
        row.aflw_yaw_mae_deg = float(np.mean(np.abs(aflw.mediapipe_yaw_deg - aflw.yaw_deg)))
    row.pipeline_ms = row.best_latency()[0] + (min(lmk_ms.values()) if lmk_ms else float("nan"))
    return row


def evaluate(model_dirs: Sequence[Path], data: Sequence[Path], *, split: str = "test",
             aflw_dir: Path | None = None, mediapipe: bool = True, repeats: int = 100,
             runtime: str | None = None) -> EvalReport:  # fmt: skip
    """Score every learner found in ``model_dirs`` on the ``split`` people of ``data``."""
    cards = discover(model_dirs)
    predictors = [Predictor(c, runtime) for c in cards]
    names = [p.name for p in predictors]
    for p in predictors:  # the same learner trained twice (e.g. on two mixes): name the folder
        if names.count(p.name) > 1:
            p.name = f"{p.name} ({p.folder})"
    sizes = [p.model.image_size for p in predictors if p.model is not None and p.input_kind == "image"]
    s = load_samples(data, split, image_size=max(sizes or [128]), with_crops=bool(sizes))
    aflw = load_aflw_faces(aflw_dir) if aflw_dir is not None else None
    blend_ms, lmk_ms, mp_size = _mediapipe_latency(TFLITE_RUNTIMES, repeats)
    lmk_best = min(lmk_ms.values()) if lmk_ms else float("nan")
    rows = [learner_row(p, s, aflw, lmk_best, repeats) for p in predictors]
    if mediapipe:
        rows.append(mediapipe_row(s, aflw, blend_ms, lmk_ms, mp_size))
    settings = {"repeats": repeats, "threads": 1, "landmark_net_ms": lmk_ms, "data": [str(d) for d in data],
                "models": [str(c) for c in cards]}  # fmt: skip
    return EvalReport(rows, s.counts(), 0 if aflw is None else len(aflw.yaw_deg), split, settings)
