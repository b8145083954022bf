"""Jobs that the CLI runs, as plain functions: the CLI is this API.

>>> from kaocap.jobs import run                                     # doctest: +SKIP
>>> summary = run("clip.mp4", jsonl="out.jsonl", csv="out.csv")
"""

from __future__ import annotations

import contextlib
import itertools
import logging
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from kaocap.calibration import Calibration
from kaocap.capture import Frame, ReconnectingSource, Source, default_image, open_source
from kaocap.config import PipelineConfig
from kaocap.errors import ConfigError, InputError, KaocapError
from kaocap.pipeline import Pipeline
from kaocap.runtime import opencv_threads
from kaocap.types import FrameResult

log = logging.getLogger(__name__)

#: The spec that names the embedded default input (a public-domain NASA portrait).
DEFAULT_INPUT = "default"


@dataclass
class RunSummary:
    """What a job did. error: the one-line message when it stopped early (outputs stay valid).

    stage_ms: wall time per pipeline stage for every frame (ms). cpu_seconds: process CPU time
    (all threads) over the job. stage_cpu_s: process CPU time spent while the loop was in each of
    its parts: "capture" (waiting for and decoding the next frame), "pipeline" (all networks and
    post-processing), "outputs" (writers and senders); background threads (camera reader,
    sender retries) count towards the part that ran meanwhile. senders: per-target send
    statistics (see stream.senders).
    """

    source: str
    frames: int = 0
    frames_with_face: int = 0
    seconds: float = 0.0
    cpu_seconds: float = 0.0
    last: FrameResult | None = None
    error: KaocapError | None = None
    stopped: bool = False
    outputs: list[str] = field(default_factory=list)
    stage_ms: dict[str, list[float]] = field(default_factory=dict)
    stage_cpu_s: dict[str, float] = field(default_factory=dict)
    senders: dict[str, dict] = field(default_factory=dict)

    @property
    def ms_per_frame(self) -> float:
        return 1000.0 * self.seconds / self.frames if self.frames else 0.0

    @property
    def cpu_percent(self) -> float:
        """Process CPU use over the job, % of one core."""
        return 100.0 * self.cpu_seconds / self.seconds if self.seconds else 0.0

    def stats_lines(self) -> list[str]:
        """Per-stage wall time (mean / p99 ms) and CPU use, for ``kaocap run --stats``."""
        lines = [(f"{self.frames / self.seconds if self.seconds else 0:.1f} frames/s, "
                  f"CPU {self.cpu_percent:.0f}% of one core")]  # fmt: skip
        for part, cpu in self.stage_cpu_s.items():
            share = 100.0 * cpu / self.seconds if self.seconds else 0.0
            lines.append(f"  cpu {part:<8} {share:5.1f}% of one core   {1000 * cpu / max(1, self.frames):7.2f} ms/frame")
        for stage, values in self.stage_ms.items():
            lines.append(f"  {stage:<12} mean {np.mean(values):7.2f} ms   p99 {np.percentile(values, 99):7.2f} ms")
        for name, st in self.senders.items():
            lines.append(f"  send {name}: " + ", ".join(f"{k} {v:.2f}" if isinstance(v, float) else f"{k} {v}"
                                                        for k, v in st.items()))  # fmt: skip
        return lines


class _Throttle:
    """At most ``max_fps`` frames per second: live frames over the rate are dropped (never
    queued); file frames wait their turn."""

    def __init__(self, max_fps: float | None, live: bool) -> None:
        if max_fps is not None and max_fps <= 0:
            raise ConfigError(f"max_fps must be > 0, got {max_fps}")
        self.period = 1.0 / max_fps if max_fps else 0.0
        self.live, self._next = live, 0.0

    def admit(self) -> bool:
        if not self.period:
            return True
        now = time.perf_counter()
        if now < self._next:
            if self.live:
                return False
            time.sleep(self._next - now)
            now = self._next
        self._next = max(self._next + self.period, now) if self._next else now + self.period
        return True


class _DefaultSource:
    """The embedded default input as a one-frame source."""

    name, live, fps, frame_count = "default (NASA astronaut portrait, public domain)", False, None, 1

    def __iter__(self) -> Iterator[Frame]:
        yield Frame(default_image(), 0, 0)

    def close(self) -> None:
        pass


def open_input(spec: str | int | Path | None, on_lost: Callable[[], None] | None = None,
               stop: threading.Event | None = None) -> Source:  # fmt: skip
    """``None`` or "default" -> the embedded image; a camera -> a source that reconnects on
    its own until ``stop`` (``on_lost`` is called once per outage); anything else ->
    :func:`open_source`."""
    if spec is None or spec == DEFAULT_INPUT:
        return _DefaultSource()
    if isinstance(spec, int) or (isinstance(spec, str) and spec.strip().isdigit()):
        return ReconnectingSource(lambda: open_source(spec), name=f"camera {spec}", on_lost=on_lost, stop=stop)
    return open_source(spec)


def _outputs(stack: contextlib.ExitStack, fps: float, *, jsonl, csv, preview, send, landmarks: bool):
    """Open every output; returns callables ``(result, frame, captured_at)`` and the fan-out."""
    from kaocap.stream.csv_livelink import LiveLinkCsvWriter
    from kaocap.stream.jsonl import JsonlWriter
    from kaocap.stream.preview import PreviewWriter

    writers = []
    if jsonl is not None:
        writers.append(stack.enter_context(JsonlWriter(jsonl, landmarks=landmarks)))
    if csv is not None:
        writers.append(stack.enter_context(LiveLinkCsvWriter(csv, fps=fps)))
    if preview is not None:
        writers.append(stack.enter_context(PreviewWriter(preview, fps=fps)))
    calls = [_writer_call(w) for w in writers]
    fanout = None
    if send:
        from kaocap.stream.senders import Fanout

        fanout = stack.enter_context(Fanout.from_specs(send))
        calls.append(lambda r, f, t: fanout.send(r, captured_at=t))
    return calls, fanout


def run(
    source: str | int | Path | None = None,
    config: PipelineConfig | None = None,
    *,
    jsonl: str | Path | None = None,
    csv: str | Path | None = None,
    preview: str | Path | None = None,
    send: Sequence[str] = (),
    landmarks: bool = True,
    max_frames: int | None = None,
    max_fps: float | None = None,
    stop: threading.Event | None = None,
    on_result: Callable[[FrameResult], None] | None = None,
    progress: bool = False,
) -> RunSummary:
    """Capture every frame of ``source``; write files (JSON Lines, Live Link Face CSV, preview)
    and send to live targets (``send`` specs, see :func:`kaocap.stream.senders.open_sender`).

    An input that fails mid-stream stops the job: the error is kept in the summary and every
    output written so far is closed complete and valid. Errors before the first frame raise.
    Setting ``stop`` ends the job cleanly after the current frame.
    """
    lost = _FaceLost()
    src = open_input(source, on_lost=lost, stop=stop)
    summary = RunSummary(str(getattr(src, "name", source)))
    fps = float(getattr(src, "fps", None) or 30.0)
    with contextlib.ExitStack() as stack:
        stack.callback(src.close)
        pipe = stack.enter_context(Pipeline(config))
        stack.enter_context(opencv_threads(pipe.config.runtime.threads))  # the --threads cap covers crops too
        calls, fanout = _outputs(stack, fps, jsonl=jsonl, csv=csv, preview=preview, send=send, landmarks=landmarks)
        lost.fanout, lost.summary = fanout, summary
        summary.outputs = [str(p) for p in (jsonl, csv, preview) if p is not None] + [f"send {s}" for s in send]
        bar = stack.enter_context(_progress(src, max_frames)) if progress else None
        throttle = _Throttle(max_fps, bool(getattr(src, "live", False)))
        started, cpu_started = time.perf_counter(), time.process_time()
        try:
            _loop(pipe, src, max_frames, throttle, calls, summary, stop, on_result, bar)
        except KaocapError as exc:
            if summary.frames == 0:
                raise
            log.debug("job stopped early", exc_info=True)
            summary.error = exc
        summary.seconds = time.perf_counter() - started
        summary.cpu_seconds = time.process_time() - cpu_started
        if fanout is not None:
            summary.senders = fanout.stats()
        ended_early = getattr(src, "ended_early", None)
        if summary.error is None and ended_early and (max_frames is None or summary.frames < max_frames):
            summary.error = InputError(ended_early)
    return summary


class _FaceLost:
    """Called when a live source is lost: live targets hear "no face" (each in its own
    protocol's way) instead of freezing on the last pose. Files get nothing: no frame came."""

    def __init__(self) -> None:
        self.fanout = None
        self.summary: RunSummary | None = None

    def __call__(self) -> None:
        last = self.summary.last if self.summary is not None else None
        if self.fanout is None or last is None:
            return
        self.fanout.send(FrameResult(last.timestamp_ms + 1, last.frame_index, last.image_size))


def _loop(pipe: Pipeline, src: Source, max_frames, throttle: _Throttle, calls, summary: RunSummary,
          stop: threading.Event | None, on_result, bar) -> None:  # fmt: skip
    pipe.use_source(src)
    cpu = summary.stage_cpu_s
    frames = itertools.islice(src, max_frames)
    while True:
        mark = time.process_time()
        frame = next(frames, None)
        cpu["capture"] = cpu.get("capture", 0.0) + time.process_time() - mark
        if frame is None:
            return
        if stop is not None and stop.is_set():
            summary.stopped = True
            return
        if not throttle.admit():
            continue
        captured_at, mark = time.perf_counter(), time.process_time()
        result = pipe.process(frame)
        cpu["pipeline"] = cpu.get("pipeline", 0.0) + time.process_time() - mark
        mark = time.process_time()
        summary.frames += 1
        summary.frames_with_face += bool(result.faces)
        summary.last = result
        for stage, ms in result.timings_ms.items():
            summary.stage_ms.setdefault(stage, []).append(ms)
        for call in calls:
            call(result, frame, captured_at)
        if on_result is not None:
            on_result(result)
        if bar is not None:
            bar.update(1)
        cpu["outputs"] = cpu.get("outputs", 0.0) + time.process_time() - mark


def _wants_image(writer: object) -> bool:
    return bool(getattr(writer, "needs_image", False))


def _writer_call(writer):
    """``call(result, frame, t)`` writing one frame to ``writer`` (with the image if it wants it)."""
    if _wants_image(writer):
        return lambda r, f, t: writer.write(r, f.image)
    return lambda r, f, t: writer.write(r)


def _progress(src: Source, max_frames: int | None):
    from tqdm import tqdm

    total = getattr(src, "frame_count", None)
    if max_frames is not None:
        total = min(total, max_frames) if total else max_frames
    return tqdm(total=total, unit="frame", desc=Path(str(src.name)).name[:30], leave=False)


def calibrate(source: str | int | Path | None, out: str | Path, *, seconds: float = 3.0,
              config: PipelineConfig | None = None) -> Calibration:  # fmt: skip
    """Record ``seconds`` of a resting face from ``source`` and save the neutral calibration."""
    cfg = (config or PipelineConfig()).replace(calibration="")
    results: list[FrameResult] = []
    src = open_input(source)
    with contextlib.closing(src), Pipeline(cfg) as pipe:
        first = None
        for frame in src:
            first = frame.timestamp_ms if first is None else first
            if frame.timestamp_ms - first > seconds * 1000:
                break
            results.append(pipe.process(frame))
    calibration = Calibration.from_results(results, min_frames=1 if len(results) < 10 else 10, model=cfg.model)
    calibration.save(out)
    return calibration
