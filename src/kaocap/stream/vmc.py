"""VMC protocol sender: OSC bundles over UDP to VSeeFace, VNyan, Warudo, EVMC4U, ... (port 39539).

Every frame is one OSC bundle (time tag "immediately")::

    /VMC/Ext/OK        i loaded=1, i calibration state=3, i calibration mode=0, i tracking (1/0)
    /VMC/Ext/T         f time, s (FrameResult.timestamp_ms / 1000)
    /VMC/Ext/Root/Pos  s "root" f px py pz qx qy qz qw        (only with send_root=True)
    /VMC/Ext/Bone/Pos  s "Head" f px py pz qx qy qz qw
    /VMC/Ext/Bone/Pos  s "LeftEye" ... / s "RightEye" ...
    /VMC/Ext/Blend/Val s name f value                          (one per shape)
    /VMC/Ext/Blend/Apply

Without a face only ``OK`` (tracking 0) and ``T`` are sent, so the avatar holds its last pose.

* Blendshape names (``blendshapes=``): ``"arkit"`` sends the 52 ARKit shapes with PascalCase
  names (``EyeBlinkLeft``), the "perfect sync" names avatars carry; ``"vrm"`` sends the VRM 0.x
  presets ``Blink_L Blink_R A I U E O Joy Angry Sorrow Fun`` derived from them
  (:data:`kaocap.stream.schema.VRM_PRESET_SOURCES`); ``"both"`` sends both.
* Rotations are Unity's: left-handed, ``x`` the avatar's right, ``y`` up, ``z`` its forward,
  quaternions ``(x, y, z, w)``. kaocap's camera-frame head rotation ``R`` becomes ``S R S`` with
  ``S = diag(-1, 1, 1)`` (quaternion ``(w, x, y, z)`` -> ``(x, -y, -z, w)``): the avatar faces
  the camera and is not mirrored (the subject turning to their left turns the avatar to its
  left). Eye bones get ``Quaternion.Euler(pitch, yaw, 0)`` from the eye angles (yaw > 0 looks
  to the avatar's right, pitch > 0 looks down). See :mod:`kaocap.stream.schema`.
* Bone positions are local to the parent bone, metres; the head's defaults to (0, 0, 0)
  (``head_local_position_m=``), since receivers drive face bones by rotation. With
  ``send_root=True`` the head translation moves the avatar root instead, in metres relative to
  the first frame with a face (``S t / 100``).

>>> with VmcSender("127.0.0.1", 39539, blendshapes="vrm") as vmc:   # doctest: +SKIP
...     vmc.send(result)
"""

from __future__ import annotations

from kaocap.errors import ConfigError
from kaocap.stream.schema import (
    SenderFrame,
    pascal_case,
    sender_frame,
    unity_eye_rotations_xyzw,
    unity_head_rotation_xyzw,
    unity_position_m,
    vrm_presets,
)
from kaocap.stream.senders import UdpSender, UdpTarget, require
from kaocap.types import FrameResult

DEFAULT_PORT = 39539
BLENDSHAPE_MODES = ("arkit", "vrm", "both")
#: /VMC/Ext/OK's calibration state "calibrated" and mode "normal" (VMC protocol v2.5+).
CALIBRATED, MODE_NORMAL = 3, 0

Vec3 = tuple[float, float, float]


def osc_message(address: str, *args: tuple[str, object]) -> object:
    """A python-osc ``OscMessage`` with typed ``(type tag, value)`` arguments."""
    osc = require("pythonosc.osc_message_builder", "python-osc", "vmc")
    builder = osc.OscMessageBuilder(address=address)
    for kind, value in args:
        builder.add_arg(value, kind)
    return builder.build()


def _bone(name: str, position: Vec3, rotation_xyzw: tuple[float, ...]) -> object:
    values = [("f", float(v)) for v in (*position, *rotation_xyzw)]
    return osc_message("/VMC/Ext/Bone/Pos", ("s", name), *values)


def blend_values(frame: SenderFrame, blendshapes: str = "arkit") -> dict[str, float]:
    """Blendshape name -> 0..1 as sent in ``/VMC/Ext/Blend/Val`` for one frame."""
    values: dict[str, float] = {}
    if blendshapes in ("arkit", "both"):
        values.update({pascal_case(n): v for n, v in frame.blendshapes.items()})
    if blendshapes in ("vrm", "both"):
        values.update(vrm_presets(frame.blendshapes))
    return values


def encode_vmc(
    frame: SenderFrame,
    *,
    blendshapes: str = "arkit",
    root_position_m: Vec3 | None = None,
    head_local_position_m: Vec3 = (0.0, 0.0, 0.0),
) -> bytes:
    """One VMC OSC bundle (module docstring) as a UDP payload."""
    bundle_builder = require("pythonosc.osc_bundle_builder", "python-osc", "vmc")
    bundle = bundle_builder.OscBundleBuilder(bundle_builder.IMMEDIATELY)
    tracking = 1 if frame.face_found else 0
    bundle.add_content(
        osc_message("/VMC/Ext/OK", ("i", 1), ("i", CALIBRATED), ("i", MODE_NORMAL), ("i", tracking))
    )
    bundle.add_content(osc_message("/VMC/Ext/T", ("f", frame.timestamp_ms / 1000.0)))
    if frame.face_found:
        if root_position_m is not None:
            bundle.add_content(osc_message(
                "/VMC/Ext/Root/Pos", ("s", "root"),
                *[("f", float(v)) for v in (*root_position_m, 0.0, 0.0, 0.0, 1.0)],
            ))  # fmt: skip
        bundle.add_content(_bone("Head", head_local_position_m, unity_head_rotation_xyzw(frame)))
        left, right = unity_eye_rotations_xyzw(frame)
        bundle.add_content(_bone("LeftEye", (0.0, 0.0, 0.0), left))
        bundle.add_content(_bone("RightEye", (0.0, 0.0, 0.0), right))
        for name, value in blend_values(frame, blendshapes).items():
            bundle.add_content(osc_message("/VMC/Ext/Blend/Val", ("s", name), ("f", float(value))))
        bundle.add_content(osc_message("/VMC/Ext/Blend/Apply"))
    return bundle.build().dgram


class VmcSender(UdpSender):
    """Send results as VMC bundles over UDP (non-blocking; layout in the module docstring)."""

    def __init__(
        self,
        host: str = "127.0.0.1",
        port: int = DEFAULT_PORT,
        *,
        blendshapes: str = "arkit",
        send_root: bool = False,
        head_local_position_m: Vec3 = (0.0, 0.0, 0.0),
    ) -> None:
        if blendshapes not in BLENDSHAPE_MODES:
            raise ConfigError(
                f"vmc blendshapes must be one of {BLENDSHAPE_MODES}, got {blendshapes!r}"
            )
        require("pythonosc", "python-osc", "vmc")
        self.name = f"vmc:{host}:{port}"
        self.blendshapes = blendshapes
        self.send_root = send_root
        self.head_local_position_m = head_local_position_m
        self._root_reference_cm: Vec3 | None = None
        self._udp = UdpTarget(host, port, name=self.name)

    def send(self, result: FrameResult) -> None:
        """Send one bundle for the first face of ``result`` (OK and T only without a face)."""
        frame = sender_frame(result)
        root = None
        if self.send_root and frame.face_found:
            if self._root_reference_cm is None:
                self._root_reference_cm = frame.head_translation_cm
            offset = [a - b for a, b in zip(frame.head_translation_cm, self._root_reference_cm)]
            root = unity_position_m(offset)
        payload = encode_vmc(
            frame,
            blendshapes=self.blendshapes,
            root_position_m=root,
            head_local_position_m=self.head_local_position_m,
        )
        self._udp.send(payload)

