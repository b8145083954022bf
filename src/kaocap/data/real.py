"""Real-face samples: runtime-exact crops of real frames with MediaPipe teacher labels.

For every sampled frame and face:

* Teacher: MediaPipe FaceLandmarker's own networks run by kaocap's :class:`~kaocap.Pipeline` in
  detect-every-frame mode without filtering (MediaPipe's IMAGE mode), which reproduces
  MediaPipe's outputs to a median 0.010% of the inter-ocular distance (``tests/test_golden.py``).
* ROI: ``roi_from_landmarks(teacher landmarks)``, the crop the runtime tracks with; the crop is
  ``cv2.warpAffine(image, roi.crop_matrix(S), (S, S), INTER_LINEAR, BORDER_REPLICATE)``, exactly
  as :func:`kaocap.landmarks.process.crop` (S = ``crop_size``, 128 by default).
* Jitter: ``jitter`` more crops of the same face from a perturbed ROI (centre shift, scale,
  rotation, normal draws clipped at 2.5 sd), the same labels re-expressed in each crop.
* Labels: 478 landmarks in crop px (``z`` scaled like ``x``), 52 blendshapes (NaN where the
  teacher has none: tongueOut), head rotation and translation (cm, camera frame of the labelled
  image, :mod:`kaocap.types`), presence (teacher score); visibility is unknown (NaN).
* Thinning (clips only): a face whose landmarks moved less than ``thin_iod`` (mean point
  displacement / inter-ocular distance) and whose blendshapes all changed less than
  ``thin_blendshape`` since the last kept face near it is skipped.

ROIs and labels are in the px of the labelled image: the frame, or its panel for a source key
with ``#x<x0>-<x1>`` (the frame's columns x0..x1).
"""

from __future__ import annotations

import dataclasses
import itertools
import math
import time
import zlib
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import cv2
import numpy as np
from numpy.typing import NDArray

from kaocap.capture import FolderSource, VideoSource, read_image
from kaocap.constants import LANDMARK_LEFT_EYE_OUTER, LANDMARK_RIGHT_EYE_OUTER, NUM_LANDMARKS
from kaocap.data.people import person_of
from kaocap.data.sources import SourceUnit, photo_paths
from kaocap.landmarks.process import roi_from_landmarks
from kaocap.types import Face, Roi

#: How the teacher was checked (recorded in every manifest).
TEACHER = {
    "name": "MediaPipe FaceLandmarker networks (face_landmarker.task) run by kaocap.Pipeline",
    "mode": "detect every frame (tracking off), no filtering: MediaPipe IMAGE mode",
    "agreement": "tests/test_golden.py, 320 frames of 10 people vs mediapipe 1.2.2: median "
                 "landmark distance 0.010% of the inter-ocular distance, blendshape mean abs "
                 "difference 0.0003, median rotation difference 0.024 deg, same faces found",
}  # fmt: skip
_CLIP_FPS = 25.0  # timestamps of frame-sequence folders (their rate is unknown)
_CLIP_SD = 2.5


@dataclass(frozen=True, slots=True)
class RealParams:
    """Sampling and labelling settings of a real-face build (recorded in the manifest).

    crop_size: S, crop side px. stride: label every stride-th frame of a clip. jitter: jittered
    variants per face. shift_sd: centre shift sd, fraction of the ROI side. scale_sd: sd of the
    log ROI scale. rotation_sd_deg: ROI rotation sd, degrees. thin_iod, thin_blendshape:
    thinning thresholds (0 = keep every face). max_faces_clip / max_faces_photo: teacher's
    max_faces. jpeg_quality: crop encoding quality.
    """

    crop_size: int = 128
    stride: int = 2
    jitter: int = 2
    shift_sd: float = 0.05
    scale_sd: float = 0.06
    rotation_sd_deg: float = 6.0
    thin_iod: float = 0.02
    thin_blendshape: float = 0.05
    max_faces_clip: int = 2
    max_faces_photo: int = 8
    jpeg_quality: int = 92

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


class Teacher:
    """Detect-every-frame labelling: ``teacher(image, max_faces) -> tuple[Face, ...]`` (RGB uint8
    (H, W, 3) in; faces in that image's px). One pipeline per ``max_faces``, 1 thread each."""

    def __init__(self) -> None:
        self._pipes: dict[int, Any] = {}
        self._clock = itertools.count(1)

    def __call__(self, image: NDArray[np.uint8], max_faces: int) -> tuple[Face, ...]:
        if max_faces not in self._pipes:
            from kaocap import Pipeline
            from kaocap.config import PipelineConfig

            cfg = PipelineConfig.image_mode(max_faces=max_faces)
            self._pipes[max_faces] = Pipeline(cfg)
        return self._pipes[max_faces](image, next(self._clock)).faces


def crop_image(image: NDArray[np.uint8], roi: Roi, size: int) -> NDArray[np.uint8]:
    """(size, size, 3) uint8: the runtime's crop of ``roi`` (see the module docstring)."""
    return cv2.warpAffine(image, roi.crop_matrix(size), (size, size), flags=cv2.INTER_LINEAR,
                          borderMode=cv2.BORDER_REPLICATE)  # fmt: skip


def landmarks_in_crop(landmarks: NDArray[np.floating], roi: Roi, size: int) -> NDArray[np.float32]:
    """(478, 3) image px -> crop px of ``roi`` at ``size``; z scaled by the same size / ROI width."""
    m = roi.crop_matrix(size)
    out = np.empty((len(landmarks), 3), np.float32)
    out[:, :2] = landmarks[:, :2] @ m[:, :2].T + m[:, 2]
    out[:, 2] = landmarks[:, 2] * (size / float(roi.size_wh[0]))
    return out


def roi_array(roi: Roi) -> NDArray[np.float32]:
    """(5,) cx, cy, w, h px, rotation rad: the shard's ``roi`` row."""
    return np.array([*roi.center_xy, *roi.size_wh, roi.rotation_rad], np.float32)


def roi_from_array(row: NDArray[np.floating]) -> Roi:
    """Inverse of :func:`roi_array`."""
    return Roi(np.asarray(row[:2], np.float32), np.asarray(row[2:4], np.float32), float(row[4]))


def jitter_roi(roi: Roi, rng: np.random.Generator, params: RealParams) -> Roi:
    """A perturbed copy of ``roi``: centre shift, scale and rotation drawn from clipped normals."""
    draw = np.clip(rng.standard_normal(4), -_CLIP_SD, _CLIP_SD)
    side = float(roi.size_wh.max())
    centre = roi.center_xy + (draw[:2] * params.shift_sd * side).astype(np.float32)
    size = roi.size_wh * np.float32(math.exp(draw[2] * params.scale_sd))
    return Roi(centre.astype(np.float32), size.astype(np.float32),
               roi.rotation_rad + math.radians(draw[3] * params.rotation_sd_deg))  # fmt: skip


def inter_ocular(landmarks: NDArray[np.floating]) -> float:
    """Distance px between the outer eye corners of (478, 2+) landmarks."""
    return float(np.linalg.norm(landmarks[LANDMARK_LEFT_EYE_OUTER, :2] - landmarks[LANDMARK_RIGHT_EYE_OUTER, :2]))


class Thinner:
    """Skips faces that barely changed since the last kept face near them (module docstring).

    ``keep(landmarks (478, 2+) px, blendshapes (52,))`` -> bool. Kept faces are remembered per
    place: the last kept face whose landmark centre is within one inter-ocular distance.
    """

    def __init__(self, min_move_iod: float, min_blendshape_change: float) -> None:
        self.min_move_iod = min_move_iod
        self.min_change = min_blendshape_change
        self._kept: list[tuple[NDArray, NDArray]] = []

    def keep(self, landmarks: NDArray[np.floating], blendshapes: NDArray[np.floating]) -> bool:
        xy = np.asarray(landmarks, np.float64)[:, :2]
        iod = max(inter_ocular(xy), 1e-6)
        dist = [float(np.linalg.norm(xy.mean(0) - k.mean(0))) for k, _ in self._kept]
        slot = int(np.argmin(dist)) if dist and min(dist) < iod else None
        if slot is not None:
            old_xy, old_bs = self._kept[slot]
            move = float(np.linalg.norm(xy - old_xy, axis=1).mean()) / iod
            change = float(np.nanmax(np.abs(np.asarray(blendshapes) - old_bs)))
            if move < self.min_move_iod and change < self.min_change:
                return False
        entry = (xy, np.asarray(blendshapes, np.float64))
        if slot is None:
            self._kept.append(entry)
        else:
            self._kept[slot] = entry
        return True


@dataclass(slots=True)
class UnitStats:
    """What labelling one unit did: frames labelled, faces found, faces thinned, samples made."""

    frames: int = 0
    faces: int = 0
    thinned: int = 0
    samples: int = 0
    seconds: float = 0.0


#: Every label array of a teacher sample: (per-sample shape, dtype).
_LAYOUT = {"roi": ((5,), np.float32), "jitter": ((), bool), "blendshapes": ((52,), np.float32),
           "blendshapes_valid": ((52,), bool), "rotation": ((3, 3), np.float32),
           "translation_cm": ((3,), np.float32), "landmarks": ((NUM_LANDMARKS, 3), np.float32),
           "visibility": ((NUM_LANDMARKS,), np.float32), "presence": ((), np.float32),
           "frame": ((), np.int32)}  # fmt: skip
_TEXT = ("person", "source", "kind")


class SampleList:
    """Rows of samples; ``arrays()`` -> (crops (N, S, S, 3) uint8, labels per shards' schema).

    extra: more label arrays, ``{key: (per-sample shape, dtype)}`` (dtype ``str`` for text).
    """

    def __init__(self, crop_size: int, extra: dict[str, tuple[tuple[int, ...], Any]] | None = None) -> None:
        self.crop_size = crop_size
        self.layout = {**_LAYOUT, **{k: ((), str) for k in _TEXT}, **(extra or {})}
        self.crops: list[NDArray[np.uint8]] = []
        self.rows: dict[str, list] = {k: [] for k in self.layout}

    def __len__(self) -> int:
        return len(self.crops)

    def add(self, crop: NDArray[np.uint8], **row: Any) -> None:
        self.crops.append(crop)
        for key, values in self.rows.items():
            values.append(row[key])

    def arrays(self) -> tuple[NDArray[np.uint8], dict[str, NDArray]]:
        s = self.crop_size
        crops = np.stack(self.crops) if self.crops else np.zeros((0, s, s, 3), np.uint8)
        labels: dict[str, NDArray] = {}
        for key, (shape, dtype) in self.layout.items():
            rows = self.rows[key]
            labels[key] = np.array(rows, dtype=dtype).reshape(len(rows), *shape)
        return crops, labels


def add_face(samples: SampleList, image: NDArray[np.uint8], face: Face, rng: np.random.Generator,
             params: RealParams, **meta: Any) -> None:  # fmt: skip
    """The base crop of one face and its jittered variants, with the teacher's labels.

    ``meta``: person, source, frame, kind, and any label that replaces the teacher's
    (``blendshapes``, ``blendshapes_valid``, ``rotation``, ``translation_cm``).
    """
    base = roi_from_landmarks(face.landmarks)
    rois = [base] + [jitter_roi(base, rng, params) for _ in range(params.jitter)]
    labels = {"blendshapes": np.where(face.blendshapes_valid, face.blendshapes, np.nan),
              "blendshapes_valid": face.blendshapes_valid, "rotation": face.pose.rotation,
              "translation_cm": face.pose.translation_cm, "presence": face.score,
              "visibility": np.full(NUM_LANDMARKS, np.nan, np.float32), **meta}  # fmt: skip
    for i, roi in enumerate(rois):
        samples.add(crop_image(image, roi, params.crop_size), roi=roi_array(roi), jitter=i > 0,
                    landmarks=landmarks_in_crop(face.landmarks, roi, params.crop_size), **labels)  # fmt: skip


def unit_rng(seed: int, key: str) -> np.random.Generator:
    """The jitter generator of one unit: a function of (seed, key) only, so any worker order
    gives the same samples."""
    return np.random.default_rng([seed, zlib.crc32(key.encode())])


def clip_frames(unit: SourceUnit, stride: int) -> Iterator[tuple[NDArray[np.uint8], int]]:
    """(image, frame index) of every stride-th frame of a clip unit (only frame 0 if still),
    cut to the unit's region."""
    source = VideoSource(unit.path) if unit.kind == "video" else FolderSource(unit.path, fps=_CLIP_FPS)
    with source:
        for frame in source:
            if frame.index % stride == 0:
                yield _cut(frame.image, unit.region), frame.index
            if unit.still:
                return


def _cut(image: NDArray[np.uint8], region: tuple[int, int, int, int] | None) -> NDArray[np.uint8]:
    if region is None:
        return image
    x0, y0, x1, y1 = region
    return np.ascontiguousarray(image[y0:y1, x0:x1])


def label_unit(unit: SourceUnit, params: RealParams, seed: int, teacher: Teacher,
               overrides: dict[str, str] | None = None) -> tuple[SampleList, UnitStats]:  # fmt: skip
    """Every sample of one unit (clip, frame sequence or photo group) and what it took."""
    start = time.perf_counter()
    rng, samples, stats = unit_rng(seed, unit.key), SampleList(params.crop_size), UnitStats()
    if unit.kind == "photos":
        _label_photos(unit, params, teacher, overrides, rng, samples, stats)
    else:
        _label_clip(unit, params, teacher, rng, samples, stats)
    stats.samples, stats.seconds = len(samples), time.perf_counter() - start
    return samples, stats


def _label_photos(unit: SourceUnit, params: RealParams, teacher: Teacher, overrides, rng,
                  samples: SampleList, stats: UnitStats) -> None:  # fmt: skip
    for path in photo_paths(unit):
        key = f"{unit.key}/{path.name}"
        person = person_of(key, overrides)
        if person is None:
            continue
        image = read_image(path)
        faces = teacher(image, params.max_faces_photo)
        stats.frames, stats.faces = stats.frames + 1, stats.faces + len(faces)
        for face in faces:
            add_face(samples, image, face, rng, params, person=person, source=key, frame=-1, kind="teacher")


def _label_clip(unit: SourceUnit, params: RealParams, teacher: Teacher, rng, samples: SampleList,
                stats: UnitStats) -> None:  # fmt: skip
    thinner = Thinner(params.thin_iod, params.thin_blendshape)
    for image, index in clip_frames(unit, params.stride):
        faces = teacher(image, params.max_faces_clip)
        stats.frames, stats.faces = stats.frames + 1, stats.faces + len(faces)
        for face in faces:
            if not thinner.keep(face.landmarks, face.blendshapes):
                stats.thinned += 1
                continue
            add_face(samples, image, face, rng, params, person=unit.person, source=unit.key,
                     frame=index, kind="teacher")  # fmt: skip
