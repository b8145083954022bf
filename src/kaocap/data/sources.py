"""Finding the units of work of a real-face build: clips, frame sequences, photo folders.

Rules (``discover_units``):

* Under a ``videos`` root every video file is one unit (kind ``"video"``), and every folder of
  images whose names are all digits (``000000.jpg`` ...) is one clip (kind ``"sequence"``).
* Under an ``images`` root every folder that holds images is one unit (kind ``"photos"``); each
  photo is a separate picture (its own person unless :mod:`kaocap.data.people` says otherwise).
* pd_fgc mosaics (1120 x 224, five 224-px panels): panel 0 is a still source photo and panel 1 a
  generated face, so both are left out; panels 2 and 4 are real driving clips that are the same
  in every file (measured: mean abs difference < 2.5 grey levels), so they are taken once, from
  the first file in name order; panel 3 is a still real photo per file, taken once (frame 0).
* Clips marked possibly generated (:data:`GENERATED`, latentsync) are left out unless
  ``include_generated``.

A unit's key is its path relative to the folder above its root (``videos/dpe/d.mp4``), plus
``#x448-672`` for a panel; keys name sources in shards and drive the person rules.
"""

from __future__ import annotations

import fnmatch
import logging
import os
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path

from kaocap.capture import IMAGE_SUFFIXES
from kaocap.data.people import person_of
from kaocap.errors import InputError

logger = logging.getLogger(__name__)

VIDEO_SUFFIXES = frozenset({".mp4", ".mov", ".avi", ".mkv", ".webm", ".m4v"})
#: Key patterns of clips that may be generated (not real faces): left out by default.
GENERATED: tuple[str, ...] = ("*/latentsync/*",)
#: pd_fgc mosaic layout: (x0, x1, still) of the real panels; the driving clips are the same in
#: every file, so only the first file contributes them.
PD_FGC_DRIVING = ((448, 672), (896, 1120))
PD_FGC_STILL = (672, 896)
PANEL_HEIGHT = 224


@dataclass(frozen=True, slots=True)
class SourceUnit:
    """One unit of work (one shard).

    path: the video file or folder. key: stable name (module docstring). kind: ``"video"``,
    ``"sequence"`` (folder of frames) or ``"photos"`` (folder of separate pictures).
    person: the person of a clip (None for photos: decided per photo). region: ``(x0, y0, x1,
    y1)`` px cut from every frame before labelling, or None. still: label frame 0 only.
    files: for ``"photos"``, the file names to label (empty = every picture of the folder).
    """

    path: Path
    key: str
    kind: str
    person: str | None = None
    region: tuple[int, int, int, int] | None = None
    still: bool = False
    files: tuple[str, ...] = ()


def _images_in(folder: Path) -> list[Path]:
    return sorted(p for p in folder.iterdir() if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES)


def _walk(root: Path) -> tuple[list[Path], list[Path]]:
    """(folders, files) under ``root`` (itself included), following links, in name order."""
    folders, files = [], []
    for top, dirs, names in os.walk(root, followlinks=True):
        dirs.sort()
        folders.append(Path(top))
        files += [Path(top) / n for n in sorted(names)]
    return sorted(folders), sorted(files)


def _key(path: Path, root: Path) -> str:
    return path.relative_to(root.parent).as_posix()


def _video_units(root: Path, overrides: Mapping[str, str]) -> list[SourceUnit]:
    units: list[SourceUnit] = []
    pd_fgc_first = True
    folders, files = _walk(root)
    for path in (p for p in files if p.suffix.lower() in VIDEO_SUFFIXES):
        key = _key(path, root)
        if path.parent.name == "pd_fgc":
            units += _pd_fgc_units(path, key, pd_fgc_first, overrides)
            pd_fgc_first = False
            continue
        units.append(SourceUnit(path, key, "video", person_of(key, overrides)))
    for folder in folders:
        frames = _images_in(folder)
        if len(frames) >= 2 and all(p.stem.isdigit() for p in frames):
            key = _key(folder, root)
            units.append(SourceUnit(folder, key, "sequence", person_of(key, overrides)))
    return units


def _pd_fgc_units(path: Path, key: str, first: bool, overrides: Mapping[str, str]) -> list[SourceUnit]:
    panels = [(x0, x1, False) for x0, x1 in PD_FGC_DRIVING] if first else []
    panels.append((*PD_FGC_STILL, True))
    out = []
    for x0, x1, still in panels:
        panel_key = f"{key}#x{x0}-{x1}"
        region = (x0, 0, x1, PANEL_HEIGHT)
        out.append(SourceUnit(path, panel_key, "video", person_of(panel_key, overrides), region, still))
    return out


def _photo_units(root: Path) -> list[SourceUnit]:
    folders, _ = _walk(root)
    return [SourceUnit(f, _key(f, root), "photos") for f in folders if _images_in(f)]


def photo_paths(unit: SourceUnit) -> list[Path]:
    """The pictures of a ``"photos"`` unit, in name order (only ``unit.files`` if given)."""
    paths = _images_in(unit.path)
    return [p for p in paths if p.name in unit.files] if unit.files else paths


def discover_units(videos: Iterable[str | Path] = (), images: Iterable[str | Path] = (), *,
                   include_generated: bool = False,
                   overrides: Mapping[str, str] | None = None) -> list[SourceUnit]:  # fmt: skip
    """Every unit under the given roots, in a stable order (rules in the module docstring).

    Units whose clip person is None (an ambiguous source, :mod:`kaocap.data.people`) and
    generated clips (unless ``include_generated``) are left out, with a log line each.
    """
    overrides = overrides or {}
    units: list[SourceUnit] = []
    for root in map(Path, videos):
        units += _video_units(_existing(root), overrides)
    for root in map(Path, images):
        units += _photo_units(_existing(root))
    kept = []
    for unit in units:
        if not include_generated and any(fnmatch.fnmatchcase(unit.key, p) for p in GENERATED):
            logger.info("left out (possibly generated): %s", unit.key)
        elif unit.kind != "photos" and unit.person is None:
            logger.info("left out (ambiguous person): %s", unit.key)
        else:
            kept.append(unit)
    return kept


def _existing(root: Path) -> Path:
    if not root.is_dir():
        raise InputError(f"{root}: not a folder")
    return root.resolve()
