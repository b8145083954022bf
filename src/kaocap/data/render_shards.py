"""Render blocks as dataset shards: :func:`render_block` writes one resumable unit of work.

A build calls ``render_block`` once per block of sample indices, per split, naming each shard
with :func:`render_unit_name` (a shard that exists is complete, so a stopped build resumes by
skipping existing names). Every block draws its renders' identities from
``identities_per_block`` pool identities whose person (``ict_id_<k>``) falls in the block's
split, so no person is in two splits. Run one worker process per core (each renders with one
Mesa thread, ``RenderConfig.llvmpipe_threads``): on 2 cores that is 36-40 renders/s, 25 with the
teacher (:func:`measure_rate`).

>>> cfg = RenderConfig(seed=3)
>>> name = render_unit_name(cfg, 0, 256, "train")
>>> render_block(cfg, 0, 256, root / "train" / name, split="train")   # doctest: +SKIP
"""

from __future__ import annotations

import logging
import math
import time
from pathlib import Path

import numpy as np
from numpy.typing import NDArray

from kaocap.data._render.backgrounds import BackgroundBank
from kaocap.data._render.teacher import Teacher, teacher_labels, to_crop
from kaocap.data.render import HeadRenderer, RenderConfig, RenderSample, crop_of, person_of_identity
from kaocap.errors import ConfigError
from kaocap.types import Roi

__all__ = ["block_identities", "default_bank", "measure_rate", "render_block", "render_unit_name"]

logger = logging.getLogger(__name__)


def default_bank(cfg: RenderConfig) -> BackgroundBank | None:
    """The background bank ``render_block`` uses: built from ``cfg.images_path`` once (then
    cached in ``kaocap.models.cache_dir() / "render"``, keyed by the folder's file list and the
    bank's parameters) and kept per process; None (procedural backgrounds only) when that
    folder is absent."""
    key = (cfg.images_path, cfg.background_count, cfg.size, cfg.seed)
    if key not in _BANKS:
        _BANKS[key] = _cached_bank(*key)
    return _BANKS[key]


_BANKS: dict[tuple, BackgroundBank | None] = {}


def _cached_bank(path: str, count: int, size: int, seed: int) -> BackgroundBank | None:
    import hashlib

    from kaocap.models import cache_dir

    root = Path(path)
    if not root.is_dir():
        logger.warning("%s is absent: procedural backgrounds only", path)
        return None
    listing = sorted(f"{p.relative_to(root)}:{p.stat().st_size}" for p in root.rglob("*") if p.is_file())
    digest = hashlib.sha1(repr((listing, count, size, seed)).encode()).hexdigest()[:16]
    cached = cache_dir() / "render" / f"backgrounds-{digest}.npz"
    if cached.is_file():
        return BackgroundBank.load(cached)
    bank = BackgroundBank.from_folder(root, count=count, size=size, seed=seed)
    if len(bank):
        cached.parent.mkdir(parents=True, exist_ok=True)
        tmp = cached.with_name(cached.name + ".tmp.npz")
        bank.save(tmp)
        tmp.replace(cached)
    return bank


def block_identities(cfg: RenderConfig, start_index: int, count: int, split: str | None = None,
                     split_seed: int = 0) -> NDArray[np.int64]:  # fmt: skip
    """The pool identities one block draws from: ``identities_per_block`` of those whose person
    falls in ``split`` (all when None) under :func:`kaocap.data.shards.split_of`."""
    from kaocap.data.shards import split_of

    pool = np.arange(cfg.num_identities)
    if split is not None:
        pool = pool[[split_of(person_of_identity(int(k)), split_seed) == split for k in pool]]
    if not len(pool):
        raise ConfigError(f"no identity of the {cfg.num_identities} falls in split {split!r}")
    rng = np.random.default_rng([cfg.seed, start_index, count, 7])
    return np.sort(rng.choice(pool, min(cfg.identities_per_block, len(pool)), replace=False))


def render_unit_name(cfg: RenderConfig, start_index: int, count: int, split: str | None = None) -> str:
    """The shard file name of one block (:func:`kaocap.data.shards.unit_name`): existing ones
    are complete, so a build resumes by skipping them."""
    from dataclasses import asdict

    from kaocap.data.shards import unit_name

    params = {**asdict(cfg), "start": start_index, "count": count, "split": split}
    return unit_name("render", f"ict_seed{cfg.seed}_{start_index:09d}", params)


def render_block(cfg: RenderConfig, start_index: int, count: int, out_path: str | Path, *, split: str | None = None,
                 split_seed: int = 0, renderer: HeadRenderer | None = None) -> Path:  # fmt: skip
    """Render samples ``start_index .. start_index + count - 1`` and write them as ONE shard
    (:func:`kaocap.data.shards.write_shard`, kind ``"render"``, person ``ict_id_<k>``), plus
    ``cfg.jitter_variants`` jittered crops each. Extra keys: ``camera_focal_px`` (N,) and, with
    ``cfg.teacher``, ``teacher_blendshapes`` (N, 52, NaN tongueOut), ``teacher_rotation``,
    ``teacher_translation_cm``, ``teacher_landmarks`` (crop px), ``teacher_presence`` (0 and
    NaNs when the teacher finds no face). ``renderer``: reuse one across blocks.

    >>> render_block(RenderConfig(seed=3), 0, 256, root / "train" / render_unit_name(...))  # doctest: +SKIP
    """
    from kaocap.data.shards import write_shard

    if count < 1:
        raise ConfigError(f"a render block needs count >= 1, got {count}")
    source = f"render:ict_seed{cfg.seed}_{start_index:09d}+{count}"
    own = renderer is None
    renderer = renderer or HeadRenderer(cfg, default_bank(cfg))
    teacher = Teacher() if cfg.teacher else None
    identities = block_identities(cfg, start_index, count, split, split_seed)
    rows: list[dict[str, object]] = []
    crops: list[NDArray[np.uint8]] = []
    try:
        for index in range(start_index, start_index + count):
            rng = np.random.default_rng([cfg.seed, index])
            sample = renderer.render(renderer.sample_params(rng, identities))
            face = teacher(sample.image) if teacher is not None else None
            for roi, jittered in _rois(sample.roi, rng, cfg.jitter_variants):
                crops.append(sample.crop if not jittered else crop_of(sample.image, roi, cfg.crop_size))
                rows.append(_row(sample, roi, jittered, index, cfg, source, face, teacher is not None))
    finally:
        if own:
            renderer.close()
        if teacher is not None:
            teacher.close()
    labels = {key: np.stack([row[key] for row in rows]) for key in rows[0]} if rows else {}
    out = Path(out_path)
    write_shard(out, np.stack(crops), labels, quality=cfg.jpeg_quality)
    logger.info("render block %d..%d -> %s", start_index, start_index + count - 1, out)
    return out


def _rois(roi: Roi, rng: np.random.Generator, variants: int) -> list[tuple[Roi, bool]]:
    """The base ROI, then ``variants`` shifted (5% of the size), scaled (10%), rotated (8 deg)."""
    out = [(roi, False)]
    for _ in range(variants):
        side = float(roi.size_wh[0]) * math.exp(rng.normal(0, 0.1))
        centre = roi.center_xy + rng.normal(0, 0.05, 2) * float(roi.size_wh[0])
        out.append((Roi(centre.astype(np.float32), np.array([side, side], np.float32),
                        roi.rotation_rad + math.radians(rng.normal(0, 8))), True))  # fmt: skip
    return out


def _row(sample: RenderSample, roi: Roi, jittered: bool, index: int, cfg: RenderConfig, source: str, face,
         with_teacher: bool) -> dict[str, object]:  # fmt: skip
    p = sample.params
    row: dict[str, object] = {
        "roi": np.array([*roi.center_xy, *roi.size_wh, roi.rotation_rad], np.float32),
        "jitter": jittered, "blendshapes": sample.blendshapes, "blendshapes_valid": np.ones(52, bool),
        "rotation": sample.pose.rotation, "translation_cm": sample.pose.translation_cm,
        "landmarks": to_crop(sample.landmarks_image, roi, cfg.crop_size), "visibility": sample.visibility,
        "presence": np.float32(1.0), "person": person_of_identity(p.identity),
        "source": source, "frame": np.int32(index), "kind": "render",
        "camera_focal_px": np.float32(p.focal_px),
    }  # fmt: skip
    if with_teacher:
        row.update(teacher_labels(face, roi, cfg.crop_size))
    return row


def _rate_worker(args: tuple[RenderConfig, int, int, bool]) -> tuple[int, float]:
    cfg, start, count, with_teacher = args
    with HeadRenderer(cfg) as renderer:
        teacher = Teacher() if with_teacher else None
        identities = block_identities(cfg, start, count)
        params = [renderer.sample_params(np.random.default_rng([cfg.seed, i]), identities)
                  for i in range(start, start + count)]  # fmt: skip
        for p in params[: cfg.identities_per_block * 2]:  # per-identity caches warm, as in a block
            renderer.render(p)
        began = time.perf_counter()
        for p in params:
            sample = renderer.render(p)
            if teacher is not None:
                teacher(sample.image)
        return count, time.perf_counter() - began


def measure_rate(cfg: RenderConfig | None = None, count: int = 60, workers: int = 1, *,
                 teacher: bool = False) -> float:  # fmt: skip
    """Renders per second (procedural backgrounds, one block's identities), ``workers``
    processes of ``count`` renders each (Mesa threads per ``cfg.llvmpipe_threads``);
    ``teacher``: also run the teacher on each render.

    >>> measure_rate(RenderConfig(), count=60, workers=2)   # doctest: +SKIP
    """
    import multiprocessing

    cfg = cfg or RenderConfig()
    jobs = [(cfg, k * count, count, teacher) for k in range(workers)]
    began = time.perf_counter()
    if workers == 1:
        done = [_rate_worker(jobs[0])]
    else:
        with multiprocessing.get_context("spawn").Pool(workers) as pool:
            done = pool.map(_rate_worker, jobs)
    total = sum(n for n, _ in done)
    rate = total / max(seconds for _, seconds in done)
    logger.info("%d workers: %.1f renders/s (%.1f s wall in all)", workers, rate, time.perf_counter() - began)
    return rate
