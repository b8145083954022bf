"""Video files through PyAV (FFmpeg)."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from pathlib import Path

import av
import numpy as np

from kaocap.capture._frame import Frame, SourceBase
from kaocap.errors import InputError

logger = logging.getLogger(__name__)

#: Frame rate assumed for timestamps when a frame has no pts and the stream declares no rate.
FALLBACK_FPS = 30.0


class VideoSource(SourceBase):
    """Frames of a video file, decoded by PyAV with FFmpeg's automatic threading.

    ``timestamp_ms`` is the frame's presentation time (pts) in ms from the stream's start time,
    made strictly increasing (a repeated or decreasing value becomes previous + 1); a frame
    without pts gets ``index * 1000 / fps``. The first frame is decoded on opening, so a file that
    cannot be decoded at all fails early with :class:`~kaocap.errors.InputError`. A truncated or
    corrupt file yields the frames it can decode, then stops; ``ended_early`` then holds a
    one-line description (jobs report it as an error after keeping what was decoded).

    >>> with VideoSource("clip.mp4") as src:               # doctest: +SKIP
    ...     for frame in src: print(frame.timestamp_ms, frame.image.shape)
    """

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self.name = str(self.path)
        self.live = False
        _check_file(self.path)
        try:
            self._container = av.open(str(self.path))
        except av.FFmpegError as err:
            raise InputError(f"{self.path}: not a video FFmpeg can read ({_reason(err)})") from None
        if not self._container.streams.video:
            self._container.close()
            raise InputError(f"{self.path}: has no video stream")
        self._stream = self._container.streams.video[0]
        self._stream.thread_type = "AUTO"
        rate = self._stream.average_rate or self._stream.guessed_rate
        self.fps = float(rate) if rate else None
        self.frame_count = int(self._stream.frames) or None
        self._closed = False
        self.ended_early: str | None = None
        self._frames = self._decode()
        self._first = self._first_frame()

    def _first_frame(self) -> Frame:
        try:
            return next(self._frames)
        except StopIteration:
            self.close()
            raise InputError(f"{self.path}: no frame could be decoded") from None
        except InputError:
            self.close()
            raise

    def __iter__(self) -> Iterator[Frame]:
        if self._first is None:
            raise InputError(f"{self.path}: a video source can be iterated only once")
        first, self._first = self._first, None
        yield first
        yield from self._frames

    def _decode(self) -> Iterator[Frame]:
        index, last_ms = 0, -1
        try:
            for av_frame in self._container.decode(self._stream):
                timestamp_ms = max(self._timestamp_ms(av_frame.pts, index), last_ms + 1)
                image = np.ascontiguousarray(av_frame.to_ndarray(format="rgb24"))
                yield Frame(image, timestamp_ms, index)
                index, last_ms = index + 1, timestamp_ms
        except (av.FFmpegError, EOFError) as err:
            if index == 0:
                raise InputError(
                    f"{self.path}: no frame could be decoded ({_reason(err)})"
                ) from None
            self.ended_early = f"{self.path}: decoding stopped after {index} frames ({_reason(err)})"
            logger.warning("%s", self.ended_early)
            return
        if self.frame_count and index < self.frame_count and not self._closed:
            self.ended_early = f"{self.path}: decoded {index} of {self.frame_count} declared frames; the file looks truncated"
            logger.warning("%s", self.ended_early)

    def _timestamp_ms(self, pts: int | None, index: int) -> int:
        if pts is None or self._stream.time_base is None:
            return round(index * 1000.0 / (self.fps or FALLBACK_FPS))
        start = self._stream.start_time or 0
        return round(float((pts - start) * self._stream.time_base) * 1000.0)

    def close(self) -> None:
        """Close the file; idempotent."""
        if getattr(self, "_closed", True):
            return
        self._closed = True
        self._frames.close()
        self._container.close()


def _check_file(path: Path) -> None:
    if not path.exists():
        raise InputError(f"{path}: no such file")
    if not path.is_file():
        raise InputError(f"{path}: not a file")
    if path.stat().st_size == 0:
        raise InputError(f"{path}: file is empty")


def _reason(err: BaseException) -> str:
    """FFmpeg's message without the errno prefix and the repeated file name."""
    strerror = getattr(err, "strerror", None)
    return str(strerror) if strerror else (str(err) or type(err).__name__)
