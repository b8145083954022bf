"""``kaocap data import-takes``: Apple Live Link Face takes -> exactly labelled real samples.

A take is what Epic's Live Link Face app records: a video and a CSV of per-frame ARKit values,
named ``<slate>_<take>_<device>``: ``MySlate_3_Jason_Millers_iPhone.mov`` with
``MySlate_3_Jason_Millers_iPhone.csv`` (older app versions), or with ``..._raw.csv`` /
``..._cal.csv`` (newer versions, in a folder with ``take.json``, ``video_metadata.json`` and
``frame_log.csv``). The plain CSV is used, else ``_raw`` (ARKit's own values), else ``_cal``
(values remapped by the user's calibration); ``_neutral.csv`` and ``frame_log.csv`` are not takes.
CSV layout, units and head-angle signs: :mod:`kaocap.stream.csv_livelink`.

Alignment is by timecode. CSV rows are stamped ``HH:MM:SS:FF.sss``: the frame and the
thousandths of a frame at which ARKit sampled, i.e. a position ``FF + sss/1000`` frames on the
timecode clock (the sub-frame drifts: the reference recording goes .867 ... .999, 1.000, so
``FF`` skips a number once without a sample being lost). The video carries its start timecode
``HH:MM:SS:FF`` (QuickTime ``tmcd`` track, read by FFmpeg as ``timecode``), floored to a frame:
its first frame is taken to be the first row at or after that timecode, and frame i lies
``t_i * fps`` frames later (t_i: its presentation time from the first frame; fps: the take's
rate, ``video_metadata.json`` FrameRate or the video's base rate, rounded). Each video frame is paired
with the row nearest in time, if within half a frame; other frames are skipped. A video without
a timecode is taken to start at the first row (logged). Drop-frame timecodes (``;``) are read at
the nominal rate.

Samples (kind ``"take"``): blendshapes from the CSV (all 52 valid), head rotation from
HeadYaw/Pitch/Roll (:func:`~kaocap.stream.csv_livelink.head_pose_from_livelink`; NaN when every
head value of the take is 0, i.e. head rotation was not recorded), translation NaN (not in the
CSV), landmarks and crop from the teacher as in :mod:`kaocap.data.real`, and beside them
``teacher_blendshapes``, ``teacher_rotation``, ``teacher_translation_cm`` and the row's
``timecode``. Person: ``livelink:<device>`` (one person per phone) unless the ``people``
overrides name one for the take's key.
"""

from __future__ import annotations

import json
import logging
import re
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path

import av
import numpy as np
from numpy.typing import NDArray
from tqdm import tqdm

from kaocap.capture import VideoSource
from kaocap.constants import BLENDSHAPES
from kaocap.data import shards
from kaocap.data.build import BuildResult, check_settings, default_root, write_build_manifest
from kaocap.data.people import RULES_DIGEST, load_overrides, person_of
from kaocap.data.real import RealParams, SampleList, Teacher, Thinner, add_face, unit_rng
from kaocap.errors import InputError
from kaocap.stream.csv_livelink import (
    LIVELINK_BLENDSHAPES,
    head_pose_from_livelink,
    read_livelink_csv,
)

logger = logging.getLogger(__name__)

VIDEO_SUFFIXES = (".mov", ".mp4")
#: CSV suffixes in order of preference ("" = the plain <slate>_<take>_<device>.csv).
CSV_VARIANTS = ("", "_raw", "_cal")
_NAME = re.compile(r"^(?P<slate>.+?)_(?P<take>\d+)_(?P<device>.+)$")
_TIMECODE = re.compile(r"^(\d+)[:;](\d+)[:;](\d+)[:;](\d+)(\.\d+)?$")
_EXTRA = {"teacher_blendshapes": ((52,), np.float32), "teacher_rotation": ((3, 3), np.float32),
          "teacher_translation_cm": ((3,), np.float32), "timecode": ((), str)}  # fmt: skip


@dataclass(frozen=True, slots=True)
class Take:
    """One take: video and CSV paths, key (video path from the folder above the root), slate,
    take number and device (from the file name, or ``take.json`` when present)."""

    video: Path
    csv: Path
    key: str
    slate: str
    take: str
    device: str


def timecode_frames(timecode: str, fps: int) -> float:
    """The position of ``HH:MM:SS:FF[.sss]`` in frames at ``fps`` (``.sss``: a fraction of a frame).

    >>> timecode_frames("00:32:09:07.867", 60)
    115747.867
    """
    found = _TIMECODE.match(timecode.strip())
    if not found:
        raise ValueError(f"not a HH:MM:SS:FF timecode: {timecode!r}")
    h, m, s, f = map(int, found.groups()[:4])
    if f >= fps:
        raise ValueError(f"frame field {f} of {timecode!r} is not below {fps} fps")
    return ((h * 60 + m) * 60 + s) * fps + f + float(found.group(5) or 0.0)


def find_takes(root: str | Path) -> list[Take]:
    """Every take under ``root``: a Live Link Face video with its CSV (module docstring)."""
    root = Path(root).resolve()
    if not root.is_dir():
        raise InputError(f"{root}: not a folder")
    takes = []
    for video in sorted(p for p in root.rglob("*") if p.suffix.lower() in VIDEO_SUFFIXES):
        csv = next((c for v in CSV_VARIANTS if (c := video.with_name(video.stem + v + ".csv")).is_file()), None)
        if csv is None:
            logger.info("%s: no Live Link Face CSV beside it; not a take", video)
            continue
        takes.append(Take(video, csv, video.relative_to(root.parent).as_posix(), **_names(video)))
    return takes


def _names(video: Path) -> dict[str, str]:
    meta = video.parent / "take.json"
    if meta.is_file():
        data = json.loads(meta.read_text())
        return {"slate": str(data.get("slate", "")), "take": str(data.get("take", "")),
                "device": str(data.get("subject", ""))}  # fmt: skip
    found = _NAME.match(video.stem)
    if not found:
        return {"slate": video.stem, "take": "", "device": video.stem}
    return found.groupdict()


@dataclass(frozen=True, slots=True)
class TakeLabels:
    """A take's CSV as arrays. frames: (T,) float64 row positions in frames at ``fps``.
    timecodes: the T row timecodes. blendshapes: (T, 52) float32, kaocap.BLENDSHAPES order.
    head_rad: (T, 3) HeadYaw, HeadPitch, HeadRoll in radians, or None when not recorded."""

    fps: int
    frames: NDArray[np.float64]
    timecodes: list[str]
    blendshapes: NDArray[np.float32]
    head_rad: NDArray[np.float32] | None


def take_fps(take: Take) -> int:
    """The take's frame rate: ``video_metadata.json`` FrameRate, else the video's base rate
    (FFmpeg's ``r_frame_rate``), rounded."""
    meta = take.video.parent / "video_metadata.json"
    if meta.is_file():
        rate = json.loads(meta.read_text()).get("FrameRate")
        if rate:
            return round(float(rate))
    with av.open(str(take.video)) as container:
        stream = container.streams.video[0]
        rate = stream.base_rate or stream.guessed_rate or stream.average_rate
    if not rate:
        raise InputError(f"{take.video}: no frame rate; add video_metadata.json with FrameRate")
    return round(float(rate))


def read_take_labels(take: Take, fps: int) -> TakeLabels:
    """Parse a take's CSV (module docstring); InputError if a column or timecode is wrong."""
    timecodes, values, names = read_livelink_csv(take.csv)
    missing = [n for n in (*LIVELINK_BLENDSHAPES, "HeadYaw", "HeadPitch", "HeadRoll") if n not in names]
    if missing:
        raise InputError(f"{take.csv}: columns {missing[:3]} missing")
    try:
        frames = np.array([timecode_frames(tc, fps) for tc in timecodes], np.float64)
    except ValueError as err:
        raise InputError(f"{take.csv}: {err}") from None
    blend = values[:, [names.index(n) for n in LIVELINK_BLENDSHAPES]]
    head = values[:, [names.index(n) for n in ("HeadYaw", "HeadPitch", "HeadRoll")]]
    return TakeLabels(fps, frames, list(timecodes), blend.astype(np.float32), head if head.any() else None)


def video_start_frame(take: Take, labels: TakeLabels) -> float:
    """The position in frames of the video's first frame: the first row at or after its
    ``timecode`` tag, else the first row (module docstring)."""
    with av.open(str(take.video)) as container:
        tags = [container.metadata, *(s.metadata for s in container.streams)]
    timecode = next((t["timecode"] for t in tags if "timecode" in t), None)
    if timecode is None:
        logger.warning("%s: no timecode; assuming it starts at the CSV's first row", take.video)
        return float(labels.frames[0])
    start = timecode_frames(timecode, labels.fps)
    later = labels.frames[labels.frames >= start]
    if not len(later):
        raise InputError(f"{take.video}: starts at {timecode}, after the last row of {take.csv.name}")
    return float(later[0])


def aligned_frames(take: Take, labels: TakeLabels, stride: int = 1) -> Iterator[tuple[NDArray[np.uint8], int, int]]:
    """(image, video frame index, CSV row) for every stride-th video frame within half a frame of
    a row (module docstring); a row is used once."""
    start, used = video_start_frame(take, labels), set()
    with VideoSource(take.video) as source:
        for frame in source:
            position = start + frame.timestamp_ms * labels.fps / 1000.0
            j = int(np.clip(np.searchsorted(labels.frames, position), 1, len(labels.frames) - 1))
            row = j if abs(labels.frames[j] - position) < abs(labels.frames[j - 1] - position) else j - 1
            if abs(labels.frames[row] - position) < 0.5 and row not in used and frame.index % stride == 0:
                used.add(row)
                yield frame.image, frame.index, row


def label_take(take: Take, params: RealParams, seed: int, teacher: Teacher, person: str) -> tuple[SampleList, int]:
    """The samples of one take (module docstring) and the number of video frames labelled."""
    fps = take_fps(take)
    labels = read_take_labels(take, fps)
    rng, samples = unit_rng(seed, take.key), SampleList(params.crop_size, _EXTRA)
    thinner, frames = Thinner(params.thin_iod, params.thin_blendshape), 0
    for image, index, row in aligned_frames(take, labels, params.stride):
        faces, frames = teacher(image, 1), frames + 1
        if not faces or not thinner.keep(faces[0].landmarks, labels.blendshapes[row]):
            continue
        face = faces[0]
        rotation = (head_pose_from_livelink(*labels.head_rad[row]).rotation if labels.head_rad is not None
                    else np.full((3, 3), np.nan, np.float32))  # fmt: skip
        add_face(samples, image, face, rng, params, person=person, source=take.key, frame=index, kind="take",
                 blendshapes=labels.blendshapes[row], blendshapes_valid=np.ones(len(BLENDSHAPES), bool),
                 rotation=rotation, translation_cm=np.full(3, np.nan, np.float32),
                 teacher_blendshapes=np.where(face.blendshapes_valid, face.blendshapes, np.nan),
                 teacher_rotation=face.pose.rotation, teacher_translation_cm=face.pose.translation_cm,
                 timecode=labels.timecodes[row])  # fmt: skip
    return samples, frames


def import_takes(takes_dir: str | Path, out: str | Path | None = None, *, name: str = "takes", seed: int = 0,
                 params: RealParams | None = None, people: str | Path | Mapping[str, str] | None = None,
                 progress: bool = True, card: bool = True) -> BuildResult:  # fmt: skip
    """Import every take under ``takes_dir`` into a dataset (one shard per take, resumable).

    >>> import_takes("~/LiveLinkFace")                       # doctest: +SKIP
    """
    start = time.time()
    params = params or RealParams()
    root = Path(out) if out is not None else default_root(name)
    overrides = dict(people) if isinstance(people, Mapping) else load_overrides(people)
    settings = {"kind": "takes", "seed": seed, "params": params.to_dict(), "include_generated": False,
                "people_overrides": overrides, "people_rules": RULES_DIGEST,
                "roots": {"takes": [str(Path(takes_dir).resolve())]}}  # fmt: skip
    old = check_settings(root, settings)
    takes = find_takes(takes_dir)
    teacher, done = Teacher(), []
    for take in tqdm(takes, desc="takes", unit="take", disable=not progress):
        done += _import_one(take, root, params, seed, teacher, overrides)
    run = {"started": time.strftime("%Y-%m-%dT%H:%M:%S", time.localtime(start)), "units_labelled": len(done),
           "frames": sum(done), "seconds": round(time.time() - start, 1), "workers": 1}  # fmt: skip
    manifest = write_build_manifest(root, settings, (t.key for t in takes), run, old)
    if card:
        from kaocap.data.card import write_card

        write_card(root)
    return BuildResult(root, len(takes), len(done), manifest["counts"]["samples"], time.time() - start)


def _import_one(take: Take, root: Path, params: RealParams, seed: int, teacher: Teacher,
                overrides: Mapping[str, str]) -> list[int]:  # fmt: skip
    """[frames labelled] after writing the take's shard, or [] when it exists already."""
    person = person_of(take.key, {**overrides, "*": f"livelink:{take.device}"})
    path = root / shards.split_of(person, seed) / shards.unit_name("take", take.key, {**params.to_dict(), "seed": seed})
    if path.exists():
        return []
    samples, frames = label_take(take, params, seed, teacher, person)
    crops, labels = samples.arrays()
    shards.write_shard(path, crops, labels, quality=params.jpeg_quality)
    return [frames]
