"""``kaocap video``: many clips at once, on every core (a process pool) or on a Ray cluster.

The clips are split into groups of at most :data:`BATCH` clips, at least one group per worker
process (or Ray task). A worker runs its group's clips side by side, one thread per clip, each
clip tracked as in a single run (smoothing off, one inference thread); the threads' calls of
kaocap's own networks are gathered into one batched call per network (:class:`Batcher`), so
they run at batch N for N clips. Each clip's JSON Lines go to ``<out>/<name>.jsonl``
(:func:`output_name`), in the format of ``kaocap run --jsonl`` (orjson writes it where installed).

A clip's results depend only on the clip and the configuration (kaocap's networks give every
face the same bits whatever else is in its batch), so they are the same whether it ran alone,
in a pool or on a Ray worker (only the measured ``timings_ms`` differ). A clip that fails keeps
its partial output and its error; the others carry on.

>>> results = process_clips(["a.mp4", "b.mp4"], Path("out"), workers=2)   # doctest: +SKIP
>>> results = process_clips(clips, Path("out"), ray_address="auto")        # doctest: +SKIP
"""

from __future__ import annotations

import concurrent.futures as cf
import contextlib
import copy
import dataclasses
import functools
import itertools
import logging
import multiprocessing
import os
import threading
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from kaocap._batch import Batcher, OneAtATime
from kaocap.config import PipelineConfig
from kaocap.errors import ConfigError, InputError, KaocapError
from kaocap.runtime import opencv_threads

log = logging.getLogger(__name__)

#: File suffixes a folder search takes for clips.
VIDEO_SUFFIXES = frozenset({".mp4", ".mov", ".mkv", ".avi", ".webm", ".m4v", ".mpg", ".mpeg"})
#: At most this many clips run side by side in one worker: the face network's batch size.
BATCH = 32


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


@dataclass(frozen=True, slots=True)
class Job:
    """One clip to run: where from and to. ``frames``: already decoded frames to run instead
    of decoding ``clip`` (``kaocap bench --offline``)."""

    clip: str
    output: str
    frames: tuple | None = None
    landmarks: bool = True  # the 478 points in the JSON Lines (kaocap run --no-landmarks leaves them out)


def process_clip(clip: str, output: str, config: PipelineConfig, max_frames: int | None = None) -> ClipResult:
    """Run one clip into ``output`` (JSON Lines); errors are returned, never raised."""
    return process_group([Job(clip, output)], config, max_frames)[0]


def process_group(jobs: Sequence[Job], config: PipelineConfig, max_frames: int | None = None,
                  on_done: Callable[[ClipResult], None] | None = None) -> list[ClipResult]:  # fmt: skip
    """Run ``jobs`` side by side in this process, one thread per clip, kaocap's own networks
    batched over the clips (:class:`Batcher`). Results in the order of ``jobs``."""
    batcher = Batcher(len(jobs))
    try:
        shared = _shared_pipeline(config, batcher)
    except KaocapError as err:
        return [ClipResult(j.clip, j.output, error=str(err)) for j in jobs]
    results: list[ClipResult | None] = [None] * len(jobs)
    stop = threading.Event()  # set on Ctrl-C: every clip stops after its frame, outputs whole

    def work(i: int) -> None:
        try:
            results[i] = _run_clip(jobs[i], shared, max_frames, stop)
        except Exception as err:  # a bug, not bad input: this clip fails alone
            log.debug("clip %s failed", jobs[i].clip, exc_info=True)
            results[i] = ClipResult(jobs[i].clip, jobs[i].output, error=f"{type(err).__name__}: {err}")
        finally:
            batcher.leave()
        if on_done is not None:
            on_done(results[i])

    threads = [threading.Thread(target=work, args=(i,), name=f"clip-{i}") for i in range(len(jobs))]
    with opencv_threads(config.runtime.threads):  # the crops' warps: OpenCV's pool spins
        for t in threads:
            t.start()
        try:
            for t in threads:
                t.join()
        except KeyboardInterrupt:
            stop.set()
            for t in threads:
                t.join()
            raise
    log.debug("networks: %d rows in %d calls", batcher.rows, batcher.calls)
    return [r for r in results if r is not None]


class _Frames:
    """Already decoded frames as a source (``kaocap bench --offline``)."""

    live, fps, ended_early = False, None, None

    def __init__(self, name: str, frames: tuple) -> None:
        self.name, self._frames = name, frames
        self.frame_count = len(frames)

    def __iter__(self):
        return iter(self._frames)

    def close(self) -> None:
        pass


def _run_clip(job: Job, shared, max_frames: int | None, stop: threading.Event) -> ClipResult:
    """One clip, tracked frame by frame into its JSON Lines by a copy of the ``shared``
    pipeline (:func:`_shared_pipeline`) with its own tracking state. Errors are returned,
    never raised."""
    from kaocap.capture import open_source

    start = time.perf_counter()
    counts = [0, 0, 0]  # frames, frames with a face, faces
    try:
        src = _Frames(job.clip, job.frames) if job.frames is not None else open_source(job.clip)
    except KaocapError as err:
        return ClipResult(job.clip, job.output, seconds=time.perf_counter() - start, error=str(err))
    error = None
    pipe = copy.copy(shared)
    pipe.reset()
    try:
        with contextlib.closing(src), pipe, _jsonl_writer()(job.output, landmarks=job.landmarks) as out:
            pipe.use_source(src)
            for frame in itertools.islice(src, max_frames):
                if stop.is_set():
                    return ClipResult(job.clip, job.output, *counts, time.perf_counter() - start, "interrupted")
                result = pipe.process(frame)
                out.write(result)
                counts[0], counts[1], counts[2] = counts[0] + 1, counts[1] + bool(result.faces), counts[2] + len(result.faces)
    except KaocapError as err:
        error = str(err)
    ended_early = getattr(src, "ended_early", None)
    if error is None and ended_early and (max_frames is None or counts[0] < max_frames):
        error = ended_early
    return ClipResult(job.clip, job.output, *counts, time.perf_counter() - start, error)


def _shared_pipeline(config: PipelineConfig, batcher: Batcher):
    """One pipeline whose networks every clip thread of a worker shares through shallow
    copies (``copy.copy`` then ``reset()``, which gives a copy its own tracking state):
    kaocap's own networks (which take a batch) run through ``batcher``, every other session
    one call at a time. The networks are those of :func:`_opened`, opened once per process.
    With MediaPipe's networks nothing is batched: the head model alone is kaocap's there, run
    on turned faces only, and a batch would wait for clips that never call it (onnxruntime
    takes calls from threads)."""
    pipe = _opened(config)
    if config.model != "kaocap":
        return copy.copy(pipe)
    return pipe.with_sessions(lambda role, session: batcher.share(role, session) if role in _OWN else session)


#: kaocap's own networks (kaocap.pipeline.NETWORK_ROLES): batched offline, and safe to call
#: from several threads (onnxruntime, OpenVINO); the others run one call at a time.
_OWN = ("face", "head")


@functools.lru_cache(maxsize=2)
def _opened(config: PipelineConfig):
    """The pipeline of ``config`` with its networks opened, once per worker process and
    configuration (opening them, sha256 checks included, costs about 0.3 s of CPU: a worker
    that runs several groups, or a benchmark after its warm-up, pays it once). Sessions that
    cannot take calls from several threads are wrapped one call at a time here, so that every
    group of the process shares the one lock."""
    from kaocap.pipeline import Pipeline

    return Pipeline(config).with_sessions(lambda role, session: session if role in _OWN else OneAtATime(session))


#: Decimals of the landmarks in ``Face.to_dict`` (px): the writer below rounds them as it does.
LANDMARK_DECIMALS = 2


@functools.cache
def _jsonl_writer():
    """JsonlWriter through orjson (a dependency; plain json if it is missing): the values of ``FrameResult.to_dict`` (floats
    written shortest round-trip, as json does, but ``-3.6e-05`` as ``-0.000036`` and NaN as
    null), the landmarks rounded as numpy arrays instead of 1434 Python floats a face (their
    ``tolist`` and its garbage collection were most of the cost): about 0.5 ms of CPU less a
    face (``tests/test_offline.py`` checks the values against ``kaocap run --jsonl``)."""
    from kaocap.stream._files import write_all
    from kaocap.stream.jsonl import JsonlWriter

    try:
        import orjson
    except ImportError:
        return JsonlWriter
    option = orjson.OPT_APPEND_NEWLINE | orjson.OPT_SERIALIZE_NUMPY

    class Writer(JsonlWriter):
        def write(self, result) -> None:
            if self._file is None:
                return super().write(result)
            row = result.to_dict(landmarks=False)
            if self.landmarks:
                for out, face in zip(row["faces"], result.faces):
                    out["landmarks"] = np.round(face.landmarks, LANDMARK_DECIMALS).astype(np.float64)
            try:
                write_all(self._file, orjson.dumps(row, option=option))
            except OSError as err:
                from kaocap.errors import OutputError

                raise OutputError(f"{self.name}: write failed ({err.strerror or err})") from None

    return Writer




def offline_config(config: PipelineConfig | None) -> PipelineConfig:
    """The configuration every worker runs: ``config`` with smoothing off and one thread (the
    parallelism is across clips)."""
    config = config or PipelineConfig()
    return config.replace(filter=dataclasses.replace(config.filter, enabled=False),
                          runtime=dataclasses.replace(config.runtime, threads=1))  # fmt: skip


def groups(jobs: Sequence[Job], count: int, max_frames: int | None = None) -> list[list[int]]:
    """Indices of ``jobs`` in at least ``count`` groups of at most :data:`BATCH`, of similar
    total frames (the frames given, else the count the file declares, at most ``max_frames``;
    largest first to the lightest group)."""
    count = max(1, count, -(-len(jobs) // BATCH))
    sizes = [len(j.frames) if j.frames is not None else _declared_frames(j.clip) for j in jobs]
    known = sorted(s for s in sizes if s)
    sizes = [min(s or (known[len(known) // 2] if known else 1), max_frames or s or 1) for s in sizes]
    members: list[list[int]] = [[] for _ in range(count)]
    load = [0] * count
    for i in sorted(range(len(jobs)), key=lambda i: -sizes[i]):
        g = min((g for g in range(count) if len(members[g]) < BATCH), key=lambda g: load[g])
        members[g].append(i)
        load[g] += sizes[i]
    return [sorted(m) for m in members if m]


def _declared_frames(path: str) -> int:
    """The frame count a video file declares, 0 when it cannot be read (it fails later, alone)."""
    import av

    try:
        with av.open(path) as container:
            return int(container.streams.video[0].frames) if container.streams.video else 0
    except (av.FFmpegError, OSError, ValueError):
        return 0


def process_clips(clips: Sequence[str | Path], out: Path, config: PipelineConfig | None = None, *,
                  workers: int | None = None, ray_address: str | None = None, max_frames: int | None = None,
                  on_done: Callable[[ClipResult], None] | None = None, landmarks: bool = True) -> list[ClipResult]:  # fmt: skip
    """Process ``clips`` into ``out`` with ``workers`` processes (default: one per core; 1 runs
    them here) or, with ``ray_address``, as Ray tasks on that cluster. Results come back in
    the order of ``clips``; ``on_done`` is called as each worker's group of clips ends.
    ``landmarks`` False leaves the 478 points out of the JSON Lines."""
    paths = [Path(c) for c in clips]
    out.mkdir(parents=True, exist_ok=True)
    cfg = offline_config(config)
    jobs = [Job(str(c), str(out / output_name(c, paths)), landmarks=landmarks) for c in paths]
    workers = workers or len(os.sched_getaffinity(0))
    if ray_address is not None:
        return _on_ray(jobs, cfg, max_frames, ray_address, on_done)
    if workers <= 1:
        results: list[ClipResult | None] = [None] * len(jobs)
        for group in groups(jobs, 1, max_frames):
            for i, r in zip(group, process_group([jobs[i] for i in group], cfg, max_frames, on_done)):
                results[i] = r
        return [r for r in results if r is not None]
    return _in_pool(jobs, groups(jobs, workers, max_frames), cfg, max_frames, workers, on_done)


def _in_pool(jobs: list[Job], parts: list[list[int]], cfg: PipelineConfig, max_frames, workers: int,
             on_done) -> list[ClipResult]:  # fmt: skip
    # spawn, not fork: the runtimes' thread pools do not survive a fork.
    context = multiprocessing.get_context("spawn")
    results: list[ClipResult | None] = [None] * len(jobs)
    with cf.ProcessPoolExecutor(max_workers=min(workers, len(parts)), mp_context=context) as pool:
        futures = {pool.submit(process_group, [jobs[i] for i in part], cfg, max_frames): part for part in parts}
        for future in cf.as_completed(futures):
            for i, r in zip(futures[future], future.result()):
                results[i] = r
                if on_done is not None:
                    on_done(r)
    return [r for r in results if r is not None]


def _on_ray(jobs: list[Job], cfg: PipelineConfig, max_frames, address: str, on_done) -> list[ClipResult]:
    try:
        import ray
    except ImportError:
        raise ConfigError("--ray needs Ray: pip install 'kaocap[ray]'") from None
    try:
        ray.init(address=address, ignore_reinit_error=True, logging_level="ERROR", log_to_driver=False)
    except (ConnectionError, ValueError, RuntimeError) as err:
        raise ConfigError(f"cannot connect to the Ray cluster at {address}: {err}") from None
    try:
        parts = groups(jobs, int(ray.cluster_resources().get("CPU", 1)), max_frames)  # a group per CPU
        task = ray.remote(num_cpus=1)(process_group)
        refs = [task.remote([jobs[i] for i in part], cfg, max_frames) for part in parts]
        results: list[ClipResult | None] = [None] * len(jobs)
        for part, ref in zip(parts, refs):
            for i, r in zip(part, ray.get(ref)):
                results[i] = r
                if on_done is not None:
                    on_done(r)
        return [r for r in results if r is not None]
    finally:
        ray.shutdown()
