"""Live Link Face UDP: packets of the real iPhone recording survive encode -> UDP -> decode."""

from __future__ import annotations

import dataclasses
import struct

import numpy as np
import pytest

from kaocap.constants import BLENDSHAPES
from kaocap.errors import ConfigError, InputError
from kaocap.stream.csv_livelink import LIVELINK_NAMES, head_pose_from_livelink, read_livelink_csv
from kaocap.stream.livelink import (
    LIVELINK_UDP_NAMES,
    LiveLinkSender,
    decode_livelink_packet,
    encode_livelink_packet,
)
from kaocap.stream.schema import sender_frame
from kaocap.types import FrameResult
from tests.conftest import shared
from tests.stream._net import udp_receiver

RECORDING = (
    "expression_priors", "jmtechart", "Blender", "Blender Example Files",
    "MySlate_3_Jason_Millers_iPhone.csv",
)  # fmt: skip
DEVICE = "0F6C2F0E-0B8A-4E0E-9D43-6B8B1C2A3D4E"
N_SHAPES = len(BLENDSHAPES)


@pytest.fixture(scope="module")
def recording() -> np.ndarray:
    """(328, 61) values of the real take, in LIVELINK_NAMES order."""
    _, values, names = read_livelink_csv(shared(*RECORDING))
    assert names == LIVELINK_NAMES
    return values


def test_every_recorded_value_survives_a_packet(recording: np.ndarray) -> None:
    for i, row in enumerate(recording):
        packet = encode_livelink_packet(
            row, device_id=DEVICE, subject_name="iPhone", frame_number=115_747 + i, subframe=0.867
        )
        decoded = decode_livelink_packet(packet)
        np.testing.assert_array_equal(decoded.values, row)  # float32 in, float32 out: exact
        assert (decoded.version, decoded.device_id, decoded.subject_name) == (6, DEVICE, "iPhone")
        assert decoded.frame_number == 115_747 + i and decoded.subframe == pytest.approx(0.867)
        assert (decoded.fps_numerator, decoded.fps_denominator) == (60, 1)


def test_packet_layout_follows_the_app(recording: np.ndarray) -> None:
    row = recording[100]
    packet = encode_livelink_packet(row, device_id=DEVICE, subject_name="iPhone", frame_number=7)
    # uint8 version 6 then a big-endian length 36: the bytes some read as uint32 LE 6 + '$'.
    assert packet[:5] == b"\x06\x00\x00\x00\x24" and struct.unpack_from("<I", packet)[0] == 6
    assert packet[5:41] == DEVICE.encode()
    assert struct.unpack_from(">i", packet, 41)[0] == 6 and packet[45:51] == b"iPhone"
    assert struct.unpack_from(">ifii", packet, 51)[::2] == (7, 60)
    assert packet[67] == 61 and len(packet) == 68 + 61 * 4
    slots = struct.unpack_from(">61f", packet, 68)
    # Slots follow Unreal's EARFaceBlendShape: JawLeft before JawRight, unlike the CSV.
    assert LIVELINK_UDP_NAMES[15:17] == ("JawLeft", "JawRight")
    assert LIVELINK_UDP_NAMES[21:23] == ("MouthLeft", "MouthRight")
    for k, name in enumerate(LIVELINK_UDP_NAMES):
        assert slots[k] == pytest.approx(row[LIVELINK_NAMES.index(name)], abs=0), name


def test_sender_streams_the_recording_over_udp(recording: np.ndarray, make_face) -> None:
    results = []
    for i, row in enumerate(recording[:60]):
        face = make_face(row[:N_SHAPES], seed=i)
        face = dataclasses.replace(
            face, pose=head_pose_from_livelink(*row[N_SHAPES : N_SHAPES + 3])
        )
        results.append(FrameResult(round(i * 1000 / 60), i, (256, 256), (face,)))
    with udp_receiver() as rx:
        port = rx.getsockname()[1]
        with LiveLinkSender("127.0.0.1", port, subject="kaocap", device_id=DEVICE) as llf:
            llf.send(FrameResult(0, 0, (256, 256)))  # no face: nothing sent
            for result in results:
                llf.send(result)
            packets = [decode_livelink_packet(rx.recv(2048)) for _ in results]
    for result, row, packet in zip(results, recording, packets):
        np.testing.assert_array_equal(packet.values, sender_frame(result).livelink_values)
        np.testing.assert_array_equal(packet.values[:N_SHAPES], row[:N_SHAPES])  # shapes exact
        np.testing.assert_allclose(
            packet.values[N_SHAPES : N_SHAPES + 3], row[N_SHAPES : N_SHAPES + 3], atol=1e-5
        )
        frames = packet.frame_number + packet.subframe
        assert frames == pytest.approx(result.timestamp_ms * 60 / 1000, abs=1e-3)
        assert packet.subject_name == "kaocap" and packet.device_id == DEVICE


def test_bad_packets_and_options() -> None:
    good = encode_livelink_packet(np.zeros(61), device_id=DEVICE, subject_name="s", frame_number=0)
    for bad in (b"", good[:40], good[:-1], good + b"\x00", b"\x05" + good[1:]):
        with pytest.raises(InputError):
            decode_livelink_packet(bad)
    with pytest.raises(ValueError, match="36-character"):
        encode_livelink_packet(np.zeros(61), device_id="short", subject_name="s", frame_number=0)
    with pytest.raises(ConfigError):
        LiveLinkSender(device_id="not-a-uuid")
