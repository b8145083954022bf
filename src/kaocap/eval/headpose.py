"""``kaocap eval --task headpose``: head rotation over the full range, kaocap's face model against
the landmark-based pose (MediaPipe's landmarks through the geometry pipeline).

* Held-out synthetic identities (the render set's ``test`` split), mean of the yaw, pitch and
  roll errors by |yaw| range; the landmark path is scored where MediaPipe found a face (its
  coverage is a column of its own).
* The labelled AFLW2000 images (yaw only, kaocap.eval.learners_aflw).
* A rendered 360 degree turn of a held-out identity (yaw -180..180 in ``TURN_STEP_DEG`` steps):
  each frame's error and the largest frame-to-frame change of the predicted rotation, which must
  stay small where the true step is (no wrap-around jump at +-180).
* A contact sheet: the turn every 30 degrees and the unlabelled side and back views of
  ``../shared/data/headpose/whenet_samples`` (their head boxes), with the predicted axes.

Rotations compare in the camera frame; errors are degrees (kaocap.types conventions).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from numpy.typing import NDArray

from kaocap.blendshapes.features import camera_to_crop_rotation, crop_to_camera_rotation
from kaocap.blendshapes.learned import LearnedModel, roi_crops
from kaocap.eval.learners_metrics import euler_errors_deg, geodesic_deg, yaw_pitch_deg
from kaocap.types import Roi

#: |yaw| ranges of the synthetic table, degrees.
YAW_BINS = ((0, 30), (30, 60), (60, 90), (90, 135), (135, 180))
TURN_STEP_DEG = 2.0
#: The turn passes when no predicted step exceeds this where the true step is under 5 degrees.
MAX_JUMP_DEG = 15.0
WHENET_DIR = Path("whenet_samples/Sample")
#: A WHENet head box is squared on its long side and widened by this for the crop.
HEAD_BOX_SCALE = 1.2


@dataclass
class YawBin:
    """One |yaw| range: samples, the model's MAE, the landmark path's MAE and coverage."""

    label: str
    n: int
    model_mae: float
    landmark_mae: float
    landmark_found: float


@dataclass
class Turn:
    """The rendered turn: true and predicted yaw per frame (deg), per-frame rotation error
    (geodesic, deg), the largest predicted frame-to-frame step (deg) and the yaw it happened
    at, and the landmark path's share of frames with a face."""

    yaw_true: NDArray[np.float64]
    yaw_pred: NDArray[np.float64]
    error_deg: NDArray[np.float64]
    max_step_deg: float
    max_step_at_yaw: float
    landmark_found: float

    @property
    def passed(self) -> bool:
        return self.max_step_deg <= MAX_JUMP_DEG


@dataclass
class HeadposeReport:
    model: str
    bins: list[YawBin]
    turn: Turn | None
    aflw_model_mae: float = float("nan")
    aflw_landmark_mae: float = float("nan")
    aflw_faces: int = 0
    files: dict[str, Path] = field(default_factory=dict)


def synthetic_bins(model: LearnedModel, render_data: Path, split: str = "test") -> list[YawBin]:
    """Rotation errors by |yaw| on the held-out renders, the model vs the stored teacher pose."""
    from kaocap.train.samples import load_samples

    s = load_samples([render_data], split, image_size=model.image_size, kinds=["render"])
    pred = np.concatenate([model.predict(crops=s.crops[i : i + 256]).rotation_crop for i in range(0, len(s), 256)])
    yaw = np.abs(yaw_pitch_deg(s.rotation_crop)[:, 0])
    model_err = euler_errors_deg(pred, s.rotation_crop).mean(axis=1)
    teacher_err = euler_errors_deg(s.teacher_rotation_crop, s.rotation_crop).mean(axis=1)
    rows = []
    for lo, hi in YAW_BINS:
        sel = (yaw >= lo) & (yaw <= hi if hi == 180 else yaw < hi)
        found = sel & np.isfinite(teacher_err)
        rows.append(YawBin(f"{lo}-{hi}", int(sel.sum()), _mean(model_err[sel]), _mean(teacher_err[found]),
                           float(found.sum() / max(1, sel.sum()))))  # fmt: skip
    return rows


def render_turn(identity: int, step_deg: float = TURN_STEP_DEG) -> list:
    """Renders (kaocap.data.render.RenderSample) of identity ``identity`` turning through 360
    degrees of yaw, neutral face, level head, studio light."""
    from kaocap.data.render import HeadRenderer

    with HeadRenderer() as renderer:
        return [renderer.render(renderer.make_params(identity=identity, yaw_deg=float(y), seed=k))
                for k, y in enumerate(np.arange(-180.0, 180.0, step_deg))]  # fmt: skip


def turn_result(model: LearnedModel, samples: list) -> Turn:
    """Score the model on a rendered turn; the landmark path is run on the same frames."""
    crops = np.stack([s.crop for s in samples])
    angles = np.array([s.roi.rotation_rad for s in samples])
    pred = crop_to_camera_rotation(model.predict(crops=crops).rotation_crop, angles)
    true = np.stack([s.pose.rotation for s in samples]).astype(np.float64)
    steps = geodesic_deg(pred[1:], pred[:-1])
    true_steps = geodesic_deg(true[1:], true[:-1])
    steps = np.where(true_steps < 5.0, steps, 0.0)
    k = int(np.argmax(steps))
    return Turn(yaw_pitch_deg(true)[:, 0], yaw_pitch_deg(pred)[:, 0], geodesic_deg(pred, true),
                float(steps[k]), float(yaw_pitch_deg(true[k + 1 : k + 2])[0, 0]), _landmark_coverage(samples))  # fmt: skip


def _landmark_coverage(samples: list) -> float:
    from kaocap import Pipeline
    from kaocap.config import PipelineConfig

    cfg = PipelineConfig.image_mode()
    with Pipeline(cfg) as pipe:
        found = [bool(pipe(s.image, i + 1).faces) for i, s in enumerate(samples)]
    return float(np.mean(found))


def head_crops(headpose_dir: Path, size: int) -> tuple[list[str], NDArray[np.uint8]]:
    """Crops of the WHENet sample heads (names, (M, size, size, 3) RGB) from their boxes."""
    from kaocap.capture import read_image

    folder = Path(headpose_dir) / WHENET_DIR
    names, crops = [], []
    for line in (folder / "bbox.txt").read_text().splitlines():
        name, _, box = line.partition(",")
        if not box.strip():
            continue
        x0, y0, x1, y1 = (float(v) for v in box.split())
        side = max(x1 - x0, y1 - y0) * HEAD_BOX_SCALE
        roi = Roi(np.array([(x0 + x1) / 2, (y0 + y1) / 2], np.float32), np.array([side, side], np.float32), 0.0)
        names.append(name)
        crops.append(roi_crops(read_image(folder / name), [roi], size)[0])
    return names, np.stack(crops) if crops else np.zeros((0, size, size, 3), np.uint8)


def contact_sheet(model: LearnedModel, turn: list, headpose_dir: Path | None, path: Path) -> None:
    """The turn every 30 degrees and the WHENet heads: the crop the model reads, its predicted
    axes as the crop sees them (x red, y green, z blue) and, on renders, the true ones (thin);
    titles give yaw in the camera frame."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    picks = [s for s in turn if round(float(s.params.euler_deg[0])) % 30 == 0]
    items = [(s.crop, camera_to_crop_rotation(s.pose.rotation, s.roi.rotation_rad), s.roi.rotation_rad,
              f"true yaw {s.params.euler_deg[0]:+.0f}") for s in picks]  # fmt: skip
    if headpose_dir is not None and (Path(headpose_dir) / WHENET_DIR).is_dir():
        names, crops = head_crops(headpose_dir, model.image_size)
        items += [(c, None, 0.0, n) for c, n in zip(crops, names)]
    pred = model.predict(crops=np.stack([item[0] for item in items])).rotation_crop
    camera_yaw = yaw_pitch_deg(crop_to_camera_rotation(pred, np.array([item[2] for item in items])))[:, 0]
    cols = 6
    rows = -(-len(items) // cols)
    fig, axes = plt.subplots(rows, cols, figsize=(2.4 * cols, 2.7 * rows), squeeze=False)
    for ax in axes.flat:
        ax.axis("off")
    for ax, (crop, true, _, title), r, yaw in zip(axes.flat, items, pred, camera_yaw):
        ax.imshow(crop)
        c = crop.shape[0] / 2
        for rot, width in ((r, 2.5), (true, 0.8)):
            if rot is None:
                continue
            for axis, colour in zip(range(3), ("red", "lime", "blue")):
                ax.plot([c, c + 0.35 * c * 2 * rot[0, axis]], [c, c - 0.35 * c * 2 * rot[1, axis]], color=colour, lw=width)
        ax.set_title(f"{title}\npred yaw {yaw:+.0f}", fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=80)
    plt.close(fig)


def evaluate_headpose(model_path: Path, render_data: Path, out: Path, *, headpose_dir: Path | None = None,
                      turn_identity: int | None = None) -> HeadposeReport:  # fmt: skip
    """The whole report; writes ``report.md`` and ``headpose_sheet.png`` into ``out``."""
    model = LearnedModel(model_path)
    report = HeadposeReport(model.card.get("model_id", model_path.stem), synthetic_bins(model, render_data), None)
    identity = _held_out_identity(render_data) if turn_identity is None else turn_identity
    samples = render_turn(identity)
    report.turn = turn_result(model, samples)
    if headpose_dir is not None and Path(headpose_dir).is_dir():
        _aflw(model, Path(headpose_dir), report)
    out.mkdir(parents=True, exist_ok=True)
    report.files = {"markdown": out / "report.md", "sheet": out / "headpose_sheet.png"}
    contact_sheet(model, samples, headpose_dir, report.files["sheet"])
    report.files["markdown"].write_text("\n".join(format_report(report)) + "\n")
    return report


def _aflw(model: LearnedModel, headpose_dir: Path, report: HeadposeReport) -> None:
    from kaocap.eval.learners_aflw import load_aflw_faces

    faces = load_aflw_faces(headpose_dir)
    if not len(faces.yaw_deg):
        return
    rot = crop_to_camera_rotation(model.predict(crops=faces.crops).rotation_crop, faces.roi_rotation_rad)
    yaw = yaw_pitch_deg(rot)[:, 0]
    report.aflw_model_mae = float(np.mean(np.abs(yaw - faces.yaw_deg)))
    report.aflw_landmark_mae = float(np.mean(np.abs(faces.mediapipe_yaw_deg - faces.yaw_deg)))
    report.aflw_faces = len(faces.yaw_deg)


def _held_out_identity(render_data: Path) -> int:
    """The first identity of the render set's test split (``ict_id_<k>``)."""
    from kaocap.data import shards

    for shard in shards.iter_shards(Path(render_data), "test"):
        return int(str(shard["person"][0]).rsplit("_", 1)[1])
    raise ValueError(f"no test renders in {render_data}")


def _mean(values: NDArray) -> float:
    values = values[np.isfinite(values)]
    return float(values.mean()) if len(values) else float("nan")


def format_report(report: HeadposeReport) -> list[str]:
    from kaocap.eval.learners_report import _f as f
    lines = [f"# kaocap eval --task headpose: {report.model}", "",
             "Held-out synthetic identities, rotation MAE (mean of yaw, pitch, roll, deg) by |yaw|:", "",
             "| abs yaw deg | renders | kaocap model | landmark path (where found) | landmark path found |",
             "|---|---|---|---|---|"]  # fmt: skip
    for b in report.bins:
        lines.append(f"| {b.label} | {b.n} | {f(b.model_mae, 2)} | {f(b.landmark_mae, 2)} | {100 * b.landmark_found:.0f}% |")
    if report.aflw_faces:
        lines += ["", (f"AFLW2000 ({report.aflw_faces} labelled images), yaw MAE: kaocap model "
                       f"{f(report.aflw_model_mae, 2)}, landmark path {f(report.aflw_landmark_mae, 2)} deg.")]  # fmt: skip
    if report.turn is not None:
        t = report.turn
        lines += ["", (f"Rendered 360 deg turn ({len(t.yaw_true)} frames, {TURN_STEP_DEG:g} deg apart): median error "
                       f"{f(float(np.median(t.error_deg)), 2)} deg, largest error {f(float(t.error_deg.max()), 2)} deg; "
                       f"largest frame-to-frame step {f(t.max_step_deg, 2)} deg (at true yaw {t.max_step_at_yaw:+.0f}; "
                       f"limit {MAX_JUMP_DEG:g}): {'pass' if t.passed else 'FAIL'}. The landmark path found the face "
                       f"in {100 * t.landmark_found:.0f}% of the frames.")]  # fmt: skip
    return lines

