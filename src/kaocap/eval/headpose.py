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
  ``../shared/data/headpose/whenet_samples`` (their head boxes), with the predicted axes; with
  a head model, a second one of the multi-person scenes of ``DIRECTMHP_DIR``: every head the
  body networks find (kaocap.detect.body), read as the pipeline reads it.

Rotations compare in the camera frame; errors are degrees (kaocap.types conventions).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from numpy.typing import NDArray

from kaocap.blendshapes.features import camera_to_crop_rotation, crop_to_camera_rotation
from kaocap.blendshapes.learned import LearnedModel, roi_crops, rotation_6d_to_matrix
from kaocap.eval.learners_metrics import euler_errors_deg, geodesic_deg, yaw_pitch_deg
from kaocap.types import Roi

#: |yaw| ranges of the synthetic table, degrees.
YAW_BINS = ((0, 30), (30, 60), (60, 90), (90, 135), (135, 180))
TURN_STEP_DEG = 2.0
#: The turn passes when no predicted step exceeds this where the true step is under 5 degrees.
MAX_JUMP_DEG = 15.0
WHENET_DIR = Path("whenet_samples/Sample")
#: Multi-person images with side and back views (CMU Panoptic, AGORA, COCO), unlabelled.
DIRECTMHP_DIR = Path("directmhp_fullrange_test_images_no_labels/test_imgs")
#: A WHENet head box is squared on its long side and widened by this for the crop.
HEAD_BOX_SCALE = 1.2


@dataclass
class YawBin:
    """One |yaw| range: samples, the face model's MAE, the landmark path's MAE and coverage, and
    (with a head model) the head model's MAE on head crops and the fused pose's as the pipeline
    takes it (kaocap.pose.fusion)."""

    label: str
    n: int
    model_mae: float
    landmark_mae: float
    landmark_found: float
    head_mae: float = float("nan")
    fused_mae: float = float("nan")


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
    aflw_fused_mae: float = float("nan")
    tracked: list[TrackedTurn] = field(default_factory=list)
    fused_ms: float = float("nan")
    landmark_network_ms: float = float("nan")
    scenes: list[tuple[str, list[tuple[float, float]]]] = field(default_factory=list)  # scene_sheet's
    files: dict[str, Path] = field(default_factory=dict)


def _run(model: LearnedModel, crops: NDArray[np.uint8]):
    """LearnerOutput fields over all crops, in blocks of 256: (raw 6D (N, 6), rotation_crop)."""
    outs = [model.predict(crops=crops[i : i + 256]) for i in range(0, len(crops), 256)]
    return np.concatenate([o.rotation_6d for o in outs]), np.concatenate([o.rotation_crop for o in outs])


def synthetic_bins(model: LearnedModel, render_data: Path, split: str = "test", head: LearnedModel | None = None) -> list[YawBin]:
    """Rotation errors by |yaw| on the held-out renders: the face model on its (eye-line) crops,
    the landmark path (the stored teacher pose), and with ``head`` the head model on head crops
    (kaocap.pose.head) and the fused pose as the pipeline takes it (the face model alone while it
    sees the face within HEAD_MODEL_FACING; the eye-line crop while the front weight is >=
    EYE_LINE_WEIGHT, else the head crop), all in the camera frame."""
    from kaocap.pipeline import EYE_LINE_WEIGHT, HEAD_MODEL_FACING
    from kaocap.pose import fusion
    from kaocap.pose.head import head_crops
    from kaocap.train.samples import load_samples

    s = load_samples([render_data], split, image_size=model.image_size, kinds=["render"])
    true = crop_to_camera_rotation(s.rotation_crop, s.roi[:, 4])
    front6, pred = _run(model, s.crops)
    yaw = np.abs(yaw_pitch_deg(true)[:, 0])
    model_err = euler_errors_deg(crop_to_camera_rotation(pred, s.roi[:, 4]), true).mean(axis=1)
    teacher_err = euler_errors_deg(s.teacher_rotation_crop, s.rotation_crop).mean(axis=1)
    head_err = fused_err = np.full(len(s), np.nan)
    if head is not None:
        crops, rois = head_crops(s.crops, s.landmarks, s.rotation_crop)
        angle = s.roi[:, 4] + rois[:, 3]
        rear6, head_pred = _run(head, crops)
        head_err = euler_errors_deg(crop_to_camera_rotation(head_pred, angle), true).mean(axis=1)
        fused_head, w = fusion.fuse_rotations(_run(model, crops)[0], rear6)
        fused_eye, _ = fusion.fuse_rotations(front6, _run(head, s.crops)[0])
        fused_eye = np.where((fusion.facing(front6) >= HEAD_MODEL_FACING)[:, None], fusion.unit_6d(front6), fused_eye)
        eye = (w >= EYE_LINE_WEIGHT) | (fusion.facing(front6) >= HEAD_MODEL_FACING)
        fused = np.where(eye[:, None, None], crop_to_camera_rotation(rotation_6d_to_matrix(fused_eye), s.roi[:, 4]),
                         crop_to_camera_rotation(rotation_6d_to_matrix(fused_head), angle))  # fmt: skip
        fused_err = euler_errors_deg(fused, true).mean(axis=1)
    rows = []
    for lo, hi in YAW_BINS:
        sel = (yaw >= lo) & (yaw <= hi if hi == 180 else yaw < hi)
        found = sel & np.isfinite(teacher_err)
        rows.append(YawBin(f"{lo}-{hi}", int(sel.sum()), _mean(model_err[sel]), _mean(teacher_err[found]),
                           float(found.sum() / max(1, sel.sum())), _mean(head_err[sel]), _mean(fused_err[sel])))  # fmt: skip
    return rows


def render_turn(identity: int, step_deg: float = TURN_STEP_DEG, *, background_seed: int | None = None,
                start_deg: float = -180.0) -> list:  # fmt: skip
    """Renders (kaocap.data.render.RenderSample) of identity ``identity`` turning through 360
    degrees of yaw from ``start_deg``, neutral face, level head, studio light; a background per
    frame, or one for all (``background_seed``: a camera watching a person turn)."""
    from kaocap.data.render import HeadRenderer

    yaws = (start_deg + 180.0 + np.arange(0.0, 360.0, step_deg)) % 360.0 - 180.0
    with HeadRenderer() as renderer:
        return [renderer.render(renderer.make_params(identity=identity, yaw_deg=float(y),
                                                     seed=k if background_seed is None else background_seed))
                for k, y in enumerate(yaws)]  # fmt: skip


@dataclass
class TrackedTurn:
    """The pipeline (kaocap's model, tracking, no smoothing) on a sequence: frames, frames with
    exactly one face, the face ids seen, per frame the true yaw (NaN on real clips), whether the
    face was reported visible and the rotation error (deg, NaN where untracked or unlabelled),
    and the largest step of the reported rotation between consecutive tracked frames (deg)
    where the true step is under 5 deg, and how often the quaternion changed sign."""

    name: str
    frames: int
    tracked: int
    face_ids: list[int]
    yaw_true: NDArray[np.float64]
    visible: NDArray[np.bool_]
    error_deg: NDArray[np.float64]
    max_step_deg: float
    quaternion_flips: int

    @property
    def followed(self) -> bool:
        """One face, with one id, in every frame, and no quaternion flip."""
        return self.tracked == self.frames and len(self.face_ids) == 1 and self.quaternion_flips == 0

    @property
    def smooth(self) -> bool:
        """No step over MAX_JUMP_DEG where the true step is small (the issue's turn target)."""
        return self.max_step_deg <= MAX_JUMP_DEG


def track_sequence(name: str, frames, rotations_true: NDArray | None = None, model: str = "kaocap") -> TrackedTurn:
    """Run the pipeline over ``frames`` (RGB images) with tracking and score it; the true
    rotations (N, 3, 3), where known, give the errors and which steps count."""
    from kaocap import Pipeline
    from kaocap.config import FilterConfig, PipelineConfig

    rots, quats, visible, ids, tracked = [], [], [], [], 0
    with Pipeline(PipelineConfig(model=model, filter=FilterConfig(enabled=False))) as pipe:
        for i, image in enumerate(frames):
            faces = pipe(image, i * 33 + 1).faces
            tracked += len(faces) == 1
            face = faces[0] if faces else None
            ids += [face.face_id] if face is not None else []
            rots.append(face.pose.rotation.astype(np.float64) if face is not None else np.full((3, 3), np.nan))
            quats.append(face.pose.quaternion_wxyz if face is not None else np.full(4, np.nan))
            visible.append(face is not None and face.visible)
    rot, quat = np.stack(rots), np.stack(quats)
    steps = geodesic_deg(rot[1:], rot[:-1])
    if rotations_true is not None:
        true = np.asarray(rotations_true, np.float64)
        steps = np.where(geodesic_deg(true[1:], true[:-1]) < 5.0, steps, 0.0)
        error, yaw = geodesic_deg(rot, true), yaw_pitch_deg(true)[:, 0]
    else:
        error = yaw = np.full(len(rot), np.nan)
    flips = int(np.sum(np.sum(quat[1:] * quat[:-1], axis=1) < 0))
    return TrackedTurn(name, len(rot), tracked, sorted(set(ids)), yaw, np.array(visible), error,
                       float(np.nanmax(steps)) if np.isfinite(steps).any() else float("nan"), flips)  # fmt: skip


def track_rendered_turn(samples: list, model: str = "kaocap") -> TrackedTurn:
    """:func:`track_sequence` on a rendered turn (:func:`render_turn`), ending where it began,
    with ``model`` as the pipeline's face model (kaocap's, or MediaPipe's landmarks)."""
    samples = [*samples, samples[0]]
    name = "rendered 360 deg turn" + ("" if model == "kaocap" else f", {model} landmarks")
    return track_sequence(name, [s.image for s in samples], np.stack([s.pose.rotation for s in samples]), model)


def track_clips(paths: list[Path], max_frames: int = 300) -> list[TrackedTurn]:
    """:func:`track_sequence` on real clips (their first ``max_frames`` frames)."""
    from kaocap.capture import open_source

    out = []
    for path in paths:
        with open_source(str(path)) as source:
            frames = [f.image for _, f in zip(range(max_frames), source)]
        out.append(track_sequence(Path(path).name, frames))
    return out


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


def scene_heads(face: LearnedModel, head: LearnedModel, image: NDArray[np.uint8],
                finder, max_people: int = 8) -> list[tuple[Roi, NDArray[np.float64], float, float]]:  # fmt: skip
    """The heads the body networks find in one RGB image (kaocap.detect.body), each read as the
    pipeline reads a head it found: both models on the head ROI's crop, fused
    (kaocap.pose.fusion): [(head ROI, (3, 3) rotation in the camera frame, front weight, the
    body networks' own facing (HeadCandidate.facing: -1 seen from behind))]."""
    from kaocap.blendshapes.learned import image_input
    from kaocap.pose import fusion

    heads = finder(image, max_people)
    rois = [h.roi for h in heads]
    if not rois:
        return []
    images = image_input(roi_crops(image, rois, face.image_size), face.image_size)
    front, rear = face.run({"image": images}), head.run({"image": images})
    assert front.rotation_6d is not None and rear.rotation_6d is not None
    fused, weight = fusion.fuse_rotations(front.rotation_6d, rear.rotation_6d)
    angles = np.array([r.rotation_rad for r in rois])
    rotations = crop_to_camera_rotation(rotation_6d_to_matrix(fused), angles)
    return list(zip(rois, rotations, weight.tolist(), [h.facing for h in heads]))


def scene_sheet(face: LearnedModel, head: LearnedModel, headpose_dir: Path,
                path: Path) -> list[tuple[str, list[tuple[float, float]]]]:  # fmt: skip
    """The multi-person side and back views of ``DIRECTMHP_DIR`` (unlabelled) with every head the
    body networks find, its ROI (yellow, dashed where the face is turned away) and fused axes
    (x red, y green, z blue, camera frame); returns [(image name, [(a head's yaw deg, the body
    networks' facing)])]."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from kaocap.capture import read_image
    from kaocap.detect.body import BodyHeadFinder

    finder = BodyHeadFinder(threads=1)
    paths = sorted((Path(headpose_dir) / DIRECTMHP_DIR).rglob("*.jpg"))
    found: list[tuple[str, list[tuple[float, float]]]] = []
    cols = 3
    rows = max(1, -(-len(paths) // cols))
    fig, axes = plt.subplots(rows, cols, figsize=(5.0 * cols, 3.6 * rows), squeeze=False)
    for ax in axes.flat:
        ax.axis("off")
    for ax, file in zip(axes.flat, paths):
        image = read_image(file)
        heads = scene_heads(face, head, image, finder)
        ax.imshow(image)
        yaws = []
        for roi, rot, weight, body_facing in heads:
            corners = roi.corners_xy()
            ax.plot(*np.vstack([corners, corners[:1]]).T, color="yellow", lw=1.2,
                    ls="-" if weight >= 0.5 else "--")  # fmt: skip
            (cx, cy), half = roi.center_xy, 0.5 * float(roi.size_wh[0])
            for axis, colour in zip(range(3), ("red", "lime", "blue")):
                ax.plot([cx, cx + half * rot[0, axis]], [cy, cy + half * rot[1, axis]], color=colour, lw=1.5)
            yaw = float(yaw_pitch_deg(rot[None])[0, 0])
            ax.text(cx - half, cy - half - 4, f"{yaw:+.0f}", color="yellow", fontsize=7)
            yaws.append((yaw, body_facing))
        ax.set_title(f"{file.parent.name}/{file.name}: {len(heads)} heads", fontsize=8)
        found.append((f"{file.parent.name}/{file.name}", yaws))
    fig.tight_layout()
    fig.savefig(path, dpi=80)
    plt.close(fig)
    return found


def evaluate_headpose(model_path: Path, render_data: Path, out: Path, *, headpose_dir: Path | None = None,
                      turn_identity: int | None = None, head_path: Path | None = None,
                      clips: list[Path] | None = None) -> HeadposeReport:  # fmt: skip
    """The whole report; writes ``report.md`` and ``headpose_sheet.png`` into ``out``. With a
    head model: its column and the fused one, the pipeline tracking the rendered turn (and
    ``clips``), and the fused graph's latency against MediaPipe's landmark network."""
    model = LearnedModel(model_path)
    head = LearnedModel(head_path) if head_path is not None else None
    report = HeadposeReport(model.card.get("model_id", model_path.stem), synthetic_bins(model, render_data, head=head), None)
    identity = _held_out_identity(render_data) if turn_identity is None else turn_identity
    samples = render_turn(identity)
    report.turn = turn_result(model, samples)
    if headpose_dir is not None and Path(headpose_dir).is_dir():
        _aflw(model, Path(headpose_dir), report, head)
    if head is not None:
        camera_turn = render_turn(identity, 4.0, background_seed=5, start_deg=0.0)
        report.tracked = [track_rendered_turn(camera_turn), track_rendered_turn(camera_turn, "mediapipe"),
                          *track_clips(list(clips or []))]  # fmt: skip
        report.fused_ms, report.landmark_network_ms = fused_latency(model_path, head_path)
    out.mkdir(parents=True, exist_ok=True)
    report.files = {"markdown": out / "report.md", "sheet": out / "headpose_sheet.png"}
    contact_sheet(model, samples, headpose_dir, report.files["sheet"])
    if head is not None and headpose_dir is not None and (Path(headpose_dir) / DIRECTMHP_DIR).is_dir():
        report.files["scenes"] = out / "headpose_scenes.png"
        report.scenes = scene_sheet(model, head, Path(headpose_dir), report.files["scenes"])
    report.files["markdown"].write_text("\n".join(format_report(report)) + "\n")
    return report


def fused_latency(front: Path, rear: Path, repeats: int = 200) -> tuple[float, float]:
    """(fused head-pose graph, MediaPipe's landmark network): median ms per call, batch 1, one
    thread, each on OpenVINO (the faster runtime here for both), measured in this run."""
    import tempfile

    from kaocap import models
    from kaocap.eval.learners import time_call
    from kaocap.export._onnx import require_onnx
    from kaocap.export.headpose import fuse_head_pose
    from kaocap.runtime import open_session

    onnx = require_onnx()
    rng = np.random.default_rng(0)
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "headpose.onnx"
        onnx.save(fuse_head_pose(front, rear), str(path))
        fused = open_session(path, "openvino", threads=1)
        image = {"image": rng.random((1, 3, 128, 128), dtype=np.float32)}
        fused_ms = time_call(lambda: fused.run(image), repeats)
    landmarks = open_session(models.model_path("mediapipe_face_landmarks"), "openvino", threads=1)
    crop = {landmarks.inputs[0].name: rng.random((1, 256, 256, 3), dtype=np.float32)}
    return fused_ms, time_call(lambda: landmarks.run(crop), repeats)


def _aflw(model: LearnedModel, headpose_dir: Path, report: HeadposeReport, head: LearnedModel | None = None) -> None:
    from kaocap.eval.learners_aflw import load_aflw_faces
    from kaocap.pose import fusion

    faces = load_aflw_faces(headpose_dir)
    if not len(faces.yaw_deg):
        return
    front = model.predict(crops=faces.crops)
    yaw = yaw_pitch_deg(crop_to_camera_rotation(front.rotation_crop, faces.roi_rotation_rad))[:, 0]
    report.aflw_model_mae = float(np.mean(np.abs(yaw - faces.yaw_deg)))
    report.aflw_landmark_mae = float(np.mean(np.abs(faces.mediapipe_yaw_deg - faces.yaw_deg)))
    report.aflw_faces = len(faces.yaw_deg)
    if head is not None:
        fused, _ = fusion.fuse_rotations(front.rotation_6d, head.predict(crops=faces.crops).rotation_6d)
        fused_yaw = yaw_pitch_deg(crop_to_camera_rotation(rotation_6d_to_matrix(fused), faces.roi_rotation_rad))[:, 0]
        report.aflw_fused_mae = float(np.mean(np.abs(fused_yaw - faces.yaw_deg)))


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
             ("| abs yaw deg | renders | face model | head model (head crops) | fused, as the pipeline | "
              "landmark path (where found) | landmark path found |"),
             "|---|---|---|---|---|---|---|"]  # fmt: skip
    for b in report.bins:
        lines.append(f"| {b.label} | {b.n} | {f(b.model_mae, 2)} | {f(b.head_mae, 2)} | {f(b.fused_mae, 2)} | "
                     f"{f(b.landmark_mae, 2)} | {100 * b.landmark_found:.0f}% |")  # fmt: skip
    if report.aflw_faces:
        lines += ["", (f"AFLW2000 ({report.aflw_faces} labelled images), yaw MAE: face model "
                       f"{f(report.aflw_model_mae, 2)}, fused {f(report.aflw_fused_mae, 2)}, "
                       f"landmark path {f(report.aflw_landmark_mae, 2)} deg.")]  # fmt: skip
    if np.isfinite(report.fused_ms):
        lines += ["", (f"Latency (OpenVINO, batch 1, 1 thread, this run): fused head-pose graph {f(report.fused_ms, 2)} ms, "
                       f"MediaPipe's landmark network {f(report.landmark_network_ms, 2)} ms.")]  # fmt: skip
    if report.tracked:
        lines += ["", "The pipeline (kaocap's models unless named, tracking, no smoothing) through whole sequences:", "",
                  ("| sequence | frames | tracked | face ids | shown not visible | largest step deg (limit 15) "
                   "| quaternion flips | median error deg | followed |"), "|---|---|---|---|---|---|---|---|---|"]  # fmt: skip
        for t in report.tracked:
            lines.append(f"| {t.name} | {t.frames} | {t.tracked} | {len(t.face_ids)} | {int((~t.visible).sum())} | "
                         f"{f(t.max_step_deg, 1)} | {t.quaternion_flips} | {f(float(np.nanmedian(t.error_deg)) if np.isfinite(t.error_deg).any() else float('nan'), 1)} "
                         f"| {'yes' if t.followed else 'NO'} |")  # fmt: skip
    if report.scenes:
        heads = [h for _, found in report.scenes for h in found]
        behind = [y for y, facing in heads if facing < -0.5]
        lines += ["", (f"Unlabelled multi-person side and back views ({len(report.scenes)} images, "
                       f"headpose_scenes.png): the body networks found {len(heads)} heads; of the "
                       f"{len(behind)} they see from behind (facing < -0.5), {sum(abs(y) > 90 for y in behind)} "
                       f"read as turned away (|yaw| > 90). Yaw (body networks' facing) per head:")]  # fmt: skip
        lines += [f"- {name}: " + (", ".join(f"{y:+.0f} ({c:+.1f})" for y, c in found) or "none")
                  for name, found in report.scenes]  # fmt: skip
    if report.turn is not None:
        t = report.turn
        front = np.abs(t.yaw_true) <= 90
        lines += ["", (f"The face model alone through a rendered 360 deg turn ({len(t.yaw_true)} frames, {TURN_STEP_DEG:g} deg "
                       f"apart): median error {f(float(np.median(t.error_deg[front])), 2)} deg in its front range (|yaw| <= 90), "
                       f"{f(float(np.median(t.error_deg)), 2)} deg over the whole turn; largest frame-to-frame step "
                       f"{f(t.max_step_deg, 2)} deg (at true yaw {t.max_step_at_yaw:+.0f}). It is the front branch: behind "
                       f"the head the head model takes over (the pipeline rows above, limit {MAX_JUMP_DEG:g} deg a step). "
                       f"The landmark path found the face in {100 * t.landmark_found:.0f}% of the frames.")]  # fmt: skip
    return lines

