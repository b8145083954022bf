"""Live Link Face takes: file names, timecodes, alignment of video frames to CSV rows, storage.

The take is built here from the real iPhone recording (a CSV, no video) and a real clip re-timed
to the CSV's timecodes: the face does not match the labels, but every stored sample must carry
exactly the CSV row of its frame's timecode.
"""

from __future__ import annotations

import fractions
import shutil

import av
import cv2
import numpy as np
import pytest

from kaocap.data import shards
from kaocap.data.real import RealParams
from kaocap.data.takes import find_takes, import_takes, read_take_labels, timecode_frames
from kaocap.stream.csv_livelink import (
    LIVELINK_BLENDSHAPES,
    head_pose_from_livelink,
    read_livelink_csv,
)
from tests.conftest import shared

CSV_NAME = "MySlate_3_Jason_Millers_iPhone.csv"
#: A second take: the same recording with head angles written in (the original has none).
HEAD_NAME = "MySlate_4_Jason_Millers_iPhone.csv"
FPS = 60
#: CSV rows that get a video frame: a start offset and a gap, so order alone cannot align them.
ROWS = [*range(10, 50), *range(60, 90), *range(210, 230)]


def _timecode(frames: float) -> str:
    s, f = divmod(int(frames), FPS)
    return f"{s // 3600:02d}:{s // 60 % 60:02d}:{s % 60:02d}:{f:02d}"


def _with_head(src, dst):
    """The CSV with HeadYaw/Pitch/Roll (rad) set to slow sines, other columns untouched."""
    lines = src.read_text().splitlines()
    header = lines[0].split(",")
    cols = [header.index(n) for n in ("HeadYaw", "HeadPitch", "HeadRoll")]
    out = [lines[0]]
    for i, line in enumerate(lines[1:]):
        row = line.split(",")
        for k, c in enumerate(cols):
            row[c] = f"{0.3 * np.sin(i / 40 + k):.10f}"
        out.append(",".join(row))
    dst.write_text("\n".join(out) + "\n")


def _write_take(folder, csv_path, clip_path):
    """<slate>_<take>_<device>.mov beside the real CSV; frame k is shown at the time of row ROWS[k]
    (the CSV's timecodes with their sub-frames; the video's own timecode is floored to a frame)."""
    shutil.copy(csv_path, folder / CSV_NAME)
    timecodes, _, _ = read_livelink_csv(csv_path)
    frame_no = [timecode_frames(tc, FPS) for tc in timecodes]
    with av.open(str(clip_path)) as src:
        images = [f.to_ndarray(format="rgb24") for _, f in zip(ROWS, src.decode(video=0))]
    out = av.open(str(folder / CSV_NAME.replace(".csv", ".mov")), "w", format="mov")
    out.metadata["timecode"] = _timecode(frame_no[ROWS[0]])
    stream = out.add_stream("libx264", rate=FPS)
    stream.width, stream.height, stream.pix_fmt = 256, 256, "yuv420p"
    stream.time_base = fractions.Fraction(1, 1000 * FPS)
    for row, image in zip(ROWS, images):
        frame = av.VideoFrame.from_ndarray(cv2.resize(image, (256, 256), interpolation=cv2.INTER_AREA), format="rgb24")
        frame.pts, frame.time_base = round((frame_no[row] - frame_no[ROWS[0]]) * 1000), stream.time_base
        for packet in stream.encode(frame):
            out.mux(packet)
    for packet in stream.encode():
        out.mux(packet)
    out.close()
    _with_head(folder / CSV_NAME, folder / HEAD_NAME)
    shutil.copy(folder / CSV_NAME.replace(".csv", ".mov"), folder / HEAD_NAME.replace(".csv", ".mov"))


@pytest.fixture(scope="module")
def take_dir(tmp_path_factory):
    csv_path = shared("expression_priors", "jmtechart", "Blender", "Blender Example Files", CSV_NAME)
    clip = shared("videos", "sadtalker", "examples", "ref_video", "WDA_KatieHill_000.mp4")
    folder = tmp_path_factory.mktemp("takes") / "LiveLinkFace"
    folder.mkdir()
    _write_take(folder, csv_path, clip)
    return folder


def test_timecode_frames():
    assert timecode_frames("00:32:09:07.867", 60) == pytest.approx((32 * 60 + 9) * 60 + 7.867)
    assert timecode_frames("01:00:00:29", 30) == 3600 * 30 + 29
    with pytest.raises(ValueError, match="not below"):
        timecode_frames("00:00:00:30.000", 30)
    with pytest.raises(ValueError, match="timecode"):
        timecode_frames("12:00", 30)


def test_find_and_parse(take_dir):
    (take_dir / "frame_log.csv").write_text("not a take\n")
    take, with_head = find_takes(take_dir)
    assert with_head.take == "4" and read_take_labels(with_head, FPS).head_rad is not None
    assert (take.slate, take.take, take.device) == ("MySlate", "3", "Jason_Millers_iPhone")
    assert take.key == "LiveLinkFace/MySlate_3_Jason_Millers_iPhone.mov"
    labels = read_take_labels(take, FPS)
    steps = np.diff(labels.frames)  # one row per camera frame; the sub-frame drifts .867 -> 1.000
    assert len(labels.frames) == 328 and np.all(np.abs(steps - 1) < 0.01)
    assert np.ptp(labels.frames - np.arange(328)) > 0.1
    assert labels.head_rad is None  # the reference recording has no head rotation
    assert labels.blendshapes.shape == (328, 52)


def _check_take(shard, csv_path, head: bool) -> None:
    timecodes, values, names = read_livelink_csv(csv_path)
    row_of = {tc: i for i, tc in enumerate(timecodes)}
    assert len(shard) == 2 * len(ROWS)  # a face in every frame, base + 1 jitter
    cols = [names.index(n) for n in LIVELINK_BLENDSHAPES]
    angles = [names.index(n) for n in ("HeadYaw", "HeadPitch", "HeadRoll")]
    for i in range(len(shard)):
        row = row_of[str(shard["timecode"][i])]
        assert row == ROWS[int(shard["frame"][i])]  # video frame k was shown at row ROWS[k]
        np.testing.assert_array_equal(shard["blendshapes"][i], values[row, cols])
        if head:
            expected = head_pose_from_livelink(*values[row, angles]).rotation
            np.testing.assert_array_equal(shard["rotation"][i], expected)
    assert np.isnan(shard["rotation"]).all() != head
    assert shard["blendshapes_valid"].all() and set(shard["kind"]) == {"take"}
    assert set(shard["person"]) == {"livelink:Jason_Millers_iPhone"}
    assert np.isnan(shard["translation_cm"]).all() and np.isfinite(shard["teacher_rotation"]).all()


def test_import_aligns_every_sample_to_its_csv_row(take_dir, tmp_path):
    params = RealParams(stride=1, jitter=1, thin_iod=0, thin_blendshape=0)
    result = import_takes(take_dir, tmp_path / "ds", params=params, progress=False)
    by_take = {str(s["source"][0]).split("/")[-1]: s for s in shards.iter_shards(tmp_path / "ds")}
    assert result.samples == 4 * len(ROWS) and len(by_take) == 2
    _check_take(by_take[CSV_NAME.replace(".csv", ".mov")], take_dir / CSV_NAME, head=False)
    _check_take(by_take[HEAD_NAME.replace(".csv", ".mov")], take_dir / HEAD_NAME, head=True)
    assert (tmp_path / "ds" / "card" / "samples.png").is_file()
    again = import_takes(take_dir, tmp_path / "ds", params=params, progress=False, card=False)
    assert again.labelled == 0 and again.samples == result.samples
