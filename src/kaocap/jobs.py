"""Jobs that the CLI runs, as plain functions: the CLI is this API.

>>> from kaocap.jobs import run                                     # doctest: +SKIP
>>> summary = run("clip.mp4", jsonl="out.jsonl", csv="out.csv")
"""

from __future__ import annotations

import contextlib
import logging
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

from kaocap.calibration import Calibration
from kaocap.capture import Frame, Source, default_image, open_source
from kaocap.config import PipelineConfig
from kaocap.errors import InputError, KaocapError
from kaocap.pipeline import Pipeline
from kaocap.types import FrameResult

log = logging.getLogger(__name__)

#: The spec that names the embedded default input (a public-domain NASA portrait).
DEFAULT_INPUT = "default"


@dataclass
class RunSummary:
    """What a job did. error: the one-line message when it stopped early (outputs stay valid)."""

    source: str
    frames: int = 0
    frames_with_face: int = 0
    seconds: float = 0.0
    last: FrameResult | None = None
    error: KaocapError | None = None
    outputs: list[str] = field(default_factory=list)

    @property
    def ms_per_frame(self) -> float:
        return 1000.0 * self.seconds / self.frames if self.frames else 0.0


class _DefaultSource:
    """The embedded default input as a one-frame source."""

    name, live, fps, frame_count = "default (NASA astronaut portrait, public domain)", False, None, 1

    def __iter__(self) -> Iterator[Frame]:
        yield Frame(default_image(), 0, 0)

    def close(self) -> None:
        pass


def open_input(spec: str | int | Path | None) -> Source:
    """``None`` or "default" -> the embedded image; anything else -> :func:`open_source`."""
    if spec is None or spec == DEFAULT_INPUT:
        return _DefaultSource()
    return open_source(spec)


def _writers(stack: contextlib.ExitStack, jsonl, csv, preview, fps: float, landmarks: bool) -> list:
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
    return writers


def run(
    source: str | int | Path | None = None,
    config: PipelineConfig | None = None,
    *,
    jsonl: str | Path | None = None,
    csv: str | Path | None = None,
    preview: str | Path | None = None,
    landmarks: bool = True,
    max_frames: int | None = None,
    on_result: Callable[[FrameResult], None] | None = None,
    progress: bool = False,
) -> RunSummary:
    """Capture every frame of ``source`` and write the requested outputs.

    An input that fails mid-stream stops the job: the error is kept in the summary and every
    output written so far is closed complete and valid. Errors before the first frame raise.
    """
    src = open_input(source)
    summary = RunSummary(str(getattr(src, "name", source)))
    fps = float(getattr(src, "fps", None) or 30.0)
    with contextlib.ExitStack() as stack:
        stack.callback(src.close)
        pipe = stack.enter_context(Pipeline(config))
        writers = _writers(stack, jsonl, csv, preview, fps, landmarks)
        summary.outputs = [str(p) for p in (jsonl, csv, preview) if p is not None]
        bar = _progress(src, max_frames) if progress else None
        if bar is not None:
            stack.callback(bar.close)
        started = time.perf_counter()
        try:
            for frame, result in pipe.stream_frames(src, max_frames):
                summary.frames += 1
                summary.frames_with_face += bool(result.faces)
                summary.last = result
                for writer in writers:
                    writer.write(result, frame.image) if _wants_image(writer) else writer.write(result)
                if on_result is not None:
                    on_result(result)
                if bar is not None:
                    bar.update(1)
        except KaocapError as exc:
            if summary.frames == 0:
                raise
            log.debug("job stopped early", exc_info=True)
            summary.error = exc
        summary.seconds = time.perf_counter() - started
        ended_early = getattr(src, "ended_early", None)
        if summary.error is None and ended_early and (max_frames is None or summary.frames < max_frames):
            summary.error = InputError(ended_early)
    return summary


def _wants_image(writer: object) -> bool:
    return bool(getattr(writer, "needs_image", False))


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
    calibration = Calibration.from_results(results, min_frames=1 if len(results) < 10 else 10)
    calibration.save(out)
    return calibration
