"""Side-by-side speed of kaocap and MediaPipe's FaceLandmarker on the same decoded frames.

Both engines get the same frames, interleaved frame by frame so that machine noise hits both
alike. Rows: one core (every engine pinned to one CPU, kaocap with 1 thread) and each engine's
default thread count. Modes: tracking (MediaPipe VIDEO mode) and detect-every-frame (IMAGE mode).
"""

from __future__ import annotations

import contextlib
import logging
import os
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from numpy.typing import NDArray

from kaocap.config import MODELS, PipelineConfig, RuntimeConfig, TrackingConfig
from kaocap.pipeline import Pipeline

log = logging.getLogger(__name__)


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


def _kaocap(stack: contextlib.ExitStack, tracking: bool, threads: int, model: str) -> Engine:
    config = PipelineConfig(model=model, tracking=TrackingConfig(enabled=tracking), runtime=RuntimeConfig(threads=threads))
    pipe = stack.enter_context(Pipeline(config))
    return lambda image, ts: len(pipe(image, ts).faces)


def _mediapipe(stack: contextlib.ExitStack, mode: str) -> Engine:
    from kaocap.eval.peer import MediaPipePeer

    peer = stack.enter_context(MediaPipePeer(mode=mode))
    return lambda image, ts: len(peer.raw(image, ts).face_landmarks)


def _engines(stack: contextlib.ExitStack, threads: int, with_peer: bool, models: tuple[str, ...]) -> dict[tuple[str, str], Engine]:
    engines: dict[tuple[str, str], Engine] = {}
    for model in models:
        engines[(f"kaocap[{model}]", "tracking")] = _kaocap(stack, True, threads, model)
        engines[(f"kaocap[{model}]", "detect every frame")] = _kaocap(stack, False, threads, model)
    if with_peer:
        engines[("MediaPipe", "tracking")] = _mediapipe(stack, "video")
        engines[("MediaPipe", "detect every frame")] = _mediapipe(stack, "image")
    return engines


def bench(frames: list[NDArray[np.uint8]], *, threads: int | None = None, one_core: bool = False,
          with_peer: bool = True, warmup: int = 5, models: tuple[str, ...] = MODELS) -> list[BenchRow]:  # fmt: skip
    """Time every engine on ``frames``, interleaved frame by frame: kaocap with each face model
    of ``models`` (engine ``kaocap[<model>]``) and MediaPipe's FaceLandmarker."""
    label = "1 core" if one_core else "default"
    with pinned(one_core), contextlib.ExitStack() as stack:
        engines = _engines(stack, threads or 1, with_peer, models)
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
    """A plain-text table: per thread setting, mode and kaocap face model, ms per frame, the
    speed-up over MediaPipe (MediaPipe ms / kaocap ms) and faces found by each."""
    head = f"{'threads':<9}{'mode':<20}{'engine':<19}{'ms':>8}{'MediaPipe ms':>14}{'speed-up':>10}{'faces k/mp':>12}"
    lines = [head]
    by = {(r.threads, r.engine, r.mode): r for r in rows}
    engines = [e for e in dict.fromkeys(r.engine for r in rows) if e != "MediaPipe"]
    for threads in dict.fromkeys(r.threads for r in rows):
        for mode in ("tracking", "detect every frame"):
            peer = by.get((threads, "MediaPipe", mode))
            for engine in engines:
                ours = by.get((threads, engine, mode))
                if ours is None:
                    continue
                peer_ms = f"{peer.ms_per_frame:.2f}" if peer else "-"
                ratio = f"{peer.ms_per_frame / ours.ms_per_frame:.2f}x" if peer else "-"
                found = f"{ours.faces_found}/{peer.faces_found}" if peer else f"{ours.faces_found}/-"
                lines.append(f"{threads:<9}{mode:<20}{engine:<19}{ours.ms_per_frame:>8.2f}{peer_ms:>14}{ratio:>10}{found:>12}")
    return "\n".join(lines)


_NETWORKS = {"detector": "mediapipe_face_detector", "landmarks": "mediapipe_face_landmarks",
             "blendshapes": "mediapipe_face_blendshapes"}  # fmt: skip


def bench_runtimes(repeats: int = 200, threads: int = 1) -> dict[str, dict[str, float]]:
    """Median ms per call of every network on every installed runtime that reads its file."""
    from kaocap.models import model_path
    from kaocap.runtime import RUNTIME_SUFFIXES, available_runtimes, open_session

    rng = np.random.default_rng(0)
    table: dict[str, dict[str, float]] = {}
    for role, model_id in _NETWORKS.items():
        path = model_path(model_id)
        for runtime in available_runtimes():
            if path.suffix not in RUNTIME_SUFFIXES[runtime]:
                continue
            session = open_session(path, runtime, threads=threads)
            feeds = {s.name: rng.random([max(d, 1) for d in s.shape]).astype(s.dtype) for s in session.inputs}
            table.setdefault(role, {})[runtime] = _median_ms(lambda s=session, f=feeds: s.run(f), repeats)
    return table


def _median_ms(fn: Callable[[], object], repeats: int) -> float:
    for _ in range(10):
        fn()
    samples = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        samples.append(time.perf_counter() - start)
    return 1000 * float(np.median(samples))


def format_runtimes(table: dict[str, dict[str, float]]) -> str:
    runtimes = sorted({r for row in table.values() for r in row})
    lines = [f"{'network':<13}" + "".join(f"{r:>13}" for r in runtimes) + "   fastest"]
    for role, row in table.items():
        cells = "".join(f"{row[r]:>13.3f}" if r in row else f"{'-':>13}" for r in runtimes)
        lines.append(f"{role:<13}{cells}   {min(row, key=row.get)}")
    return "\n".join(lines)


@dataclass(frozen=True, slots=True)
class BatchRow:
    """kaocap's face model on one runtime at one batch size: median ms per call, per face."""

    runtime: str
    file: str
    batch: int
    ms_per_call: float

    @property
    def ms_per_face(self) -> float:
        return self.ms_per_call / self.batch

    @property
    def faces_per_s(self) -> float:
        return 1000.0 * self.batch / self.ms_per_call


def face_model_files(runtimes: Sequence[str]) -> dict[str, Path]:
    """The file each runtime runs kaocap's face model from: the packaged ONNX for onnxruntime
    and OpenVINO, its TFLite fp32 export for LiteRT (converted once into the cache with
    ``kaocap[export]``; left out, with a warning, where the converter is not installed)."""
    from kaocap.errors import KaocapError
    from kaocap.models import KAOCAP_FACE_MODEL, cache_dir, model_path, sha256_file

    onnx = model_path(KAOCAP_FACE_MODEL)
    files = {r: onnx for r in runtimes if r in ("onnxruntime", "openvino")}
    if "litert" in runtimes:
        folder = cache_dir() / "exports" / sha256_file(onnx)[:16]
        tflite = folder / f"{onnx.stem}_fp32.tflite"
        if not tflite.is_file():
            try:
                from kaocap.export.calibration import face_crops
                from kaocap.export.convert import export_model

                export_model(onnx, folder, face_crops(None, 128), ["tflite-fp32"], runtimes=["litert"])
            except KaocapError as err:
                log.warning("LiteRT left out: %s", err)
        if tflite.is_file():
            files["litert"] = tflite
    return files


def bench_batches(runtimes: Sequence[str], batches: Sequence[int], *, repeats: int = 30) -> list[BatchRow]:
    """kaocap's face model on every runtime at every batch size, 1 thread, median of
    ``repeats`` calls on random crops (the network's cost does not depend on the pixels)."""
    from kaocap.blendshapes.learned import LearnedModel

    rows = []
    rng = np.random.default_rng(0)
    for runtime, path in face_model_files(runtimes).items():
        model = LearnedModel(path, runtime, threads=1)
        for batch in batches:
            feeds = {"image": rng.random((batch, 3, model.image_size, model.image_size), dtype=np.float32)}
            rows.append(BatchRow(runtime, path.name, batch, _median_ms(lambda m=model, f=feeds: m.run(f), repeats)))
    return rows


def format_batches(rows: list[BatchRow]) -> str:
    lines = [f"{'runtime':<13}{'file':<34}{'batch':>6}{'ms/call':>10}{'ms/face':>10}{'faces/s':>10}"]
    for r in rows:
        lines.append(f"{r.runtime:<13}{r.file:<34}{r.batch:>6}{r.ms_per_call:>10.2f}{r.ms_per_face:>10.3f}{r.faces_per_s:>10.0f}")
    return "\n".join(lines)


@dataclass(frozen=True, slots=True)
class OfflineRow:
    """One engine over every clip's decoded frames in ``processes`` processes: faces found,
    wall seconds from the common start (a barrier) to the last process's end, and CPU seconds
    of the processes (every thread) meanwhile, over all rounds. On a machine that other jobs
    load, faces per CPU second moves less than faces per second."""

    engine: str
    processes: int
    frames: int
    faces: int
    seconds: float
    cpu_seconds: float = 0.0

    @property
    def faces_per_s(self) -> float:
        return self.faces / self.seconds if self.seconds else 0.0

    @property
    def faces_per_cpu_s(self) -> float:
        return self.faces / self.cpu_seconds if self.cpu_seconds else 0.0


#: Engines of :func:`bench_offline`: kaocap's offline path (``kaocap video``: clips side by
#: side, tracking, face network batched over them, JSON Lines written with the landmarks or,
#: as ``kaocap video --no-landmarks``, without) and MediaPipe's FaceLandmarker in IMAGE mode
#: (one landmarker per process, no output written).
OFFLINE_ENGINES = ("kaocap", "kaocap, no landmarks", "MediaPipe IMAGE")


def bench_offline(clips: Sequence[str | Path], *, frames: int = 100, workers: int | None = None,
                  rounds: int = 2, config: PipelineConfig | None = None,
                  with_peer: bool = True, landmarks: bool = True) -> list[OfflineRow]:  # fmt: skip
    """faces/s of ``kaocap video`` against MediaPipe's FaceLandmarker in IMAGE mode on the same
    decoded frames (the first ``frames`` of every clip). Each engine runs in ``workers``
    processes (default: one per core), each decoding its share of the clips (the same share for
    both engines) before a common start; MediaPipe (left out unless ``with_peer``) also in one
    process. Engines alternate, ``rounds`` times. kaocap runs with
    ``config`` (default: ``model="kaocap"``) as ``kaocap video`` would, writing its JSON Lines
    with the 478 landmarks unless ``landmarks`` is False (MediaPipe writes nothing).

    >>> print(format_offline(bench_offline(find_clips(["clips/"]), frames=100)))  # doctest: +SKIP
    """
    from kaocap.offline import Job, groups, offline_config

    workers = workers or len(os.sched_getaffinity(0))
    cfg = offline_config(config or PipelineConfig(model="kaocap"))
    jobs = [Job(str(c), "") for c in clips]
    runs = [(OFFLINE_ENGINES[0] if landmarks else OFFLINE_ENGINES[1], workers)]
    if with_peer:
        runs += [("MediaPipe IMAGE", workers)] + ([("MediaPipe IMAGE", 1)] if workers > 1 else [])
    totals: dict[tuple[str, int], list[float]] = {run: [0, 0, 0.0, 0.0] for run in runs}
    for _ in range(rounds):
        for engine, n in runs:
            parts = [[str(clips[i]) for i in part] for part in groups(jobs, n)] if n > 1 else [[str(c) for c in clips]]
            got = _offline_run(engine, parts, frames, cfg)
            for k, v in enumerate(got):
                totals[(engine, n)][k] += v
    return [OfflineRow(e, n, int(t[0]), int(t[1]), t[2], t[3]) for (e, n), t in totals.items()]


def _offline_run(engine: str, parts: list[list[str]], frames: int, cfg: PipelineConfig) -> tuple[int, int, float, float]:
    """(frames, faces, wall s, CPU s) of ``engine`` with one process per part of the clips."""
    import multiprocessing

    context = multiprocessing.get_context("spawn")
    barrier, queue = context.Barrier(len(parts)), context.Queue()
    procs = [context.Process(target=_offline_worker, args=(engine, part, frames, cfg, barrier, queue), daemon=True)
             for part in parts]  # fmt: skip
    for p in procs:
        p.start()
    try:
        reports = [queue.get(timeout=900) for _ in procs]
    finally:
        for p in procs:
            p.join(timeout=60)
    errors = [r[1] for r in reports if r[0] == "error"]
    if errors:
        from kaocap.errors import KaocapError

        raise KaocapError(f"offline bench, {engine}: {errors[0]}")
    start, end = min(r[3] for r in reports), max(r[4] for r in reports)
    return sum(r[1] for r in reports), sum(r[2] for r in reports), end - start, sum(r[5] for r in reports)


def _offline_worker(engine: str, clips: list[str], frames: int, cfg: PipelineConfig, barrier, queue) -> None:
    """Decode ``clips``, wait for the other processes, run ``engine``, report
    ("ok", frames, faces, start, end, CPU s) on ``queue`` (or ("error", message))."""
    import tempfile

    try:
        decoded = {c: tuple(_decode(c, frames)) for c in clips}
        with contextlib.ExitStack() as stack:
            run = _offline_engine(stack, engine, cfg, stack.enter_context(tempfile.TemporaryDirectory()),
                                  next(iter(decoded.values()))[:2])  # fmt: skip
            barrier.wait(timeout=900)
            start, cpu = time.perf_counter(), time.process_time()
            faces = run(decoded)
            end, cpu = time.perf_counter(), time.process_time() - cpu
        queue.put(("ok", sum(map(len, decoded.values())), faces, start, end, cpu))
    except Exception as err:  # noqa: BLE001 (reported to the parent, which raises it)
        barrier.abort()
        queue.put(("error", f"{type(err).__name__}: {err}"))


def _decode(clip: str, frames: int) -> list:
    from kaocap.capture import open_source

    src = open_source(clip)
    with contextlib.closing(src):
        return [f for _, f in zip(range(frames), src)]


def _offline_engine(stack: contextlib.ExitStack, engine: str, cfg: PipelineConfig, folder: str,
                    warm_up: tuple) -> Callable[[dict], int]:  # fmt: skip
    if engine in OFFLINE_ENGINES[:2]:
        from kaocap.offline import Job, process_group

        landmarks = engine == OFFLINE_ENGINES[0]

        # Warm-up (as MediaPipe's landmarker is made before the start): imports, runtimes loaded.
        process_group([Job("warm-up", str(Path(folder) / "warm-up.jsonl"), warm_up)], cfg)

        def run(decoded: dict) -> int:
            jobs = [Job(c, str(Path(folder) / f"{i}.jsonl"), f, landmarks) for i, (c, f) in enumerate(decoded.items())]
            results = process_group(jobs, cfg)
            failed = [r.error for r in results if r.error]
            if failed:
                raise RuntimeError(failed[0])
            return sum(r.faces for r in results)

        return run
    from kaocap.eval.peer import MediaPipePeer

    peer = stack.enter_context(MediaPipePeer(mode="image", max_faces=cfg.max_faces))
    for frame in warm_up:
        peer.raw(frame.image)
    return lambda decoded: sum(len(peer.raw(f.image).face_landmarks) for fs in decoded.values() for f in fs)


def format_offline(rows: list[OfflineRow]) -> str:
    """faces/s and faces per CPU second per engine and process count, and kaocap's ratio to
    each MediaPipe row by both."""
    ours = next((r for r in rows if r.engine in OFFLINE_ENGINES[:2]), None)
    head = f"{'engine':<22}{'processes':>10}{'frames':>8}{'faces':>8}{'s':>8}{'faces/s':>9}{'faces/cpu-s':>13}"
    lines = [head + f"{'kaocap / it':>13}{'by cpu-s':>10}"]
    for r in rows:
        mine = ours is not None and r is not ours and r.faces_per_s and r.faces_per_cpu_s
        ratio = f"{ours.faces_per_s / r.faces_per_s:.2f}x" if mine else "-"
        by_cpu = f"{ours.faces_per_cpu_s / r.faces_per_cpu_s:.2f}x" if mine else "-"
        lines.append(f"{r.engine:<22}{r.processes:>10}{r.frames:>8}{r.faces:>8}{r.seconds:>8.2f}{r.faces_per_s:>9.1f}"
                     f"{r.faces_per_cpu_s:>13.1f}{ratio:>13}{by_cpu:>10}")  # fmt: skip
    return "\n".join(lines)
