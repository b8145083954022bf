"""iFacialMocap sender: the iOS app's UDP text frames (port 49983), read by VSeeFace, VMagicMirror,
Warudo and others, and a parser.

One datagram per frame (ASCII)::

    mouthSmile_R-4|eyeBlink_L-0|...|jawOpen-12|=head#rx,ry,rz,px,py,pz|rightEye#rx,ry,rz|leftEye#rx,ry,rz|

as documented at ifacialmocap.com/for-developer and parsed by VMagicMirror
(``iFacialMocapReceiver``: ``name-int`` pairs before the single ``=``, ``head#`` with 6 values):

* Names are ARKit's raw ``ARFaceAnchor.BlendShapeLocation`` strings: sided shapes end in ``_L``
  / ``_R`` (``eyeBlink_L``, ``browOuterUp_R``, ``mouthSmile_L``), while ``jawLeft``,
  ``jawRight``, ``mouthLeft``, ``mouthRight``, ``browInnerUp``, ``cheekPuff``, ``tongueOut``
  and the unsided mouth shapes keep their names (:func:`ifm_name`). Values are integers 0..100.
  ``version=2`` writes ``name&value`` instead (the app's ``sendDataVersion=v2`` format).
* ``head#``: Euler angles in degrees, then the position in metres. The angles are ARKit's
  face-anchor angles in kaocap's signs (:mod:`kaocap.types`): ``rx`` = pitch (> 0 chin down),
  ``ry`` = yaw (> 0 towards the subject's own left), ``rz`` = roll (> 0 top of the head to the
  image left); the position is kaocap's camera-frame translation in metres (``pz < 0`` in front
  of the camera, as in the app's example ``-0.658``).
* ``rightEye#`` / ``leftEye#``: degrees, ``rx`` = pitch (> 0 looks down), ``ry`` = yaw (> 0
  looks to the subject's left, the ARKit eye transform's sign), ``rz`` = 0; estimated from the
  ``eyeLook*`` shapes (:func:`kaocap.stream.csv_livelink.eye_angles_rad`).

Frames without a face send nothing (receivers hold the last pose).

>>> with IFacialMocapSender("127.0.0.1") as ifm:     # doctest: +SKIP
...     ifm.send(result)
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

from kaocap.constants import BLENDSHAPES
from kaocap.errors import ConfigError, InputError
from kaocap.stream.schema import SenderFrame, sender_frame
from kaocap.stream.senders import UdpSender, UdpTarget
from kaocap.types import FrameResult

DEFAULT_PORT = 49983
_UNSIDED = {"jawLeft", "jawRight", "mouthLeft", "mouthRight"}


def ifm_name(name: str) -> str:
    """ARKit camelCase -> iFacialMocap's name: ``eyeBlinkLeft`` -> ``eyeBlink_L``,
    ``jawLeft`` -> ``jawLeft`` (a direction, not a side)."""
    if name not in _UNSIDED:
        for side, suffix in (("Left", "_L"), ("Right", "_R")):
            if name.endswith(side):
                return name[: -len(side)] + suffix
    return name


#: iFacialMocap name -> ARKit camelCase name.
ARKIT_FROM_IFM: dict[str, str] = {ifm_name(n): n for n in BLENDSHAPES}


def _numbers(values: tuple[float, ...]) -> str:
    return ",".join(f"{v:.6f}".rstrip("0").rstrip(".") if v else "0" for v in values)


def encode_ifacialmocap(frame: SenderFrame, *, version: int = 1) -> str:
    """One iFacialMocap text frame (module docstring) for a frame with a face."""
    separator = "&" if version == 2 else "-"
    parts = [
        f"{ifm_name(n)}{separator}{min(100, max(0, round(v * 100)))}"
        for n, v in frame.blendshapes.items()
    ]
    yaw, pitch, roll = frame.head_euler_deg
    position = tuple(c / 100.0 for c in frame.head_translation_cm)
    e = [math.degrees(a) for a in frame.eyes_livelink_rad]
    head = _numbers((pitch, yaw, roll, *position))
    right = _numbers((e[4], -e[3], 0.0))
    left = _numbers((e[1], -e[0], 0.0))
    return "|".join(parts) + f"|=head#{head}|rightEye#{right}|leftEye#{left}|"


@dataclass(frozen=True, slots=True)
class IFacialMocapFrame:
    """A parsed frame. blendshapes: ARKit camelCase name -> 0..1. head_deg: (rx, ry, rz) degrees;
    head_position_m: (px, py, pz) m; right_eye_deg, left_eye_deg: (rx, ry, rz) degrees."""

    blendshapes: dict[str, float] = field(default_factory=dict)
    head_deg: tuple[float, ...] = ()
    head_position_m: tuple[float, ...] = ()
    right_eye_deg: tuple[float, ...] = ()
    left_eye_deg: tuple[float, ...] = ()


def decode_ifacialmocap(text: str) -> IFacialMocapFrame:
    """Parse an iFacialMocap frame (``-`` or ``&`` separators); raises InputError."""
    shapes_text, sep, pose_text = text.partition("=")
    if not sep:
        raise InputError("not an iFacialMocap frame (no '=head#' part)")
    shapes: dict[str, float] = {}
    for part in filter(None, (p.strip() for p in shapes_text.split("|"))):
        key, _, value = part.partition("&") if "&" in part else part.partition("-")
        if key not in ARKIT_FROM_IFM:
            raise InputError(f"iFacialMocap frame: unknown blendshape {key!r}")
        shapes[ARKIT_FROM_IFM[key]] = _number(value) / 100.0
    poses: dict[str, tuple[float, ...]] = {}
    for part in filter(None, (p.strip() for p in pose_text.split("|"))):
        key, _, values = part.partition("#")
        poses[key] = tuple(_number(v) for v in values.split(","))
    head = poses.get("head", ())
    if len(head) != 6:
        raise InputError(f"iFacialMocap frame: head# needs 6 numbers, got {len(head)}")
    return IFacialMocapFrame(
        shapes, head[:3], head[3:], poses.get("rightEye", ()), poses.get("leftEye", ())
    )


def _number(text: str) -> float:
    try:
        return float(text)
    except ValueError:
        raise InputError(f"iFacialMocap frame: {text!r} is not a number") from None


class IFacialMocapSender(UdpSender):
    """Send results as iFacialMocap text frames over UDP (non-blocking); ``version`` 1 (``-``,
    the default every receiver reads) or 2 (``&``)."""

    def __init__(
        self, host: str = "127.0.0.1", port: int = DEFAULT_PORT, *, version: int = 1
    ) -> None:
        if version not in (1, 2):
            raise ConfigError(f"ifacialmocap version must be 1 or 2, got {version!r}")
        self.name = f"ifm:{host}:{port}"
        self.version = version
        self._udp = UdpTarget(host, port, name=self.name)

    def send(self, result: FrameResult) -> None:
        """Send one frame for the first face of ``result``; nothing without a face."""
        frame = sender_frame(result)
        if frame.face_found:
            self._udp.send(encode_ifacialmocap(frame, version=self.version).encode("ascii"))

