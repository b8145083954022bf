"""Live cameras through OpenCV, with a grabber thread that keeps only the newest frame."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterator
from typing import Protocol

import cv2
from numpy.typing import NDArray

from kaocap.capture._frame import Frame, SourceBase, bgr_to_rgb8
from kaocap.errors import InputError, SourceLost

logger = logging.getLogger(__name__)

#: Seconds without a new frame after which a camera counts as lost.
DEFAULT_TIMEOUT_S = 2.0
#: Pause between retries while the device returns no frame, s.
_RETRY_PAUSE_S = 0.005
#: How long close() waits for the grabber thread, s.
_JOIN_TIMEOUT_S = 1.0


class VideoCaptureLike(Protocol):
    """The part of ``cv2.VideoCapture`` a camera source uses (a test fake implements this)."""

    def isOpened(self) -> bool: ...

    def read(self) -> tuple[bool, NDArray | None]: ...

    def get(self, prop_id: int) -> float: ...

    def release(self) -> None: ...


CaptureFactory = Callable[[int], VideoCaptureLike]


class _LatestFrame:
    """A grabber thread reading a capture as fast as it delivers; it keeps only the newest frame,
    as OpenCV returned it (the consumer converts colours, so dropped frames cost nothing).

    Each grabbed frame gets a sequence number (0, 1, ...) and a timestamp in ms of the monotonic
    clock since ``t0``, strictly increasing.
    """

    def __init__(self, capture: VideoCaptureLike, t0: float, name: str) -> None:
        self._capture = capture
        self._t0 = t0
        self._cond = threading.Condition()
        self._latest: tuple[NDArray, int, int] | None = None
        self._error: BaseException | None = None
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name=f"kaocap-grab-{name}", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        seq, last_ms = 0, -1
        while not self._stop.is_set():
            try:
                ok, raw = self._capture.read()
            except Exception as err:  # noqa: BLE001 (a broken driver: hand it to the consumer)
                with self._cond:
                    self._error = err
                    self._cond.notify_all()
                return
            if not ok or raw is None:
                self._stop.wait(_RETRY_PAUSE_S)
                continue
            timestamp_ms = max(int((time.monotonic() - self._t0) * 1000.0), last_ms + 1)
            with self._cond:
                self._latest = (raw, timestamp_ms, seq)
                self._cond.notify_all()
            seq, last_ms = seq + 1, timestamp_ms

    def newer_than(self, seq: int, timeout_s: float) -> tuple[NDArray, int, int] | None:
        """The newest (raw image, timestamp_ms, seq) with a sequence number above ``seq``.

        Returns None once stopped; raises TimeoutError if none arrives within ``timeout_s``.
        """

        def ready() -> bool:
            fresh = self._latest is not None and self._latest[2] > seq
            return fresh or self._stop.is_set() or self._error is not None

        with self._cond:
            if not self._cond.wait_for(ready, timeout_s):
                raise TimeoutError
            if self._stop.is_set():
                return None
            if self._error is not None:
                raise self._error
            return self._latest

    def stop(self) -> bool:
        """Stop the thread; True when it ended within the join timeout."""
        self._stop.set()
        with self._cond:
            self._cond.notify_all()
        self._thread.join(_JOIN_TIMEOUT_S)
        return not self._thread.is_alive()


def _quiet_video_capture(index: int) -> cv2.VideoCapture:
    """cv2.VideoCapture without OpenCV's multi-line backend chatter when the camera is absent."""
    level = cv2.utils.logging.getLogLevel()
    cv2.utils.logging.setLogLevel(cv2.utils.logging.LOG_LEVEL_SILENT)
    try:
        return cv2.VideoCapture(index)
    finally:
        cv2.utils.logging.setLogLevel(level)


class CameraSource(SourceBase):
    """A live camera (OpenCV ``VideoCapture``) that drops stale frames instead of queueing them.

    A background thread grabs frames as fast as the camera delivers and keeps only the newest;
    the iterator hands out each grabbed frame at most once and skips the ones it was too slow
    for (``Frame.index`` is the grab count, so gaps show dropped frames). ``timestamp_ms`` is the
    monotonic clock in ms since the source was opened, taken when the frame was grabbed. Images
    arrive as BGR from OpenCV and are converted to RGB.

    Raises :class:`~kaocap.errors.InputError` when the camera cannot be opened, and (from the
    iterator) :class:`~kaocap.errors.SourceLost` when no new frame arrives for ``timeout_s`` or the
    device fails. ``capture_factory`` replaces ``cv2.VideoCapture`` (tests pass a fake).

    >>> with CameraSource(0) as cam:                       # doctest: +SKIP
    ...     for frame in cam: ...
    """

    def __init__(
        self,
        index: int,
        *,
        timeout_s: float = DEFAULT_TIMEOUT_S,
        capture_factory: CaptureFactory | None = None,
    ) -> None:
        if timeout_s <= 0:
            raise ValueError(f"timeout_s must be > 0, got {timeout_s}")
        self.index = int(index)
        self.name = f"camera {self.index}"
        self.live = True
        self.frame_count = None
        self.timeout_s = float(timeout_s)
        self._grabber: _LatestFrame | None = None
        self._close_lock = threading.Lock()
        factory: CaptureFactory = capture_factory or _quiet_video_capture
        self._capture = factory(self.index)
        if not self._capture.isOpened():
            self._capture.release()
            raise InputError(f"camera {self.index} could not be opened")
        fps = float(self._capture.get(cv2.CAP_PROP_FPS) or 0.0)
        self.fps = fps if fps > 0 else None
        self._grabber = _LatestFrame(self._capture, time.monotonic(), self.name)

    def __iter__(self) -> Iterator[Frame]:
        seen = -1
        while (grabber := self._grabber) is not None:
            try:
                item = grabber.newer_than(seen, self.timeout_s)
            except TimeoutError:
                raise SourceLost(f"{self.name}: no new frame for {self.timeout_s:g} s") from None
            except Exception as err:
                raise SourceLost(f"{self.name}: the device failed ({err})") from err
            if item is None:
                return
            raw, timestamp_ms, seen = item
            try:
                image = bgr_to_rgb8(raw)
            except ValueError as err:
                raise SourceLost(f"{self.name}: unexpected frame from the device ({err})") from None
            yield Frame(image, timestamp_ms, seen)

    def close(self) -> None:
        """Stop the grabber thread and release the device; idempotent and thread-safe (a second
        call returns once the device is released)."""
        with self._close_lock:
            grabber, self._grabber = self._grabber, None
            if grabber is None:
                return
            if not grabber.stop():
                logger.warning(
                    "%s: grabber thread did not stop within %g s", self.name, _JOIN_TIMEOUT_S
                )
            self._capture.release()
