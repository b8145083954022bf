"""``kaocap data``: build, import-takes and card subcommands; each calls one public function.

>>> from kaocap.cli import main
>>> main(["data", "build", "--videos", "../shared/data/videos", "--images", "../shared/data/images"])  # doctest: +SKIP
"""

from __future__ import annotations

import argparse
import dataclasses
from pathlib import Path

from kaocap.data.real import RealParams
from kaocap.errors import ConfigError

#: Shared data beside the checkout: the default inputs of ``kaocap data build``.
SHARED_DATA = Path(__file__).resolve().parents[3].parent / "shared" / "data"


def _add_params(p: argparse.ArgumentParser) -> None:
    defaults = RealParams()
    g = p.add_argument_group("sampling and labelling")
    g.add_argument("--crop-size", type=int, default=defaults.crop_size, help=f"crop side, px (default {defaults.crop_size})")
    g.add_argument("--stride", type=int, default=defaults.stride, help=f"label every N-th frame of a clip (default {defaults.stride})")
    g.add_argument("--jitter", type=int, default=defaults.jitter, help=f"jittered crops per face (default {defaults.jitter})")
    g.add_argument("--thin-iod", type=float, default=defaults.thin_iod,
                   help=f"skip a face whose landmarks moved less than this fraction of the inter-ocular distance "
                        f"and whose blendshapes changed less than --thin-blendshape (default {defaults.thin_iod})")  # fmt: skip
    g.add_argument("--thin-blendshape", type=float, default=defaults.thin_blendshape,
                   help=f"see --thin-iod (default {defaults.thin_blendshape}; 0 and 0 keep every face)")  # fmt: skip
    g.add_argument("--seed", type=int, default=0, help="splits and jitter (default 0)")
    g.add_argument("--people", help="JSON object {source key pattern: person id} overriding the person rules")
    g.add_argument("--out", help="dataset directory (default: <kaocap cache>/datasets/<name>)")
    g.add_argument("-q", "--quiet", action="store_true", help="no progress bar")


def _params(args: argparse.Namespace) -> RealParams:
    return dataclasses.replace(RealParams(), crop_size=args.crop_size, stride=args.stride, jitter=args.jitter,
                               thin_iod=args.thin_iod, thin_blendshape=args.thin_blendshape)  # fmt: skip


def _print_result(result) -> None:
    print(f"{result.root}: {result.samples} samples in {result.units} units "
          f"({result.labelled} labelled now, {result.seconds:.0f} s); card in {result.root / 'card'}")  # fmt: skip


def cmd_build(args: argparse.Namespace) -> int:
    from kaocap.data.build import build_real

    videos, images = args.videos or [], args.images or []
    if not videos and not images:
        if not SHARED_DATA.is_dir():
            raise ConfigError(f"give --videos and/or --images ({SHARED_DATA} is absent)")
        videos, images = [SHARED_DATA / "videos"], [SHARED_DATA / "images"]
    result = build_real(args.out, videos=videos, images=images, name=args.name, seed=args.seed,
                        params=_params(args), limit_sources=args.limit_sources,
                        include_generated=args.include_generated, people=args.people,
                        workers=args.workers, progress=not args.quiet)  # fmt: skip
    _print_result(result)
    return 0


def cmd_import_takes(args: argparse.Namespace) -> int:
    from kaocap.data.takes import import_takes

    result = import_takes(args.dir, args.out, name=args.name, seed=args.seed, params=_params(args),
                          people=args.people, progress=not args.quiet)  # fmt: skip
    _print_result(result)
    return 0


def cmd_render(args: argparse.Namespace) -> int:
    from kaocap.data.render_build import build_renders

    result = build_renders(args.out, count=args.count, block=args.block, seed=args.seed,
                           teacher=not args.no_teacher, workers=args.workers, progress=not args.quiet)  # fmt: skip
    _print_result(result)
    return 0


def cmd_card(args: argparse.Namespace) -> int:
    from kaocap.data.card import write_card

    print(f"wrote {write_card(args.dir)}")
    return 0


def add_data_parser(subparsers) -> None:
    """Add ``kaocap data {build, import-takes, card}`` to the main parser's subcommands."""
    data = subparsers.add_parser("data", help="build labelled training sets (real faces, Live Link takes)")
    sub = data.add_subparsers(dest="data_command", required=True)

    build = sub.add_parser("build", help="real-face set: teacher-labelled crops of clips and photos")
    build.add_argument("--videos", nargs="+", action="extend", type=Path,
                       help="folders of clips / frame folders (default with no --images: ../shared/data/videos)")
    build.add_argument("--images", nargs="+", action="extend", type=Path,
                       help="folders of photos (default with no --videos: ../shared/data/images)")
    build.add_argument("--name", default="real", help="dataset name under the cache (default real)")
    build.add_argument("--limit-sources", type=int, help="only the first N units, for trials")
    build.add_argument("--include-generated", action="store_true", help="also clips marked possibly generated (latentsync)")
    build.add_argument("--workers", type=int, default=2, help="labelling processes (default 2)")
    _add_params(build)
    build.set_defaults(func=cmd_build)

    takes = sub.add_parser("import-takes", help="Live Link Face takes (video + ARKit CSV) -> exactly labelled samples")
    takes.add_argument("dir", type=Path, help="folder holding takes (<slate>_<take>_<device>.mov + .csv)")
    takes.add_argument("--name", default="takes", help="dataset name under the cache (default takes)")
    _add_params(takes)
    takes.set_defaults(func=cmd_import_takes)

    render = sub.add_parser("render", help="synthetic set: ICT-FaceKit renders with exact labels (+ teacher)")
    render.add_argument("--count", type=int, default=50_000, help="renders (default 50000)")
    render.add_argument("--block", type=int, default=256, help="renders per shard (default 256)")
    render.add_argument("--seed", type=int, default=0, help="seed (default 0)")
    render.add_argument("--no-teacher", action="store_true", help="skip the MediaPipe-network teacher on renders")
    render.add_argument("--workers", type=int, default=2, help="render processes (default 2)")
    render.add_argument("--out", type=Path, help="dataset directory (default: the cache's datasets/render)")
    render.add_argument("-q", "--quiet", action="store_true", help="no progress bar")
    render.set_defaults(func=cmd_render)

    card = sub.add_parser("card", help="(re)write a dataset's card: counts, histograms, contact sheets")
    card.add_argument("dir", type=Path, help="dataset directory")
    card.set_defaults(func=cmd_card)
