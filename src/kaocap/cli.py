"""``kaocap`` command line. Each subcommand calls one public function (kaocap.jobs, kaocap.bench).

Exit codes: 0 done; 1 unexpected failure; 2 bad usage or config; 3 unreadable input or lost
source; 4 model or runtime problem; 5 output cannot be written; 130 interrupted.
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import logging
import os
import signal
import sys
import threading
import time
from collections.abc import Iterator, Sequence
from pathlib import Path

from kaocap.config import MODELS, PipelineConfig, load_config, load_file
from kaocap.errors import ConfigError, InputError, KaocapError
from kaocap.runtime import RUNTIMES

log = logging.getLogger("kaocap")


def _batches(text: str) -> tuple[int, ...]:
    try:
        sizes = tuple(int(v) for v in text.split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(f"batch sizes are integers separated by commas, got {text!r}") from None
    if not sizes or min(sizes) < 1:
        raise argparse.ArgumentTypeError(f"batch sizes must be >= 1, got {text!r}")
    return sizes


def _add_pipeline_options(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("pipeline")
    g.add_argument("--config", help="TOML file with pipeline settings (command-line options override it)")
    g.add_argument("--model", choices=MODELS, help="face model: kaocap's own CNN (default) or MediaPipe's landmark + blendshape networks")
    g.add_argument("--max-faces", type=int, help="most faces to track (default 1)")
    g.add_argument("--detect-every-frame", action="store_true", help="no tracking: run the detector on every frame")
    g.add_argument("--filter", dest="filter", action="store_const", const=True, help="One Euro smoothing on (default: on for cameras)")
    g.add_argument("--no-filter", dest="filter", action="store_const", const=False, help="smoothing off")
    g.add_argument("--calibration", help="neutral-face calibration JSON made by 'kaocap calibrate'")
    g.add_argument("--threads", type=int, help="inference threads per network (default 1)")
    for role in ("detector", "landmarks", "blendshapes", "face"):
        g.add_argument(f"--{role}-runtime", choices=RUNTIMES, help=f"runtime for the {role} network")


def _config(args: argparse.Namespace) -> PipelineConfig:
    cfg = load_config(args.config) if getattr(args, "config", None) else PipelineConfig()
    rt, tracking, filt = cfg.runtime, cfg.tracking, cfg.filter
    if args.threads is not None:
        rt = dataclasses.replace(rt, threads=args.threads)
    for role in ("detector", "landmarks", "blendshapes", "face"):
        if getattr(args, f"{role}_runtime"):
            rt = dataclasses.replace(rt, **{role: getattr(args, f"{role}_runtime")})
    if args.detect_every_frame:
        tracking = dataclasses.replace(tracking, enabled=False)
    if args.filter is not None:
        filt = dataclasses.replace(filt, enabled=args.filter)
    changes = {"runtime": rt, "tracking": tracking, "filter": filt}
    if args.max_faces is not None:
        changes["max_faces"] = args.max_faces
    if args.model:
        changes["model"] = args.model
    if args.calibration:
        changes["calibration"] = args.calibration
    return cfg.replace(**changes)


def _input(args: argparse.Namespace):
    if args.camera is not None and args.input is not None:
        raise ConfigError("give an input file or --camera, not both")
    return args.camera if args.camera is not None else args.input


def _apply_run_options(args: argparse.Namespace) -> None:
    """Fill the ``run`` options the command line left unset from the config's ``[run]`` table."""
    if not args.config:
        return
    run = load_file(args.config)[1]
    if args.input is None and args.camera is None:
        args.input = run.input or None
        args.camera = run.camera if run.camera >= 0 else None
    for name in ("jsonl", "csv", "preview"):
        if getattr(args, name) is None and getattr(run, name):
            setattr(args, name, getattr(run, name))
    args.send = args.send or list(run.send) or None
    args.no_landmarks = args.no_landmarks or not run.landmarks
    args.max_frames = args.max_frames or run.max_frames or None
    args.max_fps = args.max_fps or run.max_fps or None
    args.stats = args.stats or run.stats


@contextlib.contextmanager
def _stop_on_signals() -> Iterator[threading.Event]:
    """First SIGINT/SIGTERM: finish the current frame, flush and close everything, exit 0.
    A second one exits at once (130)."""
    stop = threading.Event()

    def handler(signum: int, frame: object) -> None:
        if stop.is_set():
            os._exit(130)
        stop.set()

    previous = {sig: signal.signal(sig, handler) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield stop
    finally:
        for sig, old in previous.items():
            signal.signal(sig, old)


def cmd_run(args: argparse.Namespace) -> int:
    from kaocap.jobs import run

    _apply_run_options(args)
    config = _config(args)
    with _stop_on_signals() as stop:
        summary = run(_input(args), config, jsonl=args.jsonl, csv=args.csv, preview=args.preview,
                      send=args.send or (), landmarks=not args.no_landmarks, max_frames=args.max_frames,
                      max_fps=args.max_fps, stop=stop, progress=not args.quiet and args.jsonl != "-")  # fmt: skip
    if args.jsonl != "-":
        _print_summary(summary, config.model)
    if args.stats:
        print("\n".join(summary.stats_lines()), file=sys.stderr if args.jsonl == "-" else sys.stdout)
    if summary.error is not None:
        print(f"kaocap: error: {summary.error} (stopped after {summary.frames} frames; outputs kept)", file=sys.stderr)
        return summary.error.exit_code
    return 0


def _print_summary(summary, model: str) -> None:
    print(f"{summary.source}: {summary.frames} frames, a face in {summary.frames_with_face}, "
          f"{summary.ms_per_frame:.1f} ms/frame, face model {model}")  # fmt: skip
    last = summary.last
    if last is None or not last.faces or summary.frames > 1:
        for path in summary.outputs:
            print(f"  wrote {path}")
        return
    for face in last.faces:
        yaw, pitch, roll = face.pose.euler_deg
        top = sorted(((v, n) for n, v in face.to_dict()["blendshapes"].items()), reverse=True)[:8]
        print(f"  face {face.face_id}: score {face.score:.2f}, yaw {yaw:+.1f} pitch {pitch:+.1f} roll {roll:+.1f} deg, "
              "position (" + ", ".join(f"{v:.1f}" for v in face.pose.translation_cm) + ") cm")  # fmt: skip
        print("  top blendshapes: " + ", ".join(f"{n} {v:.2f}" for v, n in top))
    _print_outputs(summary.outputs)


def _print_outputs(outputs: list[str]) -> None:
    for out in outputs:
        print(f"  sent to {out[5:]}" if out.startswith("send ") else f"  wrote {out}")


def cmd_calibrate(args: argparse.Namespace) -> int:
    from kaocap.jobs import calibrate

    cal = calibrate(_input(args), args.out, seconds=args.seconds, config=_config(args))
    print(f"calibrated from {cal.frames} frames; wrote {args.out}")
    return 0


def cmd_bench(args: argparse.Namespace) -> int:
    from kaocap.bench import bench, bench_runtimes, format_runtimes, format_table, load_frames

    if args.runtimes:
        print("median ms per call, 1 thread, same inputs")
        print(format_runtimes(bench_runtimes(repeats=args.frames)))
        return 0
    if args.offline:
        from kaocap.bench import bench_offline, format_offline
        from kaocap.offline import find_clips

        clips = find_clips([args.input or "."])
        rows = bench_offline(clips, frames=args.frames, workers=args.workers, with_peer=not args.no_peer,
                             landmarks=not args.no_landmarks)  # fmt: skip
        print(f"{len(clips)} clips, first {args.frames} frames of each, decoded before timing; faces/s over 2 rounds")
        print(format_offline(rows))
        return 0
    if args.runtime:
        from kaocap.bench import bench_batches, format_batches
        from kaocap.runtime import available_runtimes

        runtimes = available_runtimes() if args.runtime == "all" else [args.runtime]
        print("kaocap's face model, median ms per call, 1 thread")
        print(format_batches(bench_batches(runtimes, args.batch, repeats=min(args.frames, 50))))
        return 0
    frames = load_frames(args.input, args.frames)
    with_peer = not args.no_peer
    rows = bench(frames, threads=1, one_core=True, with_peer=with_peer)
    rows += bench(frames, threads=None, one_core=False, with_peer=with_peer)
    h, w = frames[0].shape[:2]
    print(f"{len(frames)} frames of {w}x{h} (first 5 are warm-up)")
    print(format_table(rows))
    return 0


def cmd_video(args: argparse.Namespace) -> int:
    from kaocap.offline import find_clips, process_clips

    clips = find_clips(args.inputs)
    start = time.perf_counter()

    def done(r) -> None:
        status = f"error: {r.error}" if r.error else f"{r.frames} frames, {r.faces} faces, {r.seconds:.1f} s"
        print(f"{r.clip} -> {r.output}: {status}", flush=True)

    results = process_clips(clips, Path(args.out), _config(args), workers=args.workers, ray_address=args.ray,
                            max_frames=args.max_frames, on_done=None if args.quiet else done,
                            landmarks=not args.no_landmarks)  # fmt: skip
    seconds = time.perf_counter() - start
    faces, frames = sum(r.faces for r in results), sum(r.frames for r in results)
    print(f"{len(results)} clips, {frames} frames, {faces} faces in {seconds:.1f} s: {faces / seconds:.1f} faces/s")
    failed = [r for r in results if r.error]
    if failed:
        print(f"kaocap: error: {len(failed)} of {len(results)} clips failed (outputs kept): {failed[0].error}", file=sys.stderr)
        return InputError.exit_code
    return 0


def cmd_soak(args: argparse.Namespace) -> int:
    from kaocap.bench import load_frames
    from kaocap.soak import format_report, soak

    frames = load_frames(args.input, args.clip_frames)
    first, last = soak(frames, args.frames, window=args.window, config=_config(args), progress=not args.quiet)
    print(f"{args.frames} frames of a looped {frames[0].shape[1]}x{frames[0].shape[0]} clip, every sender to local receivers")
    print(format_report(first, last))
    return 0


def cmd_info(args: argparse.Namespace) -> int:
    from kaocap.models import CARDS, OWN_MODELS, cache_dir, own_model
    from kaocap.runtime import available_runtimes

    print(f"runtimes installed: {', '.join(available_runtimes())}")
    print(f"cache: {cache_dir()}")
    print(f"default face model: {PipelineConfig().model} (--model: {', '.join(MODELS)})")
    for model_id in OWN_MODELS:  # committed with the package; the card's hash is checked here
        path, card = own_model(model_id)
        print(f"{model_id}: {card['model_id']}, {card['description']}; {path.name} sha256 "
              f"{card['sha256'][path.name][:16]}…; {card.get('licence', '')}")  # fmt: skip
    for card in CARDS.values():
        print(f"{card.model_id}: {card.task}; {card.file_name} sha256 {card.sha256[:16]}…; {card.licence}")
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="kaocap", description="Real-time face capture: ARKit blendshapes and head pose.")
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    sub = parser.add_subparsers(dest="command", required=True)

    run = sub.add_parser("run", help="capture from an image, folder, video or camera")
    run.add_argument("input", nargs="?", help="image, folder of images or video file (default: the embedded portrait)")
    run.add_argument("--camera", type=int, help="camera index")
    run.add_argument("--jsonl", help="JSON Lines output, one line per frame ('-' = stdout)")
    run.add_argument("--csv", help="Live Link Face CSV output (Blender/Unreal importers)")
    run.add_argument("--preview", help="annotated preview video (.mp4)")
    run.add_argument("--no-landmarks", action="store_true", help="leave the 478 landmarks out of JSON Lines")
    run.add_argument("--send", action="append", metavar="TARGET",
                     help="live target, repeatable: vmc, vts, livelink, ifm, vrchat, osf, ws "
                          "(optionally :host:port, e.g. vmc:127.0.0.1:39539)")  # fmt: skip
    run.add_argument("--max-frames", type=int, help="stop after this many frames")
    run.add_argument("--max-fps", type=float, help="cap the processing rate (live frames over it are dropped)")
    run.add_argument("--stats", action="store_true", help="print per-stage timings, CPU use and send latency at the end")
    run.add_argument("-q", "--quiet", action="store_true", help="no progress bar")
    _add_pipeline_options(run)
    run.set_defaults(func=cmd_run)

    cal = sub.add_parser("calibrate", help="record the resting face; values at rest then read 0")
    cal.add_argument("input", nargs="?", help="video or image of the resting face (default: embedded portrait)")
    cal.add_argument("--camera", type=int, help="camera index")
    cal.add_argument("--seconds", type=float, default=3.0, help="how long to record (default 3)")
    cal.add_argument("-o", "--out", default="neutral.json", help="calibration file to write")
    _add_pipeline_options(cal)
    cal.set_defaults(func=cmd_calibrate)

    bench = sub.add_parser("bench", help="kaocap vs MediaPipe FaceLandmarker, ms/frame side by side")
    bench.add_argument("input", nargs="?", help="video to time (default: the embedded portrait, moving)")
    bench.add_argument("--frames", type=int, default=200, help="frames to time (default 200)")
    bench.add_argument("--no-peer", action="store_true", help="time kaocap alone (no mediapipe installed)")
    bench.add_argument("--runtimes", action="store_true", help="time each network on each installed runtime instead")
    bench.add_argument("--runtime", choices=(*RUNTIMES, "all"), help="time kaocap's face model on this runtime (or all) at --batch sizes")
    bench.add_argument("--batch", type=_batches, default=(1, 8, 32), help="batch sizes for --runtime (default 1,8,32)")
    bench.add_argument("--offline", action="store_true",
                       help="kaocap video vs MediaPipe IMAGE mode, faces/s on the decoded frames of the clips in input (a folder)")
    bench.add_argument("--workers", type=int, help="processes for --offline (default: one per core)")
    bench.add_argument("--no-landmarks", action="store_true", help="--offline: kaocap leaves the 478 landmarks out of its JSON Lines")
    bench.set_defaults(func=cmd_bench)

    soak = sub.add_parser("soak", help="the live loop for many frames: memory, descriptors, threads, latency")
    soak.add_argument("input", nargs="?", help="clip to loop (default: the embedded portrait, moving)")
    soak.add_argument("--frames", type=int, default=100_000, help="frames to run (default 100000)")
    soak.add_argument("--window", type=int, default=1000, help="frames per measuring window (default 1000)")
    soak.add_argument("--clip-frames", type=int, default=300, help="frames of the clip to loop (default 300)")
    soak.add_argument("-q", "--quiet", action="store_true", help="no progress bar")
    _add_pipeline_options(soak)
    soak.set_defaults(func=cmd_soak)

    video = sub.add_parser("video", help="many clips at once on every core (or a Ray cluster), JSON Lines per clip")
    video.add_argument("inputs", nargs="+", help="clips, or folders searched for clips")
    video.add_argument("--out", required=True, help="folder for the <clip>.jsonl files")
    video.add_argument("--workers", type=int, help="processes (default: one per core)")
    video.add_argument("--ray", metavar="ADDRESS", help="run the clips as tasks on this Ray cluster (e.g. auto)")
    video.add_argument("--max-frames", type=int, help="at most this many frames per clip")
    video.add_argument("--no-landmarks", action="store_true", help="leave the 478 landmarks out of JSON Lines")
    video.add_argument("-q", "--quiet", action="store_true", help="only the final line")
    _add_pipeline_options(video)
    video.set_defaults(func=cmd_video)

    info = sub.add_parser("info", help="models, cards and runtimes")
    info.set_defaults(func=cmd_info)
    from kaocap.export.cli import add_export_parsers; add_export_parsers(sub)  # noqa: I001
    from kaocap.data.cli import add_data_parser; add_data_parser(sub)  # noqa: I001
    from kaocap.viewer.cli import add_serve_parser; add_serve_parser(sub)  # noqa: I001
    from kaocap.train.cli import add_train_parsers; add_train_parsers(sub)  # noqa: I001
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.DEBUG if args.verbose else logging.WARNING, format="kaocap: %(levelname)s: %(message)s")
    try:
        return args.func(args)
    except KaocapError as exc:
        print(f"kaocap: error: {exc}", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        print("kaocap: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:
        return 0


if __name__ == "__main__":
    sys.exit(main())
