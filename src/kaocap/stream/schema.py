"""The one place that turns a :class:`~kaocap.types.FrameResult` into what live senders encode.

Every live sender (``vmc``, ``vtube_studio``, ``livelink``, ``ifacialmocap``, ``vrchat``,
``openseeface``) calls :func:`sender_frame` and only does wire encoding with the
:class:`SenderFrame` it gets; the JSON WebSocket server sends ``FrameResult.to_dict()`` itself.
Only the first face of a frame is sent (avatar apps drive one avatar).

Frames and signs
----------------
* kaocap (:mod:`kaocap.types`): camera frame right-handed, ``x`` image right, ``y`` up, ``z``
  towards the viewer; ``yaw > 0`` turns the face to the subject's own left, ``pitch > 0`` tilts
  the chin down, ``roll > 0`` tilts the top of the head to the image left.
* Live Link Face (:mod:`kaocap.stream.csv_livelink`): radians, ``HeadYaw = -yaw``,
  ``HeadPitch = +pitch``, ``HeadRoll = -roll``; eye yaw ``> 0`` looks to the subject's right,
  eye pitch ``> 0`` looks down (eye angles are estimated from the ``eyeLook*`` shapes).
* Unity (VMC): left-handed, ``x`` = the avatar's right, ``y`` up, ``z`` = the avatar's forward.
  The avatar faces the camera and is **not** mirrored (the subject's left eye drives the
  avatar's left eye). A kaocap vector ``v`` (camera or face-model frame) is ``S v`` in Unity with
  ``S = diag(-1, 1, 1)``; a rotation ``R`` is ``S R S``, i.e. the quaternion ``(w, x, y, z)``
  becomes Unity's ``(x, -y, -z, w)``. Positions are metres.

>>> frame = sender_frame(result)              # doctest: +SKIP
>>> frame.face_found, frame.blendshapes["jawOpen"], frame.head_euler_deg   # doctest: +SKIP
(True, 0.31, (12.0, -3.5, 1.2))
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType

import numpy as np
from numpy.typing import NDArray

from kaocap.constants import BLENDSHAPES
from kaocap.stream.csv_livelink import (
    LIVELINK_NAMES,
    eye_angles_rad,
    face_to_livelink,
    head_angles_rad,
)
from kaocap.types import Face, FrameResult, euler_to_matrix, matrix_to_quaternion

#: VRM 0.x blendshape presets derived from ARKit shapes: each preset is the mean of its sources
#: (0..1). A/I/U/E/O are mouth-shape approximations of the vowels, not a phoneme classifier:
#: A = jaw open, I = lips stretched, U = pucker, E = lower lip down, O = funnel. Joy = smile,
#: Angry = brows down, Sorrow = mouth corners down, Fun = cheeks raised. Blink_L is the
#: subject's (and the avatar's) left eye.
VRM_PRESET_SOURCES: Mapping[str, tuple[str, ...]] = MappingProxyType({
    "Blink_L": ("eyeBlinkLeft",),
    "Blink_R": ("eyeBlinkRight",),
    "A": ("jawOpen",),
    "I": ("mouthStretchLeft", "mouthStretchRight"),
    "U": ("mouthPucker",),
    "E": ("mouthLowerDownLeft", "mouthLowerDownRight"),
    "O": ("mouthFunnel",),
    "Joy": ("mouthSmileLeft", "mouthSmileRight"),
    "Angry": ("browDownLeft", "browDownRight"),
    "Sorrow": ("mouthFrownLeft", "mouthFrownRight"),
    "Fun": ("cheekSquintLeft", "cheekSquintRight"),
})  # fmt: skip

_ZERO_SHAPES: Mapping[str, float] = MappingProxyType(dict.fromkeys(BLENDSHAPES, 0.0))
_S = np.diag([-1.0, 1.0, 1.0])  # kaocap <-> Unity axes (module docstring)


@dataclass(frozen=True, slots=True)
class SenderFrame:
    """What every live sender encodes, for the first face of one frame.

    timestamp_ms: the frame's time, ms (``FrameResult.timestamp_ms``).
    face_found: False when the frame has no face; the other fields are then neutral (zero
        shapes, identity rotation, zero translation) and ``face`` is None.
    blendshapes: the 52 ARKit names (camelCase, :data:`kaocap.BLENDSHAPES`) -> 0..1.
    head_euler_deg: (yaw, pitch, roll) degrees, kaocap signs (module docstring).
    head_quaternion_wxyz: (4,) unit quaternion of the head rotation, camera frame, ``w >= 0``.
    head_translation_cm: (3,) the face origin in the camera frame, cm (``z < 0`` in front).
    head_livelink_rad: (HeadYaw, HeadPitch, HeadRoll) radians, Live Link signs.
    eyes_livelink_rad: (6,) radians, Live Link signs: left yaw, pitch, roll, right yaw, pitch,
        roll (roll is always 0).
    face: the :class:`~kaocap.types.Face` (landmarks, box, score), None without a face.
    """

    timestamp_ms: int
    face_found: bool
    blendshapes: Mapping[str, float] = field(default_factory=lambda: _ZERO_SHAPES)
    head_euler_deg: tuple[float, float, float] = (0.0, 0.0, 0.0)
    head_quaternion_wxyz: tuple[float, float, float, float] = (1.0, 0.0, 0.0, 0.0)
    head_translation_cm: tuple[float, float, float] = (0.0, 0.0, 0.0)
    head_livelink_rad: tuple[float, float, float] = (0.0, 0.0, 0.0)
    eyes_livelink_rad: tuple[float, ...] = (0.0,) * 6
    face: Face | None = None

    @property
    def livelink_values(self) -> NDArray[np.float32]:
        """(61,) float32 in :data:`~kaocap.stream.csv_livelink.LIVELINK_NAMES` order: the 52
        shapes, head and eye angles (radians, Live Link signs); zeros without a face."""
        if self.face is None:
            return np.zeros(len(LIVELINK_NAMES), np.float32)
        return face_to_livelink(self.face)


_last: tuple[FrameResult | None, SenderFrame | None] = (None, None)


def sender_frame(result: FrameResult) -> SenderFrame:
    """The :class:`SenderFrame` of ``result`` (its first face); cached for the latest result so
    that several senders fed the same result convert it once."""
    global _last
    cached_result, cached = _last
    if cached_result is result and cached is not None:
        return cached
    face = result.faces[0] if result.faces else None
    # A head turned away has a pose but no face: every protocol's own "face lost" (Face.visible).
    frame = face_frame(face, result.timestamp_ms) if face is not None and face.visible else None
    frame = frame or SenderFrame(result.timestamp_ms, False)
    _last = (result, frame)
    return frame


def face_frame(face: Face, timestamp_ms: int) -> SenderFrame:
    """The :class:`SenderFrame` of one face."""
    shapes = {name: float(v) for name, v in zip(BLENDSHAPES, face.blendshapes)}
    q = face.pose.quaternion_wxyz
    return SenderFrame(
        timestamp_ms=int(timestamp_ms),
        face_found=True,
        blendshapes=MappingProxyType(shapes),
        head_euler_deg=tuple(float(a) for a in face.pose.euler_deg),  # type: ignore[arg-type]
        head_quaternion_wxyz=(float(q[0]), float(q[1]), float(q[2]), float(q[3])),
        head_translation_cm=tuple(float(v) for v in face.pose.translation_cm),  # type: ignore[arg-type]
        head_livelink_rad=head_angles_rad(face.pose),
        eyes_livelink_rad=tuple(float(a) for a in eye_angles_rad(face.blendshapes)),
        face=face,
    )


def pascal_case(name: str) -> str:
    """ARKit camelCase -> PascalCase (``eyeBlinkLeft`` -> ``EyeBlinkLeft``), as Live Link Face,
    perfect-sync avatars and VTube Studio name the shapes."""
    return name[:1].upper() + name[1:]


def vrm_presets(blendshapes: Mapping[str, float]) -> dict[str, float]:
    """VRM 0.x preset name -> 0..1, from the ARKit shapes (:data:`VRM_PRESET_SOURCES`)."""
    return {
        preset: sum(blendshapes[s] for s in sources) / len(sources)
        for preset, sources in VRM_PRESET_SOURCES.items()
    }


def unity_head_rotation_xyzw(frame: SenderFrame) -> tuple[float, float, float, float]:
    """The head rotation as a Unity quaternion ``(x, y, z, w)`` (left-handed, avatar facing the
    camera, not mirrored): kaocap's ``(w, x, y, z)`` -> ``(x, -y, -z, w)``."""
    w, x, y, z = frame.head_quaternion_wxyz
    return (x, -y, -z, w)


def unity_position_m(
    translation_cm: tuple[float, float, float] | NDArray[np.floating],
) -> tuple[float, float, float]:
    """A kaocap camera-frame position in cm as a Unity position in metres (``S t / 100``)."""
    p = _S @ np.asarray(translation_cm, np.float64) / 100.0
    return (float(p[0]), float(p[1]), float(p[2]))


def unity_eye_rotations_xyzw(
    frame: SenderFrame,
) -> tuple[tuple[float, float, float, float], tuple[float, float, float, float]]:
    """(left, right) eye bone rotations as Unity quaternions ``(x, y, z, w)``.

    Unity's ``Quaternion.Euler(pitch, yaw, 0)`` with the Live Link eye angles in degrees: a
    positive Unity yaw turns the gaze to the avatar's (= the subject's) right, a positive pitch
    looks down, the same signs as Live Link's eye angles.
    """
    e = frame.eyes_livelink_rad
    return _unity_euler_xyzw(e[0], e[1]), _unity_euler_xyzw(e[3], e[4])


def _unity_euler_xyzw(yaw_rad: float, pitch_rad: float) -> tuple[float, float, float, float]:
    # Unity applies Z, then X, then Y: R = Ry(yaw) Rx(pitch) Rz(0), kaocap's euler_to_matrix order.
    m = euler_to_matrix(math.degrees(yaw_rad), math.degrees(pitch_rad), 0.0)
    w, x, y, z = matrix_to_quaternion(m)
    return (float(x), float(y), float(z), float(w))


def gaze_normalized(frame: SenderFrame) -> tuple[float, float, float, float]:
    """(left x, left y, right x, right y) in -1..1, "normalised Cartesian" gaze: the sine of the
    eye yaw (``x > 0`` looks to the subject's right) and of the eye pitch (``y > 0`` looks up)."""
    e = frame.eyes_livelink_rad
    return (math.sin(e[0]), -math.sin(e[1]), math.sin(e[3]), -math.sin(e[4]))
