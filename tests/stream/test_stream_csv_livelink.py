"""Live Link Face CSV: layout and round trip against a real iPhone recording."""

from __future__ import annotations

import dataclasses
import math
import re
from pathlib import Path

import numpy as np
import pytest

from kaocap.constants import BLENDSHAPES
from kaocap.errors import InputError, OutputError
from kaocap.stream import LiveLinkCsvWriter, read_livelink_csv
from kaocap.stream.csv_livelink import (
    LIVELINK_HEADER,
    LIVELINK_NAMES,
    eye_angles_rad,
    head_angles_rad,
    head_pose_from_livelink,
    ms_from_timecode,
    timecode_from_ms,
)
from kaocap.types import FrameResult
from tests.conftest import shared

RECORDING = (
    "expression_priors", "jmtechart", "Blender", "Blender Example Files",
    "MySlate_3_Jason_Millers_iPhone.csv",
)  # fmt: skip
ROW = re.compile(r"^\d\d:\d\d:\d\d:\d\d\.\d{3},61(,-?\d+\.\d{10}){61}$")
N_SHAPES = len(BLENDSHAPES)


@pytest.fixture
def recording() -> tuple[list[str], np.ndarray, tuple[str, ...]]:
    """The real Live Link Face take: 328 frames at 60 fps."""
    return read_livelink_csv(shared(*RECORDING))


def test_header_matches_the_real_recording(recording) -> None:
    lines = shared(*RECORDING).read_text(encoding="utf-8").splitlines()
    assert lines[0] == ",".join(LIVELINK_HEADER)
    timecodes, values, names = recording
    assert names == LIVELINK_NAMES and values.shape == (328, 61) and len(timecodes) == 328
    assert all(ROW.match(line) for line in lines[1:])


def _results_from_recording(
    timecodes: list[str], values: np.ndarray, make_face
) -> list[FrameResult]:
    results = []
    for i, (timecode, row) in enumerate(zip(timecodes, values)):
        face = make_face(row[:N_SHAPES], seed=i)
        pose = head_pose_from_livelink(*row[N_SHAPES : N_SHAPES + 3])
        face = dataclasses.replace(face, pose=pose)
        results.append(FrameResult(round(ms_from_timecode(timecode, 60)), i, (256, 256), (face,)))
    return results


def test_round_trip_against_the_real_recording(tmp_path: Path, recording, make_face) -> None:
    timecodes, values, _ = recording
    path = tmp_path / "take.csv"
    with LiveLinkCsvWriter(path, fps=60) as out:
        for result in _results_from_recording(timecodes, values, make_face):
            out.write(result)
    new_timecodes, new_values, names = read_livelink_csv(path)
    assert names == LIVELINK_NAMES and new_values.shape == values.shape
    # Blendshapes and head angles come back exactly (10 decimals of a float32).
    np.testing.assert_allclose(new_values[:, : N_SHAPES + 3], values[:, : N_SHAPES + 3], atol=1e-9)
    # Timecodes agree to the 1 ms resolution of FrameResult.timestamp_ms.
    diffs = [
        abs(ms_from_timecode(a, 60) - ms_from_timecode(b, 60))
        for a, b in zip(new_timecodes, timecodes)
    ]
    assert max(diffs) <= 1.0
    # Eye angles are estimated from the eyeLook* shapes: they follow the recorded ones.
    for k, name in enumerate(LIVELINK_NAMES[N_SHAPES + 3 :], start=N_SHAPES + 3):
        if name.endswith("Roll"):
            assert not new_values[:, k].any()
            continue
        assert np.corrcoef(new_values[:, k], values[:, k])[0, 1] > 0.97, name
        if name.endswith("Pitch"):
            assert np.abs(new_values[:, k] - values[:, k]).max() < 0.01, name
    # Same text layout as the app's, line by line.
    lines = path.read_text(encoding="utf-8").splitlines()
    assert len(lines) == 329 and all(ROW.match(line) for line in lines[1:])


def test_head_angle_convention(make_face) -> None:
    # kaocap yaw > 0 (towards the subject's own left) is Live Link's negative yaw; pitch keeps its
    # sign (down > 0); roll flips with yaw (a left/right mirror).
    face = make_face(euler_deg=(20.0, 10.0, 5.0))
    yaw, pitch, roll = head_angles_rad(face.pose)
    assert (yaw, pitch, roll) == pytest.approx(
        (-math.radians(20), math.radians(10), -math.radians(5)), abs=1e-6
    )
    back = head_angles_rad(head_pose_from_livelink(0.3, -0.2, 0.1))
    assert back == pytest.approx((0.3, -0.2, 0.1), abs=1e-6)


def test_eye_angle_signs() -> None:
    shapes = np.zeros(N_SHAPES, np.float32)
    shapes[BLENDSHAPES.index("eyeLookInLeft")] = 1.0  # left eye looks to the subject's right
    shapes[BLENDSHAPES.index("eyeLookOutRight")] = 1.0  # so does the right eye
    shapes[BLENDSHAPES.index("eyeLookDownLeft")] = 0.5
    shapes[BLENDSHAPES.index("eyeLookUpRight")] = 0.5
    left_yaw, left_pitch, left_roll, right_yaw, right_pitch, right_roll = eye_angles_rad(shapes)
    assert left_yaw > 0 and right_yaw > 0 and left_yaw == pytest.approx(right_yaw)
    assert left_pitch > 0 > right_pitch  # down is positive
    assert left_roll == right_roll == 0


def test_only_the_first_face_and_no_faceless_rows(tmp_path: Path, make_result) -> None:
    results = [make_result(0, n_faces=2), make_result(17, n_faces=0), make_result(33, n_faces=1)]
    path = tmp_path / "take.csv"
    with LiveLinkCsvWriter(path, fps=30) as out:
        for result in results:
            out.write(result)
        assert (out.rows_written, out.frames_skipped) == (2, 1)
    timecodes, values, _ = read_livelink_csv(path)
    assert timecodes == ["00:00:00:00.000", "00:00:00:00.990"]
    np.testing.assert_allclose(values[0, :N_SHAPES], results[0].faces[0].blendshapes, atol=1e-9)


def test_timecodes() -> None:
    assert timecode_from_ms(0) == "00:00:00:00.000"
    assert timecode_from_ms(1_929_130, 60) == "00:32:09:07.800"
    assert timecode_from_ms(3_600_000 + 61_999, 30) == "01:01:01:29.970"
    assert timecode_from_ms(24 * 3_600_000 + 5, 60) == "00:00:00:00.300"  # wraps at 24 h
    assert ms_from_timecode("00:32:09:07.867", 60) == pytest.approx(1_929_131.1, abs=0.05)
    with pytest.raises(ValueError):
        ms_from_timecode("12:00", 60)


def test_writer_lifecycle_and_errors(tmp_path: Path, make_result) -> None:
    out = LiveLinkCsvWriter(tmp_path / "a.csv")
    out.close()
    out.close()
    with pytest.raises(OutputError, match="closed"):
        out.write(make_result(0))
    assert read_livelink_csv(tmp_path / "a.csv")[1].shape == (0, 61)  # header only
    with pytest.raises(OutputError, match="nowhere/a.csv"):
        LiveLinkCsvWriter(tmp_path / "nowhere" / "a.csv")
    with pytest.raises(ValueError):
        LiveLinkCsvWriter(tmp_path / "b.csv", fps=0)


def test_reader_errors(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="missing.csv"):
        read_livelink_csv(tmp_path / "missing.csv")
    (tmp_path / "other.csv").write_text("a,b,c\n1,2,3\n")
    with pytest.raises(InputError, match="not a Live Link Face CSV"):
        read_livelink_csv(tmp_path / "other.csv")
    (tmp_path / "short.csv").write_text(",".join(LIVELINK_HEADER) + "\n00:00:00:00.000,61,0.5\n")
    with pytest.raises(InputError, match="line 2: expected 63 columns, got 3"):
        read_livelink_csv(tmp_path / "short.csv")
