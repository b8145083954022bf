"""OpenSeeFace-compatible sender: the tracker's UDP packets (port 11573) that VSeeFace reads, and a
decoder.

One datagram per frame with one 1785-byte record for the first face, little-endian, in
OpenSeeFace's order (``facetracker.py`` writes it, ``Unity/OpenSee.cs`` reads it)::

    f64 time (s, time.time())   i32 face id   f32 width, height (px)
    f32 right eye open, left eye open (0..1)  u8 3D fit ok (1)   f32 fit error (0)
    f32 x4 quaternion (x, y, z, w)   f32 x3 Euler angles (deg)   f32 x3 translation
    f32 x68 confidence   f32 x68x2 landmarks (x, y px)   f32 x70x3 3D points (x, -y, -z)
    f32 x14 features: eye_l eye_r eyebrow_steepness_l eyebrow_updown_l eyebrow_quirk_l
        eyebrow_steepness_r eyebrow_updown_r eyebrow_quirk_r mouth_corner_updown_l
        mouth_corner_inout_l mouth_corner_updown_r mouth_corner_inout_r mouth_open mouth_wide

What is filled from kaocap's result:

* Pose in OpenSeeFace's frames. Its ``solvePnP`` runs on (row, column) points, so its camera
  frame is ``(down, right, forward)`` = ``P`` applied to kaocap's camera frame with
  ``P = [[0,-1,0],[1,0,0],[0,0,-1]]``; its face model has ``x`` to the subject's right
  (``M = diag(-1, 1, 1)`` from kaocap's face model). So ``R_osf = P R M``, which is
  ``Rx(180) Rz(90)`` for a frontal face (Euler about (180, 0, 90), what ``OpenSee.cs``
  subtracts). The quaternion is OpenSeeFace's: that of ``R_osf`` transposed; Euler angles are
  ``cv2.RQDecomp3x3(R_osf)``; translation is ``P t`` in OpenSeeFace model units of
  :data:`OSF_CM_PER_UNIT` cm.
* Landmarks: the 68-point layout (66 dlib points without the two inner mouth corners, then the
  right and left pupils), taken from the 478-point mesh by :data:`OSF_FROM_MESH`.
* 3D points: the same 68 points un-rotated into OpenSeeFace's face model frame (origin the nose
  tip, point 30), scaled so the outer eye corners are 0.66 units apart as in its model, plus the
  eyeball centres 68 (right) and 69 (left) placed 0.385 x the eye width behind the eye corners'
  midpoint, as OpenSeeFace does (the pupil-minus-eyeball vector is the gaze VSeeFace uses).
* Eye open = 1 - eyeBlink; features from ARKit shapes (:func:`osf_features`); confidence = the
  face score; steepness and quirk features are 0.

Frames without a face send nothing, as OpenSeeFace does.
"""

from __future__ import annotations

import struct
import time
from dataclasses import dataclass

import cv2
import numpy as np
from numpy.typing import NDArray

from kaocap.constants import LANDMARK_LEFT_EYE_OUTER, LANDMARK_RIGHT_EYE_OUTER
from kaocap.errors import InputError
from kaocap.stream.schema import SenderFrame, sender_frame
from kaocap.stream.senders import UdpSender, UdpTarget
from kaocap.types import Face, FrameResult, matrix_to_quaternion

DEFAULT_PORT = 11573
#: OpenSeeFace point -> MediaPipe mesh index. 0-16 jaw (subject's right ear to left), 17-21 right
#: brow, 22-26 left brow, 27-30 nose bridge to tip, 31-35 nostrils, 36-41 right eye, 42-47 left
#: eye (outer corner first, clockwise as seen), 48-59 outer lips from the right corner, 60-62
#: upper inner lip, 63-65 lower inner lip, 66 right pupil, 67 left pupil.
OSF_FROM_MESH: tuple[int, ...] = (
    127, 234, 93, 132, 58, 136, 150, 176, 152, 400, 379, 365, 288, 361, 323, 454, 356,
    70, 63, 105, 66, 107, 336, 296, 334, 293, 300,
    168, 197, 5, 1, 98, 97, 2, 326, 327,
    33, 160, 158, 133, 153, 144, 362, 385, 387, 263, 373, 380,
    61, 40, 37, 0, 267, 270, 291, 321, 314, 17, 84, 91,
    81, 13, 311, 402, 14, 178, 468, 473,
)  # fmt: skip
OSF_FEATURES: tuple[str, ...] = (
    "eye_l", "eye_r", "eyebrow_steepness_l", "eyebrow_updown_l", "eyebrow_quirk_l",
    "eyebrow_steepness_r", "eyebrow_updown_r", "eyebrow_quirk_r", "mouth_corner_updown_l",
    "mouth_corner_inout_l", "mouth_corner_updown_r", "mouth_corner_inout_r", "mouth_open",
    "mouth_wide",
)  # fmt: skip
#: cm per OpenSeeFace model unit: its outer eye corners are 0.66 units apart, ~9 cm on an adult.
OSF_CM_PER_UNIT = 13.6
OSF_EYE_CORNER_UNITS = 2 * 0.32981
EYEBALL_DEPTH = 0.385
_NOSE, _R_OUT, _R_IN, _L_IN, _L_OUT = 30, 36, 39, 42, 45
_P = np.array([[0.0, -1.0, 0.0], [1.0, 0.0, 0.0], [0.0, 0.0, -1.0]])
_M = np.diag([-1.0, 1.0, 1.0])
_RECORD = struct.Struct("<diffffBf4f3f3f68f136f210f14f")
PACKET_SIZE = _RECORD.size  # 1785


def osf_features(b: dict[str, float] | SenderFrame) -> dict[str, float]:
    """OpenSeeFace's 14 features from ARKit shapes (``_l`` = the subject's left).

    eye: eyeWide - eyeBlink (-1 closed, 0 open, 1 wide); eyebrow_updown: mean(browInnerUp,
    browOuterUp) - browDown (> 0 up); mouth_corner_updown: mouthSmile - mouthFrown (> 0 up);
    mouth_corner_inout: mouthStretch - mouthPucker (> 0 out); mouth_open: jawOpen; mouth_wide:
    mean(mouthStretch) - mouthPucker. Steepness and quirk are 0.
    """
    s = b.blendshapes if isinstance(b, SenderFrame) else b
    out = dict.fromkeys(OSF_FEATURES, 0.0)
    for side, name in (("l", "Left"), ("r", "Right")):
        out[f"eye_{side}"] = s[f"eyeWide{name}"] - s[f"eyeBlink{name}"]
        brow_up = (s["browInnerUp"] + s[f"browOuterUp{name}"]) / 2
        out[f"eyebrow_updown_{side}"] = brow_up - s[f"browDown{name}"]
        out[f"mouth_corner_updown_{side}"] = s[f"mouthSmile{name}"] - s[f"mouthFrown{name}"]
        out[f"mouth_corner_inout_{side}"] = s[f"mouthStretch{name}"] - s["mouthPucker"]
    out["mouth_open"] = s["jawOpen"]
    out["mouth_wide"] = (s["mouthStretchLeft"] + s["mouthStretchRight"]) / 2 - s["mouthPucker"]
    return out


def osf_pose(face: Face) -> tuple[NDArray[np.float64], NDArray[np.float64], NDArray[np.float64]]:
    """(quaternion (x, y, z, w), Euler degrees (3,), translation in model units (3,)) in
    OpenSeeFace's frames (module docstring)."""
    r_osf = _P @ face.pose.rotation.astype(np.float64) @ _M
    w, x, y, z = matrix_to_quaternion(r_osf.T)
    euler = np.array(cv2.RQDecomp3x3(r_osf)[0], np.float64)
    translation = _P @ face.pose.translation_cm.astype(np.float64) / OSF_CM_PER_UNIT
    return np.array([x, y, z, w]), euler, translation


def osf_points_3d(face: Face) -> NDArray[np.float64]:
    """(70, 3) points in OpenSeeFace's face model frame (x subject's right, y up, z out of the
    face, model units), before the ``(x, -y, -z)`` of the wire (module docstring)."""
    lm = face.landmarks.astype(np.float64) * np.array([1.0, -1.0, -1.0])  # x right, y up, z out
    model = (lm - lm[OSF_FROM_MESH[_NOSE]]) @ face.pose.rotation.astype(np.float64) @ _M
    span = np.linalg.norm(model[LANDMARK_LEFT_EYE_OUTER] - model[LANDMARK_RIGHT_EYE_OUTER])
    pts = np.zeros((70, 3))
    pts[:68] = model[list(OSF_FROM_MESH)] * (OSF_EYE_CORNER_UNITS / max(span, 1e-9))
    for k, (a, b) in ((68, (_R_OUT, _R_IN)), (69, (_L_IN, _L_OUT))):
        pts[k] = (pts[a] + pts[b]) / 2 - [0.0, 0.0, EYEBALL_DEPTH * np.linalg.norm(pts[a] - pts[b])]
    return pts


def encode_openseeface(
    frame: SenderFrame, image_size: tuple[int, int], *, time_s: float | None = None
) -> bytes:
    """One 1785-byte OpenSeeFace record (module docstring) for a frame with a face."""
    face = frame.face
    if face is None:
        raise ValueError("encode_openseeface needs a frame with a face")
    quat, euler, translation = osf_pose(face)
    s = frame.blendshapes
    points = face.landmarks[list(OSF_FROM_MESH), :2].astype(np.float64)
    pts3d = osf_points_3d(face) * np.array([1.0, -1.0, -1.0])
    return _RECORD.pack(
        time.time() if time_s is None else time_s, int(face.face_id),
        float(image_size[0]), float(image_size[1]),
        1.0 - s["eyeBlinkRight"], 1.0 - s["eyeBlinkLeft"], 1, 0.0,
        *quat, *euler, *translation, *([float(face.score)] * 68),
        *points.ravel(), *pts3d.ravel(), *osf_features(s).values(),
    )  # fmt: skip


@dataclass(frozen=True, slots=True)
class OpenSeeFaceRecord:
    """One decoded record, fields as on the wire (module docstring)."""

    time_s: float
    face_id: int
    width: float
    height: float
    right_eye_open: float
    left_eye_open: float
    got_3d: bool
    fit_error: float
    quaternion_xyzw: NDArray[np.float32]
    euler_deg: NDArray[np.float32]
    translation: NDArray[np.float32]
    confidence: NDArray[np.float32]
    points_xy: NDArray[np.float32]
    points_3d: NDArray[np.float32]
    features: dict[str, float]


def decode_openseeface(data: bytes) -> list[OpenSeeFaceRecord]:
    """Parse a datagram of 1785-byte records (OpenSeeFace's documented layout)."""
    if not data or len(data) % PACKET_SIZE:
        raise InputError(
            f"OpenSeeFace packets are multiples of {PACKET_SIZE} bytes, got {len(data)}"
        )
    records = []
    for offset in range(0, len(data), PACKET_SIZE):
        v = _RECORD.unpack_from(data, offset)
        a = np.array(v[8:], np.float32)
        records.append(OpenSeeFaceRecord(
            v[0], v[1], v[2], v[3], v[4], v[5], bool(v[6]), v[7], a[0:4], a[4:7], a[7:10],
            a[10:78], a[78:214].reshape(68, 2), a[214:424].reshape(70, 3),
            dict(zip(OSF_FEATURES, a[424:438].tolist())),
        ))  # fmt: skip
    return records


class OpenSeeFaceSender(UdpSender):
    """Send results as OpenSeeFace tracker packets over UDP (non-blocking; module docstring)."""

    def __init__(self, host: str = "127.0.0.1", port: int = DEFAULT_PORT) -> None:
        self.name = f"osf:{host}:{port}"
        self._udp = UdpTarget(host, port, name=self.name)

    def send(self, result: FrameResult) -> None:
        """Send one record for the first face of ``result``; nothing without a face."""
        frame = sender_frame(result)
        if frame.face_found:
            self._udp.send(encode_openseeface(frame, result.image_size))

