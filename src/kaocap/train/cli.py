"""``kaocap train`` and ``kaocap eval`` subcommands; each calls one public function.

Registered in kaocap.cli.build_parser with ``add_train_parsers(sub)``.
"""

from __future__ import annotations

import argparse
import json
import shlex
import sys
from pathlib import Path

from kaocap.train.registry import CARDS

#: Where ``kaocap eval`` looks for the labelled AFLW2000 samples by default.
DEFAULT_HEADPOSE = Path(__file__).resolve().parents[3].parent / "shared" / "data" / "headpose"


def cmd_train(args: argparse.Namespace) -> int:
    from kaocap.train import require_torch

    require_torch()
    from kaocap.train.loop import TrainConfig, train
    from kaocap.train.samples import parse_mix

    if args.time_steps:
        return _time_steps(args)
    if not args.data or not args.out:
        raise _usage("kaocap train needs --data and --out (or --time-steps)")
    cfg = TrainConfig(args.model, tuple(Path(d) for d in args.data), Path(args.out), mix=parse_mix(args.mix),
                      epochs=args.epochs, batch_size=args.batch_size, lr=args.lr, seed=args.seed,
                      max_steps=args.max_steps, threads=args.threads, time_budget_min=args.time_budget_min,
                      export=not args.no_export,
                      progress=not args.quiet, command=_command())  # fmt: skip
    result = train(cfg)
    val = result.card.get("metrics", {}).get("val", {}).get("all", {})
    print(f"{args.model}: {result.card.get('steps', 0)} steps in {result.card['wall_time_s']:.0f} s "
          f"({result.card.get('step_time_ms')} ms/step); val r {val.get('mean_corr', float('nan')):.3f}, "
          f"rotation MAE {val.get('rotation_mae_deg', float('nan')):.2f} deg")  # fmt: skip
    print(f"  wrote {result.weights}" + (f", {result.onnx}" if result.onnx else "") + f", {result.card_path}")
    return 0


def _time_steps(args: argparse.Namespace) -> int:
    from kaocap.train.timing import time_train_steps

    bs = args.batch_size or CARDS[args.model].batch_size
    t = time_train_steps(args.model, batch_size=bs, steps=args.time_steps, threads=args.threads)
    print(f"{args.model}: {t.wall_ms:.0f} ms wall, {t.cpu_ms:.0f} ms CPU per training step at batch {bs} "
          f"(median of {args.time_steps}, synthetic inputs, {args.threads or 'default'} threads)")  # fmt: skip
    return 0


def cmd_eval(args: argparse.Namespace) -> int:
    from kaocap.eval.learners import evaluate
    from kaocap.eval.learners_report import table_lines, write_report

    aflw = None if args.no_aflw else Path(args.aflw) if args.aflw else DEFAULT_HEADPOSE
    if aflw is not None and not aflw.is_dir():
        print(f"kaocap: AFLW2000 samples not found at {aflw}; column left empty", file=sys.stderr)
        aflw = None
    if args.task == "headpose":
        return _eval_headpose(args, aflw)
    report = evaluate([Path(m) for m in args.models], [Path(d) for d in args.data], split=args.split,
                      aflw_dir=aflw, mediapipe=not args.no_mediapipe, repeats=args.repeats)  # fmt: skip
    paths = write_report(report, Path(args.out))
    print("\n".join(table_lines(report)))
    print("  wrote " + ", ".join(str(p) for p in paths.values()))
    return 0


def _eval_headpose(args: argparse.Namespace, headpose_dir: Path | None) -> int:
    from kaocap import models
    from kaocap.data import shards
    from kaocap.eval.headpose import evaluate_headpose, format_report
    from kaocap.eval.learners import discover

    images = [c for c in discover([Path(m) for m in args.models]) if json.loads(c.read_text()).get("input_kind") == "image"]
    if not images:
        raise _usage("--task headpose needs an image learner (a CNN card) in --models")
    renders = [Path(d) for d in args.data if any(str(s["kind"][0]) == "render" for s in shards.iter_shards(Path(d), args.split))]
    if not renders:
        raise _usage(f"--task headpose needs a render dataset with a {args.split} split in --data")
    def onnx(card: Path) -> Path:
        return card.with_name(card.name.removesuffix(".card.json") + ".onnx")

    def family(card: Path) -> str | None:
        return json.loads(card.read_text()).get("family")

    faces = [c for c in images if family(c) != "head"]
    if not faces:
        raise _usage("--task headpose needs a face model (an image learner that is not a head model) in --models")
    heads = [onnx(c) for c in images if family(c) == "head"]
    head = heads[0] if heads else models.model_path(models.KAOCAP_HEAD_MODEL)
    report = evaluate_headpose(onnx(faces[0]), renders[0], Path(args.out), headpose_dir=headpose_dir, head_path=head,
                               clips=[Path(c) for c in args.clips or []])  # fmt: skip
    print("\n".join(format_report(report)))
    print("  wrote " + ", ".join(str(p) for p in report.files.values()))
    return 0


def _command() -> str:
    return "kaocap " + " ".join(shlex.quote(a) for a in sys.argv[1:])


def _usage(message: str):
    from kaocap.errors import ConfigError

    return ConfigError(message)


def add_train_parsers(sub: argparse._SubParsersAction) -> None:
    """Add ``train`` and ``eval`` to the kaocap command line."""
    t = sub.add_parser("train", help="train a blendshape + head-pose learner on dataset shards")
    t.add_argument("--model", required=True, choices=list(CARDS), help="learner id (kaocap.train.registry)")
    t.add_argument("--data", action="append", metavar="DIR", help="dataset directory with manifest.json, repeatable")
    t.add_argument("--mix", help="sampling shares per domain, e.g. real:0.5,render:0.5 (default: as in the data)")
    t.add_argument("--epochs", type=int, help="epochs (default: the card's train_steps, sized for 2 h on 2 cores)")
    t.add_argument("--batch-size", type=int, help="batch size (default: the learner card's)")
    t.add_argument("--lr", type=float, help="peak learning rate, AdamW + cosine (default: the card's)")
    t.add_argument("--seed", type=int, default=0, help="seed of sampling, augmentation and init (default 0)")
    t.add_argument("--out", metavar="DIR", help="output folder: weights, ONNX, card JSON")
    t.add_argument("--max-steps", type=int, help="stop after this many optimiser steps")
    t.add_argument("--threads", type=int, help="torch threads (default: all cores)")
    t.add_argument("--time-budget-min", type=float, metavar="MIN",
                   help="fewer steps if the run would take longer (step time measured first; the card "
                        "records the steps, and --max-steps STEPS reproduces the run)")  # fmt: skip
    t.add_argument("--no-export", action="store_true", help="skip the ONNX export")
    t.add_argument("--time-steps", type=int, metavar="N", help="only time N training steps on synthetic inputs")
    t.add_argument("-q", "--quiet", action="store_true", help="no progress bar")
    t.set_defaults(func=cmd_train)

    e = sub.add_parser("eval", help="compare learners, the rule baseline and MediaPipe on held-out people")
    e.add_argument("--models", action="append", required=True, metavar="DIR",
                   help="folder with <model_id>.card.json (+ .onnx / rules .json), or a card file; repeatable")
    e.add_argument("--data", action="append", required=True, metavar="DIR", help="dataset directory, repeatable")
    e.add_argument("--split", default="test", help="held-out split to score (default test)")
    e.add_argument("--out", default="eval", help="folder for report.md, report.json, per_shape.png")
    e.add_argument("--aflw", help=f"headpose folder with the AFLW2000 samples (default {DEFAULT_HEADPOSE})")
    e.add_argument("--no-aflw", action="store_true", help="skip the AFLW2000 column")
    e.add_argument("--no-mediapipe", action="store_true", help="leave MediaPipe's row out")
    e.add_argument("--repeats", type=int, default=100, help="timed runs per latency figure (default 100)")
    e.add_argument("--clips", nargs="+", metavar="VIDEO",
                   help="--task headpose: real clips to track through (the ones with the largest turns)")
    e.add_argument("--task", choices=("blendshapes", "headpose"), default="blendshapes",
                   help="blendshapes: SuperCV's table (default); headpose: full-range rotation of the first "
                        "image learner by yaw range, AFLW2000, a rendered 360 deg turn, a contact sheet")  # fmt: skip
    e.set_defaults(func=cmd_eval)
