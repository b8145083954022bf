"""``kaocap serve``: capture from a camera or a file and show it in the browser viewer.

A camera runs all the time. A file (video, image, folder) is played at its own pace from the
moment a page connects, loops while a page stays connected, and waits for the next page
otherwise; frames that fall more than :data:`LATE_S` behind are skipped to stay in real time.
A pass over the file lasts at least :data:`MIN_PASS_S` (a still image is re-sent once a second).

>>> from kaocap.viewer import serve                                  # doctest: +SKIP
>>> serve("clip.mp4", port=8080, on_ready=print)                    # Ctrl-C / stop.set() ends it
"""

from __future__ import annotations

import contextlib
import functools
import logging
import threading
import time
from collections.abc import Callable
from pathlib import Path

from kaocap.capture import Frame, Source
from kaocap.config import PipelineConfig
from kaocap.pipeline import Pipeline
from kaocap.runtime import opencv_threads
from kaocap.types import FrameResult
from kaocap.viewer.server import DEFAULT_PORT, ViewerServer

log = logging.getLogger(__name__)

#: A file frame this late (s) against its own timestamps is skipped.
LATE_S = 0.1
#: Shortest pass over a file, s.
MIN_PASS_S = 1.0
#: How often a waiting file source checks for a page or for ``stop``, s.
POLL_S = 0.05


def serve(
    source: str | int | Path | None = None,
    config: PipelineConfig | None = None,
    *,
    host: str = "127.0.0.1",
    port: int = DEFAULT_PORT,
    token: str | None = None,
    stop: threading.Event | None = None,
    on_ready: Callable[[str], None] | None = None,
    on_result: Callable[[FrameResult], None] | None = None,
    static_dir: Path | None = None,
) -> int:
    """Serve the viewer for ``source`` (camera index, file, or None for the embedded portrait)
    until ``stop`` is set or a camera is lost; returns how many frames were processed.

    ``on_ready(url)`` is called once the server listens, ``on_result(result)`` after each frame
    is sent. Errors: ConfigError (host/token), ViewerNotBuilt (page missing), OutputError (port
    taken), InputError (bad source).
    """
    from kaocap.jobs import open_input

    stop = threading.Event() if stop is None else stop
    frames = 0
    make_server = functools.partial(ViewerServer, host, token=token, static_dir=static_dir)  # (port) -> server
    with (
        make_server(port) as server,
        Pipeline(config) as pipe,
        opencv_threads(pipe.config.runtime.threads),  # the --threads cap covers crops too (as kaocap run)
    ):
        if on_ready is not None:
            on_ready(server.url)
        player = _Player(pipe, server, stop, on_result, make_server)
        try:
            while not stop.is_set():
                src = open_input(source)
                with contextlib.closing(src):
                    if getattr(src, "live", False):
                        return frames + player.live(src)
                    if not _wait_for_page(player.server, stop):
                        break
                    frames += player.file(src)
        finally:
            if player.server is not server:
                player.server.close()
    return frames


class _Player:
    """Runs the pipeline over a source and sends each frame to the pages.

    A failure inside the viewer (its server thread or event loop dead, a frame it cannot
    encode) is logged once per outage; the server is then closed and started again on the same
    port (``restart(port)``), while the pipeline keeps running; pages reconnect on their own.
    """

    def __init__(self, pipe: Pipeline, server: ViewerServer, stop: threading.Event,
                 on_result: Callable[[FrameResult], None] | None,
                 restart: Callable[[int], ViewerServer] | None = None) -> None:  # fmt: skip
        self.pipe, self.server, self.stop, self.on_result = pipe, server, stop, on_result
        self.restart, self.restarts, self._failing = restart, 0, False

    def _emit(self, frame: Frame) -> None:
        result = self.pipe.process(frame)
        try:
            self.server.send_frame(result, frame.image)
            if self._failing:
                log.warning("viewer: running again at %s", self.server.url)
            self._failing = False
        except Exception as err:  # noqa: BLE001 - the viewer must not stop the capture
            (log.debug if self._failing else log.warning)("viewer failed (%s: %s); restarting it", type(err).__name__, err)
            self._failing = True
            self._restart()
        if self.on_result is not None:
            self.on_result(result)

    def _restart(self) -> None:
        if self.restart is None:
            return
        port = self.server.port
        try:
            self.server.close()
        except Exception as err:  # noqa: BLE001 - it failed already
            log.debug("viewer: close failed (%s)", err)
        try:
            self.server = self.restart(port)
            self.restarts += 1
        except Exception as err:  # noqa: BLE001 - retried on the next frame
            log.debug("viewer: restart failed (%s)", err)

    def live(self, src: Source) -> int:
        """Every frame of a live source until it ends or ``stop``."""
        self.pipe.use_source(src)
        frames = 0
        for frame in src:
            if self.stop.is_set():
                break
            self._emit(frame)
            frames += 1
        return frames

    def file(self, src: Source) -> int:
        """One pass over a file at its own pace; ends early when the last page leaves."""
        self.pipe.reset()
        self.pipe.use_source(src)
        started, first_ms, frames = time.monotonic(), None, 0
        for frame in src:
            if self.stop.is_set() or not self.server.clients:
                break
            first_ms = frame.timestamp_ms if first_ms is None else first_ms
            delay = started + (frame.timestamp_ms - first_ms) / 1000.0 - time.monotonic()
            if delay < -LATE_S:
                continue
            if delay > 0 and self.stop.wait(delay):
                break
            self._emit(frame)
            frames += 1
        self.stop.wait(max(0.0, MIN_PASS_S - (time.monotonic() - started)))
        return frames


def _wait_for_page(server: ViewerServer, stop: threading.Event) -> bool:
    """Wait until a page is connected (True) or ``stop`` is set (False)."""
    announced = False
    while not server.clients:
        if not announced:
            log.info("waiting for a page at %s", server.url)
            announced = True
        if stop.wait(POLL_S):
            return False
    return True
