"""``kaocap video``: many clips at once, on every core (a process pool) or on a Ray cluster.

Each clip is one :func:`kaocap.jobs.run` in a worker process, tracking as in a single run,
smoothing off, one inference thread per process; its JSON Lines go to ``<out>/<name>.jsonl``
(:func:`output_name`). A clip's results depend only on the clip and the configuration, so they
are the same whether it ran alone, in a pool or on a Ray worker (only the measured
``timings_ms`` differ). A clip that fails keeps its partial output and its error; the others
carry on.

>>> results = process_clips(["a.mp4", "b.mp4"], Path("out"), workers=2)   # doctest: +SKIP
>>> results = process_clips(clips, Path("out"), ray_address="auto")        # doctest: +SKIP
"""

from __future__ import annotations

import concurrent.futures as cf
import dataclasses
import multiprocessing
import os
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

from kaocap.config import PipelineConfig
from kaocap.errors import ConfigError, InputError, KaocapError


#: File suffixes a folder search takes for clips.
VIDEO_SUFFIXES = frozenset({".mp4", ".mov", ".mkv", ".avi", ".webm", ".m4v", ".mpg", ".mpeg"})


@dataclass(frozen=True, slots=True)
class ClipResult:
    """What one clip gave: its JSON Lines file, frames, frames with a face, faces in all,
    seconds of wall time in its worker, and the one-line error when it stopped early."""

    clip: str
    output: str
    frames: int = 0
    frames_with_face: int = 0
    faces: int = 0
    seconds: float = 0.0
    error: str | None = None


def find_clips(inputs: Iterable[str | Path]) -> list[Path]:
    """Video files named in ``inputs``, folders searched recursively, in a stable order."""
    paths = [Path(i) for i in inputs]
    clips: list[Path] = []
    for item in paths:
        if item.is_dir():
            clips += sorted(p for p in item.rglob("*") if p.suffix.lower() in VIDEO_SUFFIXES and p.is_file())
        elif item.is_file():
            clips.append(item)
        else:
            raise InputError(f"{item}: no such file or folder")
    if not clips:
        raise InputError("no video clips in " + ", ".join(map(str, paths)))
    return clips


def output_name(clip: Path, clips: Sequence[Path]) -> str:
    """``<stem>.jsonl``; clips sharing a stem get their path relative to the clips' common
    folder, with ``/`` written as ``__``."""
    if sum(c.stem == clip.stem for c in clips) == 1:
        return f"{clip.stem}.jsonl"
    root = Path(os.path.commonpath([c.resolve().parent for c in clips]))
    return str(clip.resolve().relative_to(root).with_suffix("")).replace(os.sep, "__") + ".jsonl"


def process_clip(clip: str, output: str, config: PipelineConfig, max_frames: int | None = None) -> ClipResult:
    """Run one clip into ``output`` (JSON Lines); errors are returned, never raised."""
    from kaocap.jobs import run

    faces = 0

    def count(result) -> None:
        nonlocal faces
        faces += len(result.faces)

    start = time.perf_counter()
    try:
        summary = run(clip, config, jsonl=output, max_frames=max_frames, on_result=count)
    except KaocapError as err:
        return ClipResult(clip, output, seconds=time.perf_counter() - start, error=str(err))
    error = None if summary.error is None else str(summary.error)
    return ClipResult(clip, output, summary.frames, summary.frames_with_face, faces, time.perf_counter() - start, error)


def offline_config(config: PipelineConfig | None) -> PipelineConfig:
    """The configuration every worker runs: ``config`` with smoothing off and one thread (the
    parallelism is across clips)."""
    config = config or PipelineConfig()
    return config.replace(filter=dataclasses.replace(config.filter, enabled=False),
                          runtime=dataclasses.replace(config.runtime, threads=1))  # fmt: skip


def process_clips(clips: Sequence[str | Path], out: Path, config: PipelineConfig | None = None, *,
                  workers: int | None = None, ray_address: str | None = None, max_frames: int | None = None,
                  on_done: Callable[[ClipResult], None] | None = None) -> list[ClipResult]:  # fmt: skip
    """Process ``clips`` into ``out`` with ``workers`` processes (default: one per core; 1 runs
    them here, one after another) or, with ``ray_address``, as Ray tasks on that cluster.
    Results come back in the order of ``clips``."""
    paths = [Path(c) for c in clips]
    out.mkdir(parents=True, exist_ok=True)
    cfg = offline_config(config)
    jobs = [(str(c), str(out / output_name(c, paths)), cfg, max_frames) for c in paths]
    if ray_address is not None:
        results = _on_ray(jobs, ray_address, on_done)
    elif (workers or len(os.sched_getaffinity(0))) <= 1:
        results = []
        for job in jobs:
            results.append(process_clip(*job))
            if on_done is not None:
                on_done(results[-1])
    else:
        results = _in_pool(jobs, workers or len(os.sched_getaffinity(0)), on_done)
    return results


def _in_pool(jobs: list[tuple], workers: int, on_done) -> list[ClipResult]:
    # spawn, not fork: the runtimes' thread pools do not survive a fork.
    context = multiprocessing.get_context("spawn")
    with cf.ProcessPoolExecutor(max_workers=min(workers, len(jobs)), mp_context=context) as pool:
        futures = {pool.submit(process_clip, *job): i for i, job in enumerate(jobs)}
        results: list[ClipResult | None] = [None] * len(jobs)
        for future in cf.as_completed(futures):
            results[futures[future]] = future.result()
            if on_done is not None:
                on_done(results[futures[future]])
    return [r for r in results if r is not None]


def _on_ray(jobs: list[tuple], address: str, on_done) -> list[ClipResult]:
    try:
        import ray
    except ImportError:
        raise ConfigError("--ray needs Ray: pip install 'kaocap[ray]'") from None
    try:
        ray.init(address=address, ignore_reinit_error=True, logging_level="ERROR", log_to_driver=False)
    except (ConnectionError, ValueError, RuntimeError) as err:
        raise ConfigError(f"cannot connect to the Ray cluster at {address}: {err}") from None
    try:
        task = ray.remote(num_cpus=1)(process_clip)
        refs = [task.remote(*job) for job in jobs]
        results = []
        for ref in refs:
            results.append(ray.get(ref))
            if on_done is not None:
                on_done(results[-1])
        return results
    finally:
        ray.shutdown()
