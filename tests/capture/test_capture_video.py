"""Video files through PyAV: real clips and broken inputs."""

from __future__ import annotations

import itertools
import logging
import shutil
from pathlib import Path

import numpy as np
import pytest

from kaocap.capture import Source, VideoSource, open_source
from kaocap.errors import InputError
from tests.conftest import shared

#: 112 x 112 px, 44 frames, H.264, index (moov) at the end of the file.
SMALL_CLIP = ("videos", "lia_x", "driving5.mp4")
#: 256 x 256 px, 228 frames, H.264, index (moov) at the start: a prefix of it still decodes.
MOOV_FIRST_CLIP = ("videos", "dpe", "s.mp4")
#: 256 x 256 px, 334 frames, MPEG-4 Part 2, 25 fps.
MPEG4_CLIP = ("videos", "dpe", "d.mp4")


def _check_stream(frames: list, shape: tuple[int, int]) -> None:
    stamps = [f.timestamp_ms for f in frames]
    assert all(b > a for a, b in itertools.pairwise(stamps)), "timestamps must strictly increase"
    assert [f.index for f in frames] == list(range(len(frames)))
    for f in frames[:3]:
        assert (
            f.image.shape == (*shape, 3)
            and f.image.dtype == np.uint8
            and f.image.flags.c_contiguous
        )


def test_real_h264_clip() -> None:
    with open_source(shared(*SMALL_CLIP)) as src:
        assert isinstance(src, VideoSource) and isinstance(src, Source)
        assert not src.live and src.frame_count == 44 and src.fps == pytest.approx(29.42, abs=0.01)
        frames = list(src)
    assert len(frames) == 44
    _check_stream(frames, (112, 112))
    assert frames[0].timestamp_ms == 0
    # pts-based: about 1000 / 29.42 ms apart
    assert np.mean(np.diff([f.timestamp_ms for f in frames])) == pytest.approx(34, abs=1.5)
    assert frames[10].image.std() > 10  # real picture content


def test_real_mpeg4_clip_partial_read_and_close() -> None:
    src = VideoSource(shared(*MPEG4_CLIP))
    frames = []
    for frame in src:
        frames.append(frame)
        if len(frames) == 25:
            break
    src.close()
    src.close()  # idempotent
    _check_stream(frames, (256, 256))
    assert frames[-1].timestamp_ms == pytest.approx(24 * 40, abs=1)  # 25 fps


def test_timestamps_without_pts_use_fps() -> None:
    with VideoSource(shared(*SMALL_CLIP)) as src:
        assert src._timestamp_ms(None, 3) == round(3 * 1000 / src.fps)


def test_truncated_clip_yields_what_it_can(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    data = shared(*MOOV_FIRST_CLIP).read_bytes()
    cut = tmp_path / "cut.mp4"
    cut.write_bytes(data[: int(len(data) * 0.3)])
    with caplog.at_level(logging.WARNING, logger="kaocap.capture"), open_source(cut) as src:
        frames = list(src)
    assert 0 < len(frames) < 228
    _check_stream(frames, (256, 256))
    warnings = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1 and "truncated" in warnings[0].getMessage()


def test_truncated_clip_with_index_at_the_end(tmp_path: Path) -> None:
    # The first 30 % of a file whose index (moov) is at the end holds no decodable frame.
    data = shared(*SMALL_CLIP).read_bytes()
    cut = tmp_path / "cut.mp4"
    cut.write_bytes(data[: int(len(data) * 0.3)])
    with pytest.raises(InputError, match="cut.mp4"):
        open_source(cut)


def test_missing_video(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="no such file") as info:
        open_source(tmp_path / "nope.mp4")
    assert "nope.mp4" in str(info.value)
    with pytest.raises(InputError, match="no such file"):
        VideoSource(tmp_path / "nope.mp4")


def test_empty_video(tmp_path: Path) -> None:
    (tmp_path / "empty.mp4").touch()
    with pytest.raises(InputError, match="empty.mp4: file is empty"):
        open_source(tmp_path / "empty.mp4")


def test_text_file_named_mp4(tmp_path: Path) -> None:
    (tmp_path / "notes.mp4").write_text("this is not a video\n" * 50)
    with pytest.raises(InputError) as info:
        open_source(tmp_path / "notes.mp4")
    message = str(info.value)
    assert "notes.mp4" in message and "\n" not in message


def test_audio_only_file(tmp_path: Path) -> None:
    av = pytest.importorskip("av")
    path = tmp_path / "tone.m4a"
    with av.open(str(path), "w") as out:
        stream = out.add_stream("aac", rate=16000)
        frame = av.AudioFrame.from_ndarray(
            np.zeros((1, 1024), np.float32), format="fltp", layout="mono"
        )
        frame.sample_rate = 16000
        for packet in [*stream.encode(frame), *stream.encode(None)]:
            out.mux(packet)
    with pytest.raises(InputError, match="no video stream"):
        open_source(path)


def test_video_iterates_once() -> None:
    with VideoSource(shared(*SMALL_CLIP)) as src:
        list(src)
        with pytest.raises(InputError, match="only once"):
            list(src)


def test_copy_of_real_clip_with_odd_name(tmp_path: Path) -> None:
    target = tmp_path / "clip ä #1.mov"
    shutil.copy(shared(*SMALL_CLIP), target)
    with open_source(target) as src:
        assert sum(1 for _ in src) == 44
