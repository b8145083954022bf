"""Heads found from the body, where no face is visible: MediaPipe BlazePose in numpy.

BlazeFace needs a face. A head seen from the side or from behind has none, but the body
around it is plain to see: BlazePose's detector finds the person, and its landmark network
places 33 body landmarks whose ears, eyes and nose exist at every yaw (the network predicts
occluded points too). :class:`BodyHeadFinder` turns them into a head ROI in kaocap's own head
ROI convention (kaocap.pose.head.head_rois), so the tracker can start on a head first seen
from behind.

The geometry follows MediaPipe's pose graphs (pose_detector_graph.cc, pose_detection_cpu.pbtxt,
pose_landmark_by_roi_cpu.pbtxt): a 224x224 letterbox in -1..1 with zero padding, 2254 SSD
anchors, sigmoid scores >= 0.5, weighted NMS at IoU 0.3; the body ROI centred on the hip-centre
keypoint, its side 2 x 1.25 x the distance to the full-body keypoint, rotated so that this
vector points up; a 256x256 crop in 0..1, border replicated. MediaPipe's heatmap refinement
of the landmarks (RefineLandmarksFromHeatmapCalculator) is left out: it moves points by a
few crop px, well within what a head ROI needs.

Head ROI (:func:`head_candidate`): centre at the midpoint of the ears, 1.3 cm below it along
the head's up axis and, past 38 deg of yaw, ahead of it towards the face (the face's box
outreaches the ears there); side 0.275 m times the image scale at the head (px per metre,
from the image against the metric world landmarks); rotation from the head's up axis, made
from the ear axis and the ears-to-eyes direction in 3D, so it exists in profile and from
behind where the eye or ear line alone degenerates.

Calibration, against kaocap's head ROI (``head_rois`` of MediaPipe's 478 landmarks with the
head rotation, kaocap's Pipeline in image mode) on 1171 real faces from 377 sources: 305
frames of 26 frontal clips under ../shared/data/videos (12 each: MEAD, LatentSync,
LivePortrait sources, SkyReels, HDTF-style talking heads), 510 frames of 17 LivePortrait
driving clips (30 each) and 356 faces in the still photos (images/, headpose/, landmarks/),
each matched to the body whose ear midpoint lies nearest (yaw p5..p95 -15..13 deg):

* ``HEAD_SIDE_M`` = median of kaocap's side / px per metre: 0.275 (0.266 frontal clips,
  0.282 close-up driving clips, 0.267 photos); spread std(log) 0.087 (about +-9 %), p5..p95
  0.235..0.309, per-source medians p5..p95 0.231..0.306. For a frontal face that is about
  2.1 to 2.3 x the ear-to-ear distance in the image.
* ``CENTRE_BELOW_EARS_M`` = 0.013 (median, p25..p75 0.008..0.018), which matches the canonical
  face: its box centre lies 1.2 cm below its side contour by the ears.
* ``EYES_ABOVE_EARS_RAD`` = 10 deg: of -5..15 deg in 5-deg steps the lowest rotation error
  on the 98 faces turned more than 15 deg (7.9 deg mean absolute; 8.8 at 5, 10.1 at 0) and on
  the 24 past 25 deg (13.7; 14.6 at 5, 16.3 at 0). The nose, which BlazePose puts up to
  35 deg below the ears in profile, tilted profile heads by 25 deg.
* Result: centre off by 0.033 of the side (median; p95 0.084), side ratio 1.00 (p5..p95
  0.89..1.17), rotation 3.4 deg mean absolute (p95 9.0; 10.5 past 20 deg of yaw).

Coordinates are image px (x right, y down) unless a name says otherwise. Landmark order is
BlazePose's: 0 nose, 1-3 left eye inner/centre/outer, 4-6 right eye, 7 left ear, 8 right ear,
9-10 mouth left/right, 11-12 shoulders (subject's own sides).

>>> finder = BodyHeadFinder(threads=1)                         # doctest: +SKIP
>>> heads = finder(image_rgb, max_people=2)
>>> heads[0].roi.center_xy, heads[0].roi.size_wh, heads[0].facing
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import cache

import numpy as np
from numpy.typing import NDArray

from kaocap.detect import process
from kaocap.detect.process import Detection, anchor_centres, sigmoid, weighted_nms
from kaocap.landmarks.process import crop
from kaocap.models import model_path
from kaocap.runtime import open_session
from kaocap.types import Roi

DETECTOR_SIZE = 224
LANDMARKS_SIZE = 256
NUM_ANCHORS = 2254
NUM_BODY_KEYPOINTS = 4
#: The landmark network's output: 33 body + 6 auxiliary (ROI) points, x y z visibility presence.
NUM_OUTPUT_LANDMARKS, LANDMARK_VALUES = 39, 5
# SsdAnchorsCalculator / TensorsToDetectionsCalculator / NonMaxSuppressionCalculator /
# RectTransformationCalculator options of MediaPipe's PoseDetectorGraph.
_ANCHOR_STRIDES = (8, 16, 32, 32, 32)
MIN_DETECTION_SCORE = 0.5
NMS_IOU = 0.3
BODY_ROI_SCALE = 1.25
#: Pose presence (the landmark network's pose flag) below which a body is dropped, and mean
#: presence of the 11 head points below which its head counts as out of the frame.
MIN_PRESENCE = 0.5
# Detector keypoints: hip centre, and the point whose distance and direction from it give the
# full body's size and up direction.
_KP_HIP_CENTRE, _KP_FULL_BODY = 0, 1
# BlazePose landmark indices.
LEFT_EYE, RIGHT_EYE = 2, 5
LEFT_EAR, RIGHT_EAR = 7, 8
HEAD_POINTS = tuple(range(11))  # nose, eyes, ears, mouth
#: Points whose image and world positions give the image scale at the head: head and shoulders.
_SCALE_POINTS = list(range(13))
#: Output tensor names (their model cards).
DETECTOR_REGRESSORS, DETECTOR_SCORES = "Identity", "Identity_1"
LANDMARKS_OUTPUT, PRESENCE_OUTPUT, WORLD_OUTPUT = "Identity", "Identity_1", "Identity_4"
# Head ROI calibration (the module docstring).
HEAD_SIDE_M = 0.275
CENTRE_BELOW_EARS_M = 0.013
EYES_ABOVE_EARS_RAD = math.radians(10.0)
#: BlazePose's image-landmark z runs this many times the x scale (least-squares slope against
#: its metric world landmarks: medians 2.7, 3.3 and 3.0 on the three calibration sets).
Z_EXAGGERATION = 3.0
# MediaPipe's canonical face (face_geometry/data/canonical_face_model.obj): the nose tip lies
# 10.0 cm ahead of the side contour by the ears (points 234/454), 7.74 cm off the midline.
FACE_DEPTH_M, FACE_HALF_WIDTH_M = 0.100, 0.0774


@dataclass(frozen=True, slots=True)
class HeadCandidate:
    """A head found from a body.

    roi: the head ROI in image px, kaocap's convention (kaocap.pose.head.head_rois): square,
        centred on the head, upright after undoing ``rotation_rad`` (clockwise as seen).
    score: 0..1, the detector's score times the landmark network's pose presence.
    facing: -1..1, how much the face is turned toward the camera: the cosine between the
        head's forward axis (:func:`head_axes`: from the ear axis and the ears-to-eyes
        direction of BlazePose's 3D image landmarks) and the direction to the camera. About +1
        frontal, 0 in profile, -1 seen from behind. (BlazePose's visibility is no measure of
        it: it stays near 1 for the nose and eyes of a head seen from behind.)
    """

    roi: Roi
    score: float
    facing: float


@cache
def ssd_anchors() -> NDArray[np.float32]:
    """(2254, 2) anchor centres (x, y) in 0..1 of the 224x224 input; anchor sizes are all 1."""
    return anchor_centres(_ANCHOR_STRIDES, DETECTOR_SIZE)


def decode(regressors: NDArray[np.float32], logits: NDArray[np.float32], min_score: float,
           affine: NDArray[np.float64]) -> tuple[NDArray, NDArray, NDArray]:  # fmt: skip
    """Raw outputs (2254, 12), (2254,) -> face boxes (K, 4) x0 y0 x1 y1, body keypoints (K, 4, 2)
    and scores (K,) for the anchors scoring at least ``min_score``, mapped to image px by
    ``affine`` (input px -> image px, a scale and a shift)."""
    probs = sigmoid(logits.reshape(-1))
    keep = np.flatnonzero(probs >= min_score)
    raw, anchors = regressors[keep].astype(np.float64), ssd_anchors()[keep].astype(np.float64) * DETECTOR_SIZE
    centre, half = raw[:, 0:2] + anchors, raw[:, 2:4] / 2
    boxes = np.concatenate([centre - half, centre + half], axis=1)
    keypoints = raw[:, 4:12].reshape(-1, NUM_BODY_KEYPOINTS, 2) + anchors[:, None, :]
    s, t = affine[0, 0], affine[:, 2]
    return boxes * s + np.tile(t, 2), keypoints * s + t, probs[keep]


def body_roi(keypoints: NDArray[np.floating]) -> Roi:
    """The landmark network's ROI from a detection's (4, 2) px keypoints (MediaPipe's
    AlignmentPointsRectsCalculator + RectTransformationCalculator): centred on the hip centre,
    side 2 x 1.25 x its distance to the full-body point, rotated so that point is straight up."""
    start, end = np.asarray(keypoints, np.float64)[[_KP_HIP_CENTRE, _KP_FULL_BODY]]
    dx, dy = end - start
    side = 2.0 * math.hypot(dx, dy) * BODY_ROI_SCALE
    rotation = math.pi / 2 - math.atan2(-dy, dx)
    rotation -= 2 * math.pi * math.floor((rotation + math.pi) / (2 * math.pi))
    return Roi(start.astype(np.float32), np.array([side, side], np.float32), rotation)


def project(raw: NDArray[np.float32], roi: Roi) -> NDArray[np.float32]:
    """Raw landmark output (195,) in 256-px crop units -> (39, 5) x, y image px, z px (x scale,
    smaller = nearer), visibility 0..1, presence 0..1."""
    pts = raw.reshape(NUM_OUTPUT_LANDMARKS, LANDMARK_VALUES).astype(np.float64)
    x, y = pts[:, 0] / LANDMARKS_SIZE - 0.5, pts[:, 1] / LANDMARKS_SIZE - 0.5
    c, s = math.cos(roi.rotation_rad), math.sin(roi.rotation_rad)
    side = float(roi.size_wh[0])
    out = np.empty_like(pts)
    out[:, 0] = (c * x - s * y) * side + roi.center_xy[0]
    out[:, 1] = (s * x + c * y) * side + roi.center_xy[1]
    out[:, 2] = pts[:, 2] / LANDMARKS_SIZE * side
    out[:, 3:] = sigmoid(pts[:, 3:])
    return out.astype(np.float32)


def project_world(raw: NDArray[np.float32], roi: Roi) -> NDArray[np.float32]:
    """Raw world-landmark output (117,) -> (39, 3) metres, origin between the hips, axes as the
    image's (x right, y down, z away from the camera): the crop's upright frame turned back by
    the ROI rotation (MediaPipe's WorldLandmarkProjectionCalculator)."""
    pts = raw.reshape(NUM_OUTPUT_LANDMARKS, 3).astype(np.float64)
    c, s = math.cos(roi.rotation_rad), math.sin(roi.rotation_rad)
    out = pts.copy()
    out[:, 0], out[:, 1] = c * pts[:, 0] - s * pts[:, 1], s * pts[:, 0] + c * pts[:, 1]
    return out.astype(np.float32)


def pixels_per_metre(landmarks: NDArray[np.floating], world: NDArray[np.floating]) -> float:
    """The image scale at the head, px per metre: the least-squares weak-perspective scale
    between the head and shoulder landmarks' image xy and their world xy (both centred)."""
    p = np.asarray(landmarks, np.float64)[_SCALE_POINTS, :2]
    q = np.asarray(world, np.float64)[_SCALE_POINTS, :2]
    p, q = p - p.mean(0), q - q.mean(0)
    return math.sqrt(float((p**2).sum()) / max(float((q**2).sum()), 1e-12))


def head_axes(landmarks: NDArray[np.floating]) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    """The head's forward and up unit vectors (3,) in the image frame (x right, y down, z away
    from the camera, z brought to the x scale), from the (39, 5) image landmarks: forward is
    the ears-to-eyes direction made perpendicular to the ear axis and lowered by
    :data:`EYES_ABOVE_EARS_RAD`, up is perpendicular to both. Eyes rather than the nose: the
    nose tip's height against the ears varies with the face and BlazePose puts it up to 35 deg
    below them in profile, while the eyes stay near the ears' level (the Frankfort plane)."""
    pts = np.asarray(landmarks, np.float64)[:, :3] / np.array([1.0, 1.0, Z_EXAGGERATION])
    ear_axis = pts[LEFT_EAR] - pts[RIGHT_EAR]
    ear_axis /= max(np.linalg.norm(ear_axis), 1e-12)
    eyes = (pts[LEFT_EYE] + pts[RIGHT_EYE]) / 2 - (pts[LEFT_EAR] + pts[RIGHT_EAR]) / 2
    eyes -= (eyes @ ear_axis) * ear_axis
    eyes /= max(np.linalg.norm(eyes), 1e-12)
    above = np.cross(eyes, ear_axis)  # perpendicular to the eye line, towards the crown
    c, s = math.cos(EYES_ABOVE_EARS_RAD), math.sin(EYES_ABOVE_EARS_RAD)
    return c * eyes - s * above, c * above + s * eyes


def head_candidate(landmarks: NDArray[np.floating], world: NDArray[np.floating], score: float) -> HeadCandidate | None:
    """The head ROI of one body from its (39, 5) image landmarks and (39, 3) world landmarks,
    or None when the head is not in the frame (mean presence of the 11 head points < 0.5).

    Centre: the midpoint of the ears, moved along the head's own axes; side: a fixed head size
    in metres times the image scale there; rotation: the head's up axis made upright. Seen
    from behind, the ears and the head axes still exist (the network predicts occluded points).
    """
    lm = np.asarray(landmarks, np.float64)
    if lm[HEAD_POINTS, 4].mean() < MIN_PRESENCE:
        return None
    scale = pixels_per_metre(lm, world)
    forward, up = head_axes(lm)
    centre = (lm[LEFT_EAR, :2] + lm[RIGHT_EAR, :2]) / 2 - scale * CENTRE_BELOW_EARS_M * up[:2]
    # The face's box moves ahead of the ears once the nose tip outreaches the far cheek
    # (|yaw| > 38 deg, up to half the face depth in profile); frontal and from behind it is
    # centred on them.
    sin_yaw, cos_yaw = float(np.linalg.norm(forward[:2])), abs(float(forward[2]))
    ahead_m = max(0.0, FACE_DEPTH_M * sin_yaw - FACE_HALF_WIDTH_M * cos_yaw) / 2
    centre = centre + scale * ahead_m * forward[:2] / max(sin_yaw, 1e-9)
    side = HEAD_SIDE_M * scale
    rotation = math.atan2(up[0], -up[1])
    roi = Roi(centre.astype(np.float32), np.array([side, side], np.float32), rotation)
    return HeadCandidate(roi, float(score), float(-forward[2]))


def _check_image(image: object) -> None:
    if not isinstance(image, np.ndarray) or image.dtype != np.uint8 or image.ndim != 3 or image.shape[2] != 3:
        got = f"{image.dtype} {image.shape}" if isinstance(image, np.ndarray) else type(image).__name__
        raise ValueError(f"image must be an RGB uint8 array (H, W, 3), got {got}")
    if image.shape[0] < 1 or image.shape[1] < 1:
        raise ValueError(f"image must not be empty, got shape {image.shape}")


class BodyHeadFinder:
    """Finds heads from bodies with MediaPipe's BlazePose networks (LiteRT), at any yaw.

    One detector call per image, one landmark call per person tried.

    >>> finder = BodyHeadFinder(threads=1)                     # doctest: +SKIP
    >>> [h.roi.center_xy for h in finder(image_rgb, max_people=3)]
    """

    def __init__(self, *, threads: int = 1) -> None:
        self._detector = open_session(model_path("mediapipe_pose_detector"), "litert", threads=threads)
        self._landmarks = open_session(model_path("mediapipe_pose_landmarks"), "litert", threads=threads)

    def detect(self, image: NDArray[np.uint8]) -> list[Detection]:
        """Bodies in an RGB image (H, W, 3) uint8, sorted by score: face box (4,) and the four
        body keypoints (4, 2) in image px (see :func:`decode`)."""
        _check_image(image)
        tensor, to_image = process.letterbox(image, size=DETECTOR_SIZE)
        out = self._detector.run({self._detector.inputs[0].name: tensor})
        found = decode(out[DETECTOR_REGRESSORS][0], out[DETECTOR_SCORES][0, :, 0], MIN_DETECTION_SCORE, to_image)
        return weighted_nms(*found, NMS_IOU)

    def body_landmarks(self, image: NDArray[np.uint8], roi: Roi) -> tuple[NDArray[np.float32], NDArray[np.float32], float]:
        """The landmark network on ``roi`` of an RGB image: (39, 5) image landmarks (see
        :func:`project`), (39, 3) world landmarks in metres (:func:`project_world`), and the
        pose presence 0..1."""
        _check_image(image)
        out = self._landmarks.run({self._landmarks.inputs[0].name: crop(image, [roi], LANDMARKS_SIZE)})
        presence = float(np.asarray(out[PRESENCE_OUTPUT]).reshape(-1)[0])
        return project(out[LANDMARKS_OUTPUT][0], roi), project_world(out[WORLD_OUTPUT][0], roi), presence

    def __call__(self, image: NDArray[np.uint8], max_people: int = 1) -> list[HeadCandidate]:
        """Heads of up to ``max_people`` people in an RGB image (H, W, 3) uint8, best score first.

        Detections are tried best first until ``max_people`` heads are found; a body whose
        pose presence is below 0.5, whose head is out of the frame, or whose head centre lies
        within half a head of a better one's is skipped.
        """
        _check_image(image)
        if max_people < 1:
            raise ValueError(f"max_people must be >= 1, got {max_people}")
        heads: list[HeadCandidate] = []
        for detection in self.detect(image):
            if len(heads) == max_people:
                break
            landmarks, world, presence = self.body_landmarks(image, body_roi(detection.keypoints))
            if presence < MIN_PRESENCE:
                continue
            head = head_candidate(landmarks, world, detection.score * presence)
            if head is not None and not any(_same_head(head.roi, h.roi) for h in heads):
                heads.append(head)
        return sorted(heads, key=lambda h: -h.score)


def _same_head(a: Roi, b: Roi) -> bool:
    return float(np.linalg.norm(a.center_xy - b.center_xy)) < 0.5 * float(min(a.size_wh[0], b.size_wh[0]))
