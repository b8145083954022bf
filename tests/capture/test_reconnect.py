"""Live sources that fail: the loop waits, reconnects with backoff and carries on."""

from __future__ import annotations

import threading

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
    assert all(b > a for a, b in zip(ts, ts[1:])) and [f.index for f in frames] == list(range(7))
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
