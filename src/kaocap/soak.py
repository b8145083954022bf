"""Soak benchmark: the live loop for many frames, checked for leaks and latency drift.

A real clip is decoded once and looped as a live source (so filters are on); every result goes
through the full fan-out to local receivers on this machine (UDP sinks and the JSON WebSocket
server). Resident memory, open file descriptors, threads and capture->send latency are
measured over the first and the last window of frames.
"""

from __future__ import annotations

import contextlib
import itertools
import os
import socket
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np

from kaocap.capture import Frame
from kaocap.config import PipelineConfig
from kaocap.pipeline import Pipeline
from kaocap.runtime import opencv_threads

#: Targets the soak drives: every UDP sender plus the WebSocket server (VTube Studio needs the
#: app's handshake and is left out).
UDP_TARGETS = ("vmc", "livelink", "ifm", "vrchat", "osf")


@dataclass(frozen=True, slots=True)
class Snapshot:
    """The process at one moment: resident MB, open fds, threads, latency p50/p99 (ms)."""

    frame: int
    rss_mb: float
    fds: int
    threads: int
    latency_p50_ms: float
    latency_p99_ms: float


def process_snapshot(frame: int, sender_stats: dict[str, dict]) -> Snapshot:
    """Latency: capture -> sent by each target over its last 1000 frames; p50 is the median of
    the targets' p50, p99 the worst target's p99."""
    with open("/proc/self/statm") as fh:
        rss_pages = int(fh.read().split()[1])
    p50s = [s["p50_ms"] for s in sender_stats.values() if s["p50_ms"] is not None]
    p99s = [s["p99_ms"] for s in sender_stats.values() if s["p99_ms"] is not None]
    p50, p99 = (float(np.median(p50s)), max(p99s)) if p50s else (np.nan, np.nan)
    return Snapshot(frame, rss_pages * os.sysconf("SC_PAGE_SIZE") / 2**20, len(os.listdir("/proc/self/fd")),
                    threading.active_count(), float(p50), float(p99))  # fmt: skip


class LoopingSource:
    """Frames of a clip, decoded once, looped forever as a live source at ``fps``."""

    live, frame_count = True, None

    def __init__(self, frames: list[np.ndarray], fps: float = 30.0) -> None:
        self.frames, self.fps, self.name = frames, fps, "looped clip"

    def __iter__(self) -> Iterator[Frame]:
        i = 0
        while True:
            yield Frame(self.frames[i % len(self.frames)], int(i * 1000 / self.fps), i)
            i += 1

    def close(self) -> None:
        pass


@contextlib.contextmanager
def udp_sinks(count: int) -> Iterator[list[int]]:
    """``count`` UDP sockets on 127.0.0.1 ephemeral ports, drained by one thread: their ports."""
    socks = [socket.socket(socket.AF_INET, socket.SOCK_DGRAM) for _ in range(count)]
    for sock in socks:
        sock.bind(("127.0.0.1", 0))
        sock.settimeout(0.05)
    done = threading.Event()

    def drain() -> None:
        while not done.is_set():
            for sock in socks:
                with contextlib.suppress(OSError):
                    sock.recv(65536)

    thread = threading.Thread(target=drain, daemon=True, name="kaocap-soak-sinks")
    thread.start()
    try:
        yield [s.getsockname()[1] for s in socks]
    finally:
        done.set()
        thread.join(1)
        for sock in socks:
            sock.close()


def soak(frames: list[np.ndarray], count: int, *, window: int = 1000, config: PipelineConfig | None = None,
         progress: bool = False) -> tuple[Snapshot, Snapshot]:  # fmt: skip
    """Run the live loop for ``count`` frames; snapshots after the first and the last window."""
    from kaocap.stream.senders import Fanout

    window = min(window, max(count // 2, 1))
    first = None
    with udp_sinks(len(UDP_TARGETS)) as ports, Pipeline(config) as pipe, opencv_threads(pipe.config.runtime.threads):
        specs = [f"{t}:127.0.0.1:{p}" for t, p in zip(UDP_TARGETS, ports)] + ["ws:127.0.0.1:0"]
        with Fanout.from_specs(specs) as fanout:
            source = LoopingSource(frames)
            pipe.use_source(source)
            bar = _bar(count) if progress else None
            for frame in itertools.islice(source, count):
                captured_at = time.perf_counter()
                fanout.send(pipe.process(frame), captured_at=captured_at)
                if frame.index + 1 == window:
                    time.sleep(0.05)  # let the targets finish the window's last frame
                    first = process_snapshot(frame.index + 1, fanout.stats())
                if bar is not None:
                    bar.update(1)
            time.sleep(0.05)
            last = process_snapshot(count, fanout.stats())
    return first or last, last


def _bar(total: int):
    from tqdm import tqdm

    return tqdm(total=total, unit="frame", desc="soak", leave=False)


def format_report(first: Snapshot, last: Snapshot) -> str:
    """The start/end table with the issue's targets."""
    rows = [
        ("resident memory MB", first.rss_mb, last.rss_mb, "growth <= 10 MB"),
        ("open file descriptors", first.fds, last.fds, "no growth"),
        ("threads", first.threads, last.threads, "no growth"),
        ("latency p50 ms", first.latency_p50_ms, last.latency_p50_ms, ""),
        ("latency p99 ms", first.latency_p99_ms, last.latency_p99_ms, "within 10% of start"),
    ]
    lines = [f"{'':<24}{'frame ' + str(first.frame):>14}{'frame ' + str(last.frame):>14}{'change':>10}   target"]
    for name, a, b, target in rows:
        lines.append(f"{name:<24}{a:>14.2f}{b:>14.2f}{b - a:>+10.2f}   {target}")
    return "\n".join(lines)
