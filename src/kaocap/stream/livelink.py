"""Unreal Live Link Face sender: the iPhone app's UDP packets (port 11111), and a decoder.

Packet layout (version 6), big-endian unless noted, as Unreal's ``AppleARKitFaceSupport``
(``FAppleARKitLiveLinkRemotePublisher``, ``FNboSerializeToBuffer``) writes and reads it::

    uint8    packet version = 6
    int32    device id length, then the device id (UTF-8, a 36-character UUID)
    int32    subject name length, then the subject name (UTF-8)
    int32    frame number          \\
    float32  sub-frame (0..1)       |  FQualifiedFrameTime
    int32    frame rate numerator   |
    int32    frame rate denominator /
    uint8    value count = 61
    float32  x 61: the 52 ARKit shapes, then HeadYaw HeadPitch HeadRoll, LeftEyeYaw
             LeftEyePitch LeftEyeRoll, RightEyeYaw RightEyePitch RightEyeRoll (radians)

Notes where the published descriptions and the app disagree (we follow the app):

* Several descriptions start with "uint32 version 6, little-endian, then a '$'-prefixed device
  id". That is the same bytes read differently: the uint8 version 6 is followed by the
  big-endian length 36 of the UUID, whose low byte is 0x24, i.e. ``'$'``. Only a 36-byte device
  id keeps both readings valid, so the device id is always a 36-character UUID here.
* The 61 slots follow Unreal's ``EARFaceBlendShape`` enum, which Unreal uses to name the curves
  it receives. It lists ``JawLeft, JawRight`` and ``MouthLeft, MouthRight``, whereas the app's
  CSV (and :data:`kaocap.BLENDSHAPES`) lists ``JawRight, JawLeft`` and ``MouthRight,
  MouthLeft``. Values are placed by name (:data:`LIVELINK_UDP_NAMES`), so Unreal's ``JawLeft``
  curve gets ARKit's ``jawLeft``.
* Unreal ignores packets shorter than its minimum (about 266 bytes; ours are 306 or more) and
  packets whose version is not its own.

Angles use Live Link's signs and kaocap's eye estimate (:mod:`kaocap.stream.csv_livelink`).
Frames without a face send nothing, as the app does when it loses the face.

>>> with LiveLinkSender("192.168.1.20", subject="kaocap") as llf:   # doctest: +SKIP
...     llf.send(result)
"""

from __future__ import annotations

import math
import struct
import uuid
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from kaocap.errors import ConfigError, InputError
from kaocap.stream.csv_livelink import LIVELINK_ANGLES, LIVELINK_BLENDSHAPES, LIVELINK_NAMES
from kaocap.stream.schema import sender_frame
from kaocap.stream.senders import UdpSender, UdpTarget
from kaocap.types import FrameResult

DEFAULT_PORT = 11111
PACKET_VERSION = 6
VALUE_COUNT = 61
DEVICE_ID_LENGTH = 36
_SWAPS = {"JawRight": "JawLeft", "JawLeft": "JawRight", "MouthRight": "MouthLeft",
          "MouthLeft": "MouthRight"}  # fmt: skip
#: The 61 value slots of a packet: Unreal's ``EARFaceBlendShape`` enum order.
LIVELINK_UDP_NAMES: tuple[str, ...] = (
    tuple(_SWAPS.get(n, n) for n in LIVELINK_BLENDSHAPES) + LIVELINK_ANGLES
)
#: For each packet slot, its index in :data:`LIVELINK_NAMES` (kaocap/CSV order).
_TO_CSV = np.array([LIVELINK_NAMES.index(n) for n in LIVELINK_UDP_NAMES])
_TIME = struct.Struct(">ifii")
_VALUES = struct.Struct(f">B{VALUE_COUNT}f")


@dataclass(frozen=True, slots=True)
class LiveLinkPacket:
    """One decoded packet.

    values: (61,) float32 in :data:`LIVELINK_NAMES` order (kaocap/CSV order, not slot order).
    frame_number, subframe, fps_numerator, fps_denominator: the frame time; the time in s is
        ``(frame_number + subframe) * fps_denominator / fps_numerator``.
    """

    version: int
    device_id: str
    subject_name: str
    frame_number: int
    subframe: float
    fps_numerator: int
    fps_denominator: int
    values: NDArray[np.float32]

    def by_name(self) -> dict[str, float]:
        """Value name (PascalCase, :data:`LIVELINK_NAMES`) -> value."""
        return {n: float(v) for n, v in zip(LIVELINK_NAMES, self.values)}


def _string(text: str) -> bytes:
    data = text.encode("utf-8")
    return struct.pack(">i", len(data)) + data


def encode_livelink_packet(
    values: Sequence[float] | NDArray[np.floating],
    *,
    device_id: str,
    subject_name: str,
    frame_number: int,
    subframe: float = 0.0,
    fps: tuple[int, int] = (60, 1),
) -> bytes:
    """A Live Link Face packet (module docstring) of (61,) ``values`` given in
    :data:`LIVELINK_NAMES` order (kaocap/CSV order; reordered to the slots here)."""
    v = np.asarray(values, np.float32)
    if v.shape != (VALUE_COUNT,):
        raise ValueError(f"values must have shape ({VALUE_COUNT},), got {v.shape}")
    if len(device_id.encode("utf-8")) != DEVICE_ID_LENGTH:
        raise ValueError(
            f"device_id must be a {DEVICE_ID_LENGTH}-character UUID, got {device_id!r}"
        )
    head = bytes([PACKET_VERSION]) + _string(device_id) + _string(subject_name)
    time = _TIME.pack(int(frame_number), float(subframe), int(fps[0]), int(fps[1]))
    return head + time + _VALUES.pack(VALUE_COUNT, *v[_TO_CSV].tolist())


def decode_livelink_packet(data: bytes) -> LiveLinkPacket:
    """Parse a Live Link Face packet (written from the layout in the module docstring);
    raises :class:`~kaocap.errors.InputError` on a truncated or foreign packet."""
    try:
        version = data[0]
        at, device_id = _read_string(data, 1)
        at, subject = _read_string(data, at)
        frame, sub, num, den = _TIME.unpack_from(data, at)
        count, *values = _VALUES.unpack_from(data, at + _TIME.size)
    except (IndexError, struct.error, UnicodeDecodeError) as err:
        raise InputError(f"not a Live Link Face packet ({err})") from None
    if version != PACKET_VERSION or count != VALUE_COUNT:
        raise InputError(
            f"Live Link Face packet version {version} / count {count}, expected 6 / 61"
        )
    expected = at + _TIME.size + _VALUES.size
    if len(data) != expected:
        raise InputError(f"Live Link Face packet has {len(data)} bytes, expected {expected}")
    csv_order = np.empty(VALUE_COUNT, np.float32)
    csv_order[_TO_CSV] = values
    return LiveLinkPacket(version, device_id, subject, frame, sub, num, den, csv_order)


def _read_string(data: bytes, at: int) -> tuple[int, str]:
    (length,) = struct.unpack_from(">i", data, at)
    if not 0 <= length <= len(data) - at - 4:
        raise IndexError(f"string length {length} out of range")
    return at + 4 + length, data[at + 4 : at + 4 + length].decode("utf-8")


class LiveLinkSender(UdpSender):
    """Send results as Live Link Face packets over UDP (non-blocking).

    subject: the Live Link subject name Unreal shows. device_id: a 36-character UUID
    (random by default). fps: the frame rate of the frame time, whose frame number is
    ``FrameResult.timestamp_ms`` (plus ``start_ms``) at ``fps``.
    """

    def __init__(
        self,
        host: str = "127.0.0.1",
        port: int = DEFAULT_PORT,
        *,
        subject: str = "kaocap",
        device_id: str | None = None,
        fps: int = 60,
        start_ms: int = 0,
    ) -> None:
        self.device_id = device_id or str(uuid.uuid4()).upper()
        if len(self.device_id) != DEVICE_ID_LENGTH:
            raise ConfigError(f"livelink device_id must be a 36-character UUID, got {device_id!r}")
        if fps <= 0:
            raise ConfigError(f"livelink fps must be > 0, got {fps}")
        self.name = f"livelink:{host}:{port}"
        self.subject, self.fps, self.start_ms = subject, int(fps), int(start_ms)
        self._udp = UdpTarget(host, port, name=self.name)

    def send(self, result: FrameResult) -> None:
        """Send one packet for the first face of ``result``; nothing without a face."""
        frame = sender_frame(result)
        if not frame.face_found:
            return
        frames = (result.timestamp_ms + self.start_ms) * self.fps / 1000.0
        whole = math.floor(frames)
        packet = encode_livelink_packet(
            frame.livelink_values, device_id=self.device_id, subject_name=self.subject,
            frame_number=whole, subframe=frames - whole, fps=(self.fps, 1),
        )  # fmt: skip
        self._udp.send(packet)

