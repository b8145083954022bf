"""Camera source: the grabber thread with a fake capture, and a camera that does not exist."""

from __future__ import annotations

import itertools
import threading
import time

import numpy as np
import pytest

from kaocap.capture import CameraSource, Source, open_source
from kaocap.errors import InputError, SourceLost


class FakeCapture:
    """Stands in for cv2.VideoCapture: BGR frames every ``period_s`` with the grab count encoded
    in the blue (low byte) and green (high byte) channels."""

    def __init__(
        self,
        *,
        opened: bool = True,
        period_s: float = 0.001,
        n_frames: int | None = None,
        fail_after: int | None = None,
    ) -> None:
        self.opened, self.period_s = opened, period_s
        self.n_frames, self.fail_after = n_frames, fail_after
        self.count = 0
        self.released = False

    def isOpened(self) -> bool:
        return self.opened

    def read(self) -> tuple[bool, np.ndarray | None]:
        time.sleep(self.period_s)
        if self.fail_after is not None and self.count >= self.fail_after:
            raise RuntimeError("USB device gone")
        if self.n_frames is not None and self.count >= self.n_frames:
            return False, None
        bgr = np.zeros((4, 6, 3), np.uint8)
        bgr[..., 0], bgr[..., 1] = self.count % 256, self.count // 256
        self.count += 1
        return True, bgr

    def get(self, prop_id: int) -> float:
        return 30.0

    def release(self) -> None:
        self.released = True


def _grab_count(image: np.ndarray) -> int:
    """Decode FakeCapture's counter from an RGB frame (blue is channel 2 after BGR -> RGB)."""
    return int(image[0, 0, 2]) + 256 * int(image[0, 0, 1])


def test_drops_stale_frames_for_a_slow_consumer() -> None:
    fake = FakeCapture(period_s=0.001)
    with CameraSource(0, capture_factory=lambda index: fake) as cam:
        assert isinstance(cam, Source) and cam.live and cam.fps == 30.0 and cam.frame_count is None
        received = []
        for frame in cam:
            grabbed_so_far = fake.count
            received.append(frame)
            assert _grab_count(frame.image) == frame.index  # index = grab count
            assert frame.index >= grabbed_so_far - 3  # the newest frame, not a queued one
            if len(received) == 6:
                break
            time.sleep(0.03)  # a consumer ~30x slower than the camera
    indices = [f.index for f in received]
    stamps = [f.timestamp_ms for f in received]
    assert all(b > a for a, b in itertools.pairwise(indices))
    assert all(b > a for a, b in itertools.pairwise(stamps))
    assert np.mean(np.diff(indices)) > 5  # frames in between were dropped, not queued
    assert fake.released


def test_each_frame_is_delivered_at_most_once() -> None:
    fake = FakeCapture(period_s=0.02)  # a camera slower than the consumer
    with CameraSource(0, capture_factory=lambda index: fake) as cam:
        indices = []
        for frame in cam:
            indices.append(frame.index)
            if len(indices) == 5:
                break
    assert indices == sorted(set(indices))


def test_timestamps_are_ms_since_open() -> None:
    fake = FakeCapture(period_s=0.05)
    start = time.monotonic()
    with CameraSource(0, capture_factory=lambda index: fake) as cam:
        frame = next(iter(cam))
    elapsed_ms = (time.monotonic() - start) * 1000
    assert 40 <= frame.timestamp_ms <= elapsed_ms + 5


def test_camera_that_stops_delivering_raises_source_lost() -> None:
    fake = FakeCapture(n_frames=3)
    with CameraSource(2, timeout_s=0.2, capture_factory=lambda index: fake) as cam:
        frames = []
        start = time.monotonic()
        with pytest.raises(SourceLost, match=r"camera 2: no new frame for 0.2 s"):
            for frame in cam:
                frames.append(frame)  # noqa: PERF402 (kept when the loop raises)
        assert time.monotonic() - start < 2.0
    assert 1 <= len(frames) <= 3


def test_device_error_raises_source_lost() -> None:
    fake = FakeCapture(fail_after=2, period_s=0.01)
    with CameraSource(0, timeout_s=5, capture_factory=lambda index: fake) as cam:
        start = time.monotonic()
        with pytest.raises(SourceLost, match="USB device gone"):
            list(cam)
        assert time.monotonic() - start < 1.0  # reported at once, not after the timeout


def test_close_from_another_thread_ends_iteration() -> None:
    fake = FakeCapture(n_frames=1)
    cam = CameraSource(0, timeout_s=5, capture_factory=lambda index: fake)
    threading.Timer(0.1, cam.close).start()
    start = time.monotonic()
    frames = list(cam)
    assert len(frames) <= 1 and time.monotonic() - start < 2.0
    cam.close()  # idempotent
    assert fake.released and list(cam) == []


def test_unopened_capture_raises_input_error() -> None:
    fake = FakeCapture(opened=False)
    with pytest.raises(InputError, match="^camera 7 could not be opened$"):
        CameraSource(7, capture_factory=lambda index: fake)
    assert fake.released


def test_bad_timeout() -> None:
    with pytest.raises(ValueError):
        CameraSource(0, timeout_s=0, capture_factory=lambda index: FakeCapture())


@pytest.mark.parametrize("spec", [99, "99"])
def test_camera_index_that_does_not_exist(spec: int | str) -> None:
    with pytest.raises(InputError, match="^camera 99 could not be opened$"):
        open_source(spec)
