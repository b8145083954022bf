"""A live source that survives its device: waits, reopens with backoff, and carries on."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterator

from kaocap._closing import Closing
from kaocap.capture._frame import Frame, Source
from kaocap.errors import InputError

logger = logging.getLogger(__name__)

BACKOFF_START_S = 0.5
BACKOFF_MAX_S = 8.0


class ReconnectingSource(Closing):
    """Wraps a live source factory (e.g. ``lambda: CameraSource(0)``).

    When the source stops delivering, errors or cannot be opened, it is closed and reopened
    with exponential backoff (0.5 s doubling to 8 s) until it works again or :meth:`close` is
    called or ``stop`` is set. Timestamps and indices keep increasing across reconnects.
    ``on_lost`` is called once per outage (senders use it to report "face lost"), ``on_back``
    when frames flow again.
    """

    live = True

    def __init__(self, factory: Callable[[], Source], *, name: str = "live source",
                 on_lost: Callable[[], None] | None = None,
                 on_back: Callable[[], None] | None = None,
                 stop: threading.Event | None = None,
                 backoff_start_s: float = BACKOFF_START_S, backoff_max_s: float = BACKOFF_MAX_S) -> None:  # fmt: skip
        self._factory, self.name = factory, name
        self.on_lost, self.on_back = on_lost, on_back
        self.backoff_start_s, self.backoff_max_s = backoff_start_s, backoff_max_s
        self._closed = threading.Event()
        self._stop = stop
        self._source: Source | None = factory()  # the first open fails loudly
        self.fps = getattr(self._source, "fps", None)
        self.frame_count = None
        self.reconnects = 0

    def __iter__(self) -> Iterator[Frame]:
        last_ts, index = -1, 0
        while not self._stopped(0):
            source = self._source or self._reopen()
            if source is None:
                return
            offset = last_ts + 1
            try:
                for frame in source:
                    ts = max(frame.timestamp_ms + offset, last_ts + 1)
                    yield Frame(frame.image, ts, index)
                    last_ts, index = ts, index + 1
                logger.warning("%s: stream ended; reconnecting", self.name)
            except InputError as err:  # SourceLost included
                logger.warning("%s: %s; reconnecting", self.name, err)
            self._drop(source)

    def _drop(self, source: Source) -> None:
        try:
            source.close()
        except Exception:  # a dying device may fail to close too
            logger.debug("close failed", exc_info=True)
        self._source = None
        if self.on_lost is not None:
            self.on_lost()

    def _stopped(self, wait_s: float) -> bool:
        """Wait up to ``wait_s`` for close() or the stop event (checked every 0.1 s)."""
        deadline = time.monotonic() + wait_s
        while True:
            if self._closed.is_set() or (self._stop is not None and self._stop.is_set()):
                return True
            left = deadline - time.monotonic()
            if left <= 0:
                return False
            self._closed.wait(min(left, 0.1))

    def _reopen(self) -> Source | None:
        delay = self.backoff_start_s
        while not self._stopped(delay):
            try:
                self._source = self._factory()
            except InputError as err:
                logger.debug("%s: reopen failed: %s", self.name, err)
                delay = min(delay * 2, self.backoff_max_s)
                continue
            self.reconnects += 1
            logger.warning("%s: back after %d reconnect(s)", self.name, self.reconnects)
            if self.on_back is not None:
                self.on_back()
            return self._source
        return None

    def close(self) -> None:
        self._closed.set()
        if self._source is not None:
            self._source.close()
            self._source = None

