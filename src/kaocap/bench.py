"""Side-by-side speed of kaocap and MediaPipe's FaceLandmarker on the same decoded frames.

Both engines get the same frames, interleaved frame by frame so that machine noise hits both
alike. Rows: one core (every engine pinned to one CPU, kaocap with 1 thread) and each engine's
default thread count. Modes: tracking (MediaPipe VIDEO mode) and detect-every-frame (IMAGE mode).
"""

from __future__ import annotations

import contextlib
import os
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from kaocap.config import PipelineConfig, RuntimeConfig, TrackingConfig
from kaocap.pipeline import Pipeline


@dataclass(frozen=True, slots=True)
class BenchRow:
    """ms per frame (mean over frames after warm-up) of each engine for one thread setting."""

    threads: str
    engine: str
    mode: str
    ms_per_frame: float
    faces_found: int


def load_frames(source: str | None, count: int) -> list[NDArray[np.uint8]]:
    """Decode up to ``count`` frames; the default input is the embedded portrait, moved a few
    px per frame so that tracking has motion to follow."""
    from kaocap.jobs import open_input

    src = open_input(source)
    with contextlib.closing(src):
        frames = [f.image for _, f in zip(range(count), src)]
    if len(frames) == 1:
        base = frames[0]
        frames = [np.roll(base, (int(4 * np.sin(i / 5)), int(6 * np.cos(i / 7))), axis=(0, 1)) for i in range(count)]
    return frames


@contextlib.contextmanager
def pinned(one_core: bool) -> Iterator[None]:
    """Pin this thread (and threads it starts) to one CPU while inside."""
    original = os.sched_getaffinity(0)
    if one_core:
        os.sched_setaffinity(0, {min(original)})
    try:
        yield
    finally:
        os.sched_setaffinity(0, original)


Engine = Callable[[NDArray, int], int]


def _kaocap(stack: contextlib.ExitStack, tracking: bool, threads: int) -> Engine:
    config = PipelineConfig(tracking=TrackingConfig(enabled=tracking), runtime=RuntimeConfig(threads=threads))
    pipe = stack.enter_context(Pipeline(config))
    return lambda image, ts: len(pipe(image, ts).faces)


def _mediapipe(stack: contextlib.ExitStack, mode: str) -> Engine:
    from kaocap.eval.peer import MediaPipePeer

    peer = stack.enter_context(MediaPipePeer(mode=mode))
    return lambda image, ts: len(peer.raw(image, ts).face_landmarks)


def _engines(stack: contextlib.ExitStack, threads: int, with_peer: bool) -> dict[tuple[str, str], Engine]:
    engines = {("kaocap", "tracking"): _kaocap(stack, True, threads),
               ("kaocap", "detect every frame"): _kaocap(stack, False, threads)}  # fmt: skip
    if with_peer:
        engines[("MediaPipe", "tracking")] = _mediapipe(stack, "video")
        engines[("MediaPipe", "detect every frame")] = _mediapipe(stack, "image")
    return engines


def bench(frames: list[NDArray[np.uint8]], *, threads: int | None = None, one_core: bool = False,
          with_peer: bool = True, warmup: int = 5) -> list[BenchRow]:  # fmt: skip
    """Time every engine on ``frames``, interleaved frame by frame."""
    label = "1 core" if one_core else "default"
    with pinned(one_core), contextlib.ExitStack() as stack:
        engines = _engines(stack, threads or 1, with_peer)
        times: dict[tuple[str, str], list[float]] = {key: [] for key in engines}
        faces = dict.fromkeys(engines, 0)
        for i, image in enumerate(frames):
            for key, engine in engines.items():
                start = time.perf_counter()
                found = engine(image, i * 33 + 1)
                elapsed = time.perf_counter() - start
                if i >= warmup:
                    times[key].append(elapsed)
                    faces[key] += found
    return [BenchRow(label, e, m, 1000 * float(np.mean(t)), faces[(e, m)]) for (e, m), t in times.items()]


def format_table(rows: list[BenchRow]) -> str:
    """A plain-text table with kaocap / MediaPipe ratios per thread setting and mode."""
    lines = [f"{'threads':<9}{'mode':<20}{'kaocap ms':>10}{'MediaPipe ms':>14}{'ratio':>8}{'faces k/mp':>12}"]
    by = {(r.threads, r.engine, r.mode): r for r in rows}
    for threads in dict.fromkeys(r.threads for r in rows):
        for mode in ("tracking", "detect every frame"):
            ours, peer = by.get((threads, "kaocap", mode)), by.get((threads, "MediaPipe", mode))
            if ours is None:
                continue
            peer_ms = f"{peer.ms_per_frame:.2f}" if peer else "-"
            ratio = f"{ours.ms_per_frame / peer.ms_per_frame:.2f}x" if peer else "-"
            found = f"{ours.faces_found}/{peer.faces_found}" if peer else f"{ours.faces_found}/-"
            lines.append(f"{threads:<9}{mode:<20}{ours.ms_per_frame:>10.2f}{peer_ms:>14}{ratio:>8}{found:>12}")
    return "\n".join(lines)
