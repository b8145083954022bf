"""Typed results: every pipeline, runtime and sender speaks these.

Frames and coordinates
----------------------
* Image pixels: ``x`` right, ``y`` down, origin at the top-left corner of the top-left pixel.
* Camera frame (head pose): right-handed, metric (cm), MediaPipe's convention: ``x`` to the
  image right, ``y`` up, ``z`` towards the viewer, so a face in front of the camera has
  ``translation_cm[2] < 0``. The face model frame is MediaPipe's canonical face: ``x`` to the
  subject's left (image right when facing the camera), ``y`` up, ``z`` out of the face.

Euler angles (degrees)
----------------------
``rotation = Ry(yaw) @ Rx(pitch) @ Rz(roll)`` with right-handed rotations about the camera axes:

* ``yaw > 0``: the face turns towards the image right (the subject's own left).
* ``pitch > 0``: the face tilts down (chin towards the chest).
* ``roll > 0``: the head tilts so that its top moves towards the image left (counter-clockwise
  as the viewer sees it).

Quaternions are ``(w, x, y, z)``. ``q`` and ``-q`` are the same rotation: a pose on its own has
``w >= 0``; along a track the pipeline keeps each frame's sign on the previous frame's side
(``HeadPose.quaternion_sign``), so a head turning through 180 deg never flips the quaternion.
The rotation matrix is continuous by nature; only the Euler yaw wraps at +-180.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from numpy.typing import NDArray

from kaocap.constants import BLENDSHAPE_INDEX, BLENDSHAPES, NUM_LANDMARKS


def _check(name: str, array: np.ndarray, shape: tuple[int, ...], dtype: type = np.float32) -> None:
    if not isinstance(array, np.ndarray) or array.shape != shape or array.dtype != dtype:
        got = getattr(array, "shape", type(array).__name__), getattr(array, "dtype", "")
        raise ValueError(f"{name} must be a {np.dtype(dtype).name} array of shape {shape}, got {got}")


def euler_to_matrix(yaw_deg: float, pitch_deg: float, roll_deg: float) -> NDArray[np.float64]:
    """(3, 3) rotation ``Ry(yaw) @ Rx(pitch) @ Rz(roll)`` (see the module docstring)."""
    y, p, r = (math.radians(a) for a in (yaw_deg, pitch_deg, roll_deg))
    cy, sy, cp, sp, cr, sr = math.cos(y), math.sin(y), math.cos(p), math.sin(p), math.cos(r), math.sin(r)
    ry = np.array([[cy, 0, sy], [0, 1, 0], [-sy, 0, cy]])
    rx = np.array([[1, 0, 0], [0, cp, -sp], [0, sp, cp]])
    rz = np.array([[cr, -sr, 0], [sr, cr, 0], [0, 0, 1]])
    return ry @ rx @ rz


def matrix_to_euler(rotation: NDArray[np.floating]) -> tuple[float, float, float]:
    """(yaw, pitch, roll) in degrees of a (3, 3) rotation; at gimbal lock (|pitch| = 90) roll = 0."""
    r = np.asarray(rotation, dtype=np.float64)
    sin_pitch = float(np.clip(-r[1, 2], -1.0, 1.0))
    pitch = math.asin(sin_pitch)
    if abs(sin_pitch) < 1.0 - 1e-9:
        yaw = math.atan2(r[0, 2], r[2, 2])
        roll = math.atan2(r[1, 0], r[1, 1])
    else:
        yaw = math.atan2(-r[2, 0], r[0, 0])
        roll = 0.0
    return math.degrees(yaw), math.degrees(pitch), math.degrees(roll)


def matrix_to_quaternion(rotation: NDArray[np.floating]) -> NDArray[np.float64]:
    """(4,) unit quaternion ``(w, x, y, z)``, ``w >= 0``, of a (3, 3) rotation."""
    m = np.asarray(rotation, dtype=np.float64)
    # Shepperd's method: pick the largest diagonal term for numerical stability.
    trace = m[0, 0] + m[1, 1] + m[2, 2]
    candidates = (trace, m[0, 0], m[1, 1], m[2, 2])
    k = int(np.argmax(candidates))
    if k == 0:
        s = math.sqrt(1.0 + trace) * 2
        q = (0.25 * s, (m[2, 1] - m[1, 2]) / s, (m[0, 2] - m[2, 0]) / s, (m[1, 0] - m[0, 1]) / s)
    elif k == 1:
        s = math.sqrt(1.0 + m[0, 0] - m[1, 1] - m[2, 2]) * 2
        q = ((m[2, 1] - m[1, 2]) / s, 0.25 * s, (m[0, 1] + m[1, 0]) / s, (m[0, 2] + m[2, 0]) / s)
    elif k == 2:
        s = math.sqrt(1.0 + m[1, 1] - m[0, 0] - m[2, 2]) * 2
        q = ((m[0, 2] - m[2, 0]) / s, (m[0, 1] + m[1, 0]) / s, 0.25 * s, (m[1, 2] + m[2, 1]) / s)
    else:
        s = math.sqrt(1.0 + m[2, 2] - m[0, 0] - m[1, 1]) * 2
        q = ((m[1, 0] - m[0, 1]) / s, (m[0, 2] + m[2, 0]) / s, (m[1, 2] + m[2, 1]) / s, 0.25 * s)
    quat = np.array(q) / np.linalg.norm(q)
    return -quat if quat[0] < 0 else quat


def quaternion_to_matrix(quaternion_wxyz: NDArray[np.floating]) -> NDArray[np.float64]:
    """(3, 3) rotation of a quaternion ``(w, x, y, z)`` (normalised first)."""
    w, x, y, z = np.asarray(quaternion_wxyz, dtype=np.float64) / np.linalg.norm(quaternion_wxyz)
    return np.array([
        [1 - 2 * (y * y + z * z), 2 * (x * y - z * w), 2 * (x * z + y * w)],
        [2 * (x * y + z * w), 1 - 2 * (x * x + z * z), 2 * (y * z - x * w)],
        [2 * (x * z - y * w), 2 * (y * z + x * w), 1 - 2 * (x * x + y * y)],
    ])  # fmt: skip


@dataclass(frozen=True, slots=True)
class HeadPose:
    """6-DoF head pose: face model frame -> camera frame (both described in the module docstring).

    rotation: (3, 3) float32, orthonormal, det +1.
    translation_cm: (3,) float32, the canonical face's origin in the camera frame, cm.
    quaternion_sign: +1 or -1, the sign of :attr:`quaternion_wxyz` relative to the ``w >= 0``
        one (the pipeline keeps a track's quaternions continuous with it).
    """

    rotation: NDArray[np.float32]
    translation_cm: NDArray[np.float32]
    quaternion_sign: float = 1.0

    def __post_init__(self) -> None:
        _check("rotation", self.rotation, (3, 3))
        _check("translation_cm", self.translation_cm, (3,))

    @classmethod
    def from_matrix(cls, matrix: NDArray[np.floating]) -> HeadPose:
        """From a (4, 4) rigid transform whose translation is in cm."""
        m = np.asarray(matrix, dtype=np.float32)
        return cls(np.ascontiguousarray(m[:3, :3]), np.ascontiguousarray(m[:3, 3]))

    @property
    def matrix(self) -> NDArray[np.float32]:
        """(4, 4) rigid transform, translation in cm."""
        m = np.eye(4, dtype=np.float32)
        m[:3, :3], m[:3, 3] = self.rotation, self.translation_cm
        return m

    @property
    def euler_deg(self) -> tuple[float, float, float]:
        """(yaw, pitch, roll) in degrees; convention in the module docstring."""
        return matrix_to_euler(self.rotation)

    @property
    def quaternion_wxyz(self) -> NDArray[np.float64]:
        """(4,) unit quaternion (w, x, y, z): w >= 0 times :attr:`quaternion_sign`."""
        q = matrix_to_quaternion(self.rotation)
        return q if self.quaternion_sign > 0 else -q


@dataclass(frozen=True, slots=True)
class Roi:
    """A rotated rectangle of the image that a network crop is taken from (MediaPipe's RotatedRect).

    center_xy: (2,) float32 px. size_wh: (2,) float32 px, width and height before rotation.
    rotation_rad: the rectangle's rotation, clockwise as the viewer sees the image (a positive
    angle in image coordinates, whose y axis points down). The crop is rotated back upright.
    """

    center_xy: NDArray[np.float32]
    size_wh: NDArray[np.float32]
    rotation_rad: float

    def __post_init__(self) -> None:
        _check("center_xy", self.center_xy, (2,))
        _check("size_wh", self.size_wh, (2,))

    def crop_matrix(self, out_w: int, out_h: int | None = None) -> NDArray[np.float64]:
        """(2, 3) affine map from image px to the px of an ``out_w`` x ``out_h`` crop.

        The rectangle's edges land on the crop's outer pixel edges, as in MediaPipe's
        ImageToTensorCalculator (``cv::boxPoints`` -> ``getPerspectiveTransform``).
        """
        out_h = out_w if out_h is None else out_h
        c, s = math.cos(self.rotation_rad), math.sin(self.rotation_rad)
        sx, sy = out_w / float(self.size_wh[0]), out_h / float(self.size_wh[1])
        a = np.array([[c * sx, s * sx], [-s * sy, c * sy]])
        t = np.array([out_w / 2, out_h / 2]) - a @ self.center_xy.astype(np.float64)
        return np.hstack([a, t[:, None]])

    def corners_xy(self) -> NDArray[np.float32]:
        """(4, 2) px: the corners, clockwise from the upright crop's top-left."""
        inv = invert_affine(self.crop_matrix(1))
        unit = np.array([[0, 0, 1], [1, 0, 1], [1, 1, 1], [0, 1, 1]], dtype=np.float64)
        return (unit @ inv.T).astype(np.float32)


def invert_affine(matrix: NDArray[np.floating]) -> NDArray[np.float64]:
    """Inverse of a (2, 3) affine map."""
    full = np.vstack([np.asarray(matrix, dtype=np.float64), [0.0, 0.0, 1.0]])
    return np.linalg.inv(full)[:2]


@dataclass(frozen=True, slots=True)
class Face:
    """One face in one frame.

    face_id: stays the same for the same person across frames while tracked.
    score: face presence probability from the landmark network, 0..1.
    box: (4,) float32 ``x0, y0, x1, y1`` px, the landmarks' bounding box.
    landmarks: (478, 3) float32 px; ``z`` is relative depth in px scale (smaller = nearer),
        MediaPipe's 478-point topology (468 mesh + 10 iris points).
    blendshapes: (52,) float32 in 0..1, order :data:`kaocap.BLENDSHAPES` (Apple's).
    blendshapes_valid: (52,) bool; False where no model predicts the shape (tongueOut with
        MediaPipe's network); such values are 0.
    pose: head pose in the camera frame.
    roi: the region the landmark network saw.
    visible: False while the head is turned away so far that the face cannot be seen (kaocap's
        own model follows the head through a full turn, kaocap.pose.fusion): the pose still
        comes (from the full-range head model), the blendshapes are NaN with every
        ``blendshapes_valid`` False, the landmarks are where the face would be (estimates),
        ``to_dict`` writes the shapes as null and senders report the face as lost.
    """

    face_id: int
    score: float
    box: NDArray[np.float32]
    landmarks: NDArray[np.float32]
    blendshapes: NDArray[np.float32]
    blendshapes_valid: NDArray[np.bool_]
    pose: HeadPose
    roi: Roi
    visible: bool = True

    def __post_init__(self) -> None:
        _check("box", self.box, (4,))
        _check("landmarks", self.landmarks, (NUM_LANDMARKS, 3))
        _check("blendshapes", self.blendshapes, (len(BLENDSHAPES),))
        _check("blendshapes_valid", self.blendshapes_valid, (len(BLENDSHAPES),), np.bool_)

    def blendshape(self, name: str) -> float:
        """The coefficient of one ARKit shape by name, e.g. ``face.blendshape("jawOpen")``."""
        try:
            return float(self.blendshapes[BLENDSHAPE_INDEX[name]])
        except KeyError:
            raise KeyError(f"unknown blendshape {name!r}; names are kaocap.BLENDSHAPES") from None

    def to_dict(self, *, landmarks: bool = True) -> dict[str, Any]:
        """JSON-ready dict; the one serialisation every output format is built from."""
        yaw, pitch, roll = self.pose.euler_deg
        out: dict[str, Any] = {
            "id": self.face_id,
            "score": round(self.score, 4),
            "box": [round(float(v), 2) for v in self.box],
            "visible": self.visible,
            "blendshapes": {n: round(float(v), 4) if math.isfinite(v) else None for n, v in zip(BLENDSHAPES, self.blendshapes)},
            "blendshapes_missing": [n for n, ok in zip(BLENDSHAPES, self.blendshapes_valid) if not ok],
            "pose": {
                "yaw_deg": round(yaw, 3),
                "pitch_deg": round(pitch, 3),
                "roll_deg": round(roll, 3),
                "quaternion_wxyz": [round(float(v), 6) for v in self.pose.quaternion_wxyz],
                "translation_cm": [round(float(v), 3) for v in self.pose.translation_cm],
            },
        }
        if landmarks:
            out["landmarks"] = np.round(self.landmarks, 2).tolist()
        return out


@dataclass(frozen=True, slots=True)
class FrameResult:
    """Everything found in one frame.

    timestamp_ms: the frame's time, ms, strictly increasing within a stream.
    frame_index: 0-based index of the frame within its source.
    image_size: (width, height) px of the input frame.
    faces: every face found; empty (never None) when there is none.
    timings_ms: wall time per stage, ms.
    """

    timestamp_ms: int
    frame_index: int
    image_size: tuple[int, int]
    faces: tuple[Face, ...] = ()
    timings_ms: Mapping[str, float] = field(default_factory=dict)

    def to_dict(self, *, landmarks: bool = True) -> dict[str, Any]:
        """JSON-ready dict; the one serialisation every output format is built from."""
        return {
            "timestamp_ms": self.timestamp_ms,
            "frame": self.frame_index,
            "image_size": list(self.image_size),
            "faces": [f.to_dict(landmarks=landmarks) for f in self.faces],
            "timings_ms": {k: round(v, 3) for k, v in self.timings_ms.items()},
        }
