"""VRChat OSC sender: avatar parameters as OSC floats over UDP (VRChat listens on port 9000).

Each parameter is one OSC message ``/avatar/parameters/<Name> f value`` (one datagram each; no
bundles). A parameter is sent when it changed by more than ``min_change`` since it was last sent,
and every parameter is re-sent once a second. Frames without a face send nothing.

The default mapping (:data:`DEFAULT_MAPPING`) writes VRCFaceTracking's Unified Expressions v2
names under ``FT/v2/`` (what face-tracking avatars listen to), for the subset derivable from ARKit
shapes; Left/Right are the subject's own sides:

* ``EyeLidLeft/Right``: 0 closed, 0.75 relaxed, 1 wide: ``0.75 (1 - eyeBlink) + 0.25 eyeWide``.
* ``EyeLeftX``, ``EyeRightX``, ``EyeY``: normalised gaze -1..1 (sine of the eye angle; x > 0 looks
  to the subject's right, y > 0 up; :func:`kaocap.stream.schema.gaze_normalized`).
* ``EyeSquint*``, ``JawOpen``, ``MouthClosed`` (mouthClose), ``LipFunnel`` (mouthFunnel),
  ``LipPucker`` (mouthPucker), ``MouthSmile*``, ``MouthFrown*``, ``MouthStretch*``,
  ``MouthDimple*``, ``MouthPress*``, ``MouthUpperUp*``, ``MouthLowerDown*``, ``MouthRaiserUpper``
  (mouthShrugUpper), ``MouthRaiserLower`` (mouthShrugLower), ``CheekPuffSuckLeft/Right``
  (cheekPuff, puff only), ``CheekSquint*``, ``NoseSneer*``, ``BrowDown*``, ``BrowInnerUp``,
  ``BrowOuterUp*``, ``TongueOut``: the ARKit shape of the same meaning, 0..1.
* ``JawX``: jawRight - jawLeft, -1..1 (> 0 towards the subject's right).
* ``HeadYaw``, ``HeadPitch``, ``HeadRoll`` (no prefix; not a VRCFaceTracking name): kaocap's head
  angles (:mod:`kaocap.types`) / 90 degrees, clipped to -1..1.

``mapping=`` replaces it: parameter name -> an ARKit shape name (camelCase) or a function of a
:class:`~kaocap.stream.schema.SenderFrame` returning a float.

>>> VRChatSender(mapping={"MouthOpen": "jawOpen", "Smile": lambda f: f.blendshapes["mouthSmileLeft"]})   # doctest: +SKIP
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from types import MappingProxyType

from kaocap.constants import BLENDSHAPES
from kaocap.errors import ConfigError
from kaocap.stream.schema import SenderFrame, gaze_normalized, sender_frame
from kaocap.stream.senders import UdpSender, UdpTarget, require
from kaocap.stream.vmc import osc_message
from kaocap.types import FrameResult

DEFAULT_PORT = 9000
PREFIX = "/avatar/parameters/"
REFRESH_S = 1.0
Source = str | Callable[[SenderFrame], float]


def _shape(name: str) -> Callable[[SenderFrame], float]:
    return lambda f: f.blendshapes[name]


def _clip(v: float) -> float:
    return max(-1.0, min(1.0, v))


def _unified() -> dict[str, Source]:
    m: dict[str, Source] = {}
    for side in ("Left", "Right"):
        m[f"EyeLid{side}"] = lambda f, s=side: (
            0.75 * (1 - f.blendshapes[f"eyeBlink{s}"]) + 0.25 * f.blendshapes[f"eyeWide{s}"]
        )
        for ue, arkit in (
            ("EyeSquint", "eyeSquint"), ("MouthSmile", "mouthSmile"), ("MouthFrown", "mouthFrown"),
            ("MouthStretch", "mouthStretch"), ("MouthDimple", "mouthDimple"),
            ("MouthPress", "mouthPress"), ("MouthUpperUp", "mouthUpperUp"),
            ("MouthLowerDown", "mouthLowerDown"), ("CheekSquint", "cheekSquint"),
            ("NoseSneer", "noseSneer"), ("BrowDown", "browDown"), ("BrowOuterUp", "browOuterUp"),
        ):  # fmt: skip
            m[f"{ue}{side}"] = f"{arkit}{side}"
        m[f"CheekPuffSuck{side}"] = "cheekPuff"
    m["EyeLeftX"] = lambda f: gaze_normalized(f)[0]
    m["EyeRightX"] = lambda f: gaze_normalized(f)[2]
    m["EyeY"] = lambda f: (gaze_normalized(f)[1] + gaze_normalized(f)[3]) / 2
    m["JawX"] = lambda f: f.blendshapes["jawRight"] - f.blendshapes["jawLeft"]
    for ue, arkit in (
        ("JawOpen", "jawOpen"), ("MouthClosed", "mouthClose"), ("LipFunnel", "mouthFunnel"),
        ("LipPucker", "mouthPucker"), ("MouthRaiserUpper", "mouthShrugUpper"),
        ("MouthRaiserLower", "mouthShrugLower"), ("BrowInnerUp", "browInnerUp"),
        ("TongueOut", "tongueOut"),
    ):  # fmt: skip
        m[ue] = arkit
    return {f"FT/v2/{k}": v for k, v in m.items()}


#: Parameter name (after ``/avatar/parameters/``) -> source (module docstring).
DEFAULT_MAPPING: Mapping[str, Source] = MappingProxyType({
    **_unified(),
    "HeadYaw": lambda f: _clip(f.head_euler_deg[0] / 90.0),
    "HeadPitch": lambda f: _clip(f.head_euler_deg[1] / 90.0),
    "HeadRoll": lambda f: _clip(f.head_euler_deg[2] / 90.0),
})  # fmt: skip


def _resolve(mapping: Mapping[str, Source]) -> dict[str, Callable[[SenderFrame], float]]:
    out: dict[str, Callable[[SenderFrame], float]] = {}
    for name, source in mapping.items():
        if isinstance(source, str):
            if source not in BLENDSHAPES:
                raise ConfigError(
                    f"vrchat mapping {name!r}: {source!r} is not an ARKit blendshape name"
                )
            out[name] = _shape(source)
        elif callable(source):
            out[name] = source
        else:
            raise ConfigError(f"vrchat mapping {name!r}: expected a blendshape name or a function")
    return out


def vrchat_parameters(
    frame: SenderFrame, mapping: Mapping[str, Source] = DEFAULT_MAPPING
) -> dict[str, float]:
    """Parameter name -> value for one frame with a face."""
    return {name: float(fn(frame)) for name, fn in _resolve(mapping).items()}


class VRChatSender(UdpSender):
    """Send results as VRChat avatar parameters over OSC/UDP (non-blocking; module docstring)."""

    def __init__(
        self,
        host: str = "127.0.0.1",
        port: int = DEFAULT_PORT,
        *,
        mapping: Mapping[str, Source] | None = None,
        min_change: float = 0.002,
    ) -> None:
        require("pythonosc", "python-osc", "vrchat")
        self.name = f"vrchat:{host}:{port}"
        self.min_change = min_change
        self._mapping = _resolve(DEFAULT_MAPPING if mapping is None else mapping)
        self._last: dict[str, float] = {}
        self._refresh_at = 0.0
        self._udp = UdpTarget(host, port, name=self.name)

    def send(self, result: FrameResult) -> None:
        """Send the changed parameters of the first face of ``result`` (all, once a second)."""
        frame = sender_frame(result)
        if not frame.face_found:
            return
        now = time.monotonic()
        refresh = now >= self._refresh_at
        if refresh:
            self._refresh_at = now + REFRESH_S
        for name, fn in self._mapping.items():
            value = float(fn(frame))
            if refresh or abs(value - self._last.get(name, float("inf"))) > self.min_change:
                self._last[name] = value
                self._udp.send(osc_message(PREFIX + name, ("f", value)).dgram)  # type: ignore[attr-defined]

