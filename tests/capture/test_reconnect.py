"""Live sources that fail: the loop waits, reconnects with backoff and carries on."""

from __future__ import annotations

import threading
from itertools import pairwise

import numpy as np
import pytest

from kaocap.capture import Frame, ReconnectingSource
from kaocap.errors import InputError, SourceLost


class _FlakyCamera:
    """Each opening delivers ``frames`` frames of ``size``, then loses the device."""

    live, fps, frame_count, name = True, 30.0, None, "flaky"

    def __init__(self, frames: int, size: tuple[int, int], fail: type[Exception] = SourceLost) -> None:
        self.frames, self.size, self.fail = frames, size, fail
        self.closed = False

    def __iter__(self):
        for i in range(self.frames):
            yield Frame(np.zeros((self.size[1], self.size[0], 3), np.uint8), 10 * i, i)
        raise self.fail("device gone")

    def close(self):
        self.closed = True


def test_reconnects_with_increasing_timestamps_and_new_sizes():
    opened: list[_FlakyCamera] = []
    plan = [(3, (64, 48)), None, None, (2, (80, 60)), (2, (64, 48))]  # None: reopen fails

    def factory():
        step = plan.pop(0) if plan else None
        if step is None:
            raise InputError("camera 0 could not be opened")
        opened.append(_FlakyCamera(*step))
        return opened[-1]

    lost = []
    src = ReconnectingSource(factory, on_lost=lambda: lost.append(1), backoff_start_s=0.01)
    frames = []
    for frame in src:
        frames.append(frame)
        if len(frames) == 7:
            break
    src.close()
    sizes = [f.image.shape[1] for f in frames]
    assert sizes == [64, 64, 64, 80, 80, 64, 64]
    ts = [f.timestamp_ms for f in frames]
    assert all(b > a for a, b in pairwise(ts)) and [f.index for f in frames] == list(range(7))
    assert src.reconnects == 2 and len(lost) == 2 and all(c.closed for c in opened[:-1])


def test_close_stops_waiting_for_a_dead_device():
    def factory():
        if factory.calls:
            raise InputError("camera 0 could not be opened")
        factory.calls += 1
        return _FlakyCamera(1, (32, 32))

    factory.calls = 0
    src = ReconnectingSource(factory, backoff_start_s=0.05, backoff_max_s=0.1)
    threading.Timer(0.3, src.close).start()
    assert len(list(src)) == 1  # then it waited, and close() ended the iteration


def test_first_open_fails_loudly():
    def factory():
        raise InputError("camera 5 could not be opened")

    with pytest.raises(InputError, match="camera 5"):
        ReconnectingSource(factory)


def _encode(frames, path, scale: float) -> None:
    """Write RGB ``frames`` as an H.264 MP4, resized by ``scale``."""
    import av
    import cv2

    height, width = (round(s * scale) // 2 * 2 for s in frames[0].shape[:2])
    with av.open(str(path), "w") as dst:
        stream = dst.add_stream("libx264", rate=30)
        stream.width, stream.height, stream.pix_fmt = width, height, "yuv420p"
        for image in frames:
            small = cv2.resize(image, (width, height), interpolation=cv2.INTER_AREA)
            dst.mux(stream.encode(av.VideoFrame.from_ndarray(small, format="rgb24")))
        dst.mux(stream.encode())


def test_video_file_replaced_while_read(tmp_path):
    """A file another program rewrites under us (a recorder restarting, a user swapping clips):
    an atomic replace (the old file is read to its end first), then an in-place truncation to
    half a file (unreadable: the MP4 index is at its end) that is only fixed a while later. The
    loop waits and reopens with backoff, the pipeline follows the new resolution, nothing
    crashes, timestamps keep increasing."""
    from kaocap import Pipeline
    from kaocap.capture import VideoSource
    from kaocap.config import FilterConfig, PipelineConfig
    from tests.conftest import shared

    with VideoSource(shared("videos", "sadtalker", "examples", "ref_video", "WDA_KatieHill_000.mp4")) as clip:
        frames = [f.image for _, f in zip(range(12), clip)]
    live, small, big = tmp_path / "live.mp4", tmp_path / "small.mp4", tmp_path / "big.mp4"
    _encode(frames, live, 1.0)
    _encode(frames, small, 0.5)
    big_bytes = live.read_bytes()
    lost, results = [], []
    src = ReconnectingSource(lambda: VideoSource(live), on_lost=lambda: lost.append(1),
                             backoff_start_s=0.01, backoff_max_s=0.05)  # fmt: skip
    with Pipeline(PipelineConfig(model="mediapipe", filter=FilterConfig(enabled=False))) as pipe:
        for frame in src:
            results.append(pipe.process(frame))
            if len(results) == 3:
                small.replace(live)  # atomic: the open file keeps its 12 frames
            if len(results) == 14:  # reading the small clip: cut it in place
                live.write_bytes(big_bytes[: len(big_bytes) // 2])
                threading.Timer(0.3, lambda: big.write_bytes(big_bytes) and big.replace(live)).start()
            if len(results) == 40:
                break
    src.close()
    widths = [r.image_size[0] for r in results]
    assert widths[:12] == [frames[0].shape[1]] * 12 and widths[12] == frames[0].shape[1] // 2
    assert widths[-1] == frames[0].shape[1]  # the repaired file, reopened after failed tries
    assert all(r.faces for r in results), "the pipeline followed every resolution change"
    ts = [r.timestamp_ms for r in results]
    assert all(b > a for a, b in pairwise(ts)) and len(lost) >= 3 and src.reconnects >= 3
