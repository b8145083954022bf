"""``kaocap data build``: real-face datasets from folders of clips and photos.

The dataset directory (``kaocap.models.cache_dir() / "datasets" / name`` unless ``out`` is given)
gets one shard per unit of work (:mod:`kaocap.data.sources`) in ``<split>/``, named by
:func:`kaocap.data.shards.unit_name` from the unit's key and every setting that shapes its
samples, so a build that stops resumes by skipping units whose shard exists. The split of a
unit is ``split_of(person, seed)``: no person is ever in two splits. Photo folders are cut into
one unit per split of their photos' people. Samples and labels: :mod:`kaocap.data.real`.

>>> from kaocap.data.build import build_real
>>> result = build_real(videos=["../shared/data/videos"], images=["../shared/data/images"])  # doctest: +SKIP
>>> result.root, result.samples                                                               # doctest: +SKIP
"""

from __future__ import annotations

import dataclasses
import logging
import multiprocessing
import time
from collections.abc import Iterable, Mapping
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tqdm import tqdm

from kaocap.data import shards
from kaocap.data.people import RULES_DIGEST, load_overrides, person_of
from kaocap.data.real import TEACHER, RealParams, Teacher, label_unit
from kaocap.data.sources import SourceUnit, discover_units, photo_paths
from kaocap.errors import ConfigError, InputError

logger = logging.getLogger(__name__)

_TEACHER: Teacher | None = None  # one per worker process
#: Manifest settings that shape the samples: a dataset directory is built with one set only.
_SHAPING = ("kind", "seed", "params", "include_generated", "people_overrides", "people_rules")


@dataclass(frozen=True, slots=True)
class Job:
    """One unit, the split its people belong to, and the shard it writes."""

    unit: SourceUnit
    split: str
    path: Path


@dataclass(frozen=True, slots=True)
class BuildResult:
    """root: the dataset directory. units: units of the build; labelled: units done by this run
    (the rest were already there). samples: samples in the dataset. seconds: this run's wall time."""

    root: Path
    units: int
    labelled: int
    samples: int
    seconds: float


def default_root(name: str) -> Path:
    """Where a dataset called ``name`` lives unless the user names a directory."""
    from kaocap.models import cache_dir

    return cache_dir() / "datasets" / name


def plan_jobs(units: Iterable[SourceUnit], root: Path, seed: int, params: RealParams,
              overrides: Mapping[str, str]) -> list[Job]:  # fmt: skip
    """A job per unit and split: clips go to their person's split; a photo folder is cut into one
    job per split of its photos' people (photos whose person is None are left out)."""
    jobs = []
    shape = {**params.to_dict(), "seed": seed}
    for unit in units:
        if unit.kind != "photos":
            groups = {shards.split_of(unit.person, seed): unit}
        else:
            names: dict[str, list[str]] = {}
            for path in photo_paths(unit):
                person = person_of(f"{unit.key}/{path.name}", overrides)
                if person is not None:
                    names.setdefault(shards.split_of(person, seed), []).append(path.name)
            groups = {split: dataclasses.replace(unit, files=tuple(n)) for split, n in names.items()}
        for split, part in sorted(groups.items()):
            name = shards.unit_name("teacher", part.key, {**shape, "files": list(part.files)})
            jobs.append(Job(part, split, root / split / name))
    return jobs


def _run_job(job: Job, params: RealParams, seed: int, overrides: Mapping[str, str]) -> dict[str, Any]:
    global _TEACHER
    if _TEACHER is None:
        _TEACHER = Teacher()
    try:
        samples, stats = label_unit(job.unit, params, seed, _TEACHER, dict(overrides))
    except InputError as err:  # an unreadable source: no shard, so a later run tries it again
        logger.warning("skipped %s: %s", job.unit.key, err)
        return {"key": job.unit.key, "error": str(err), "frames": 0, "samples": 0}
    crops, labels = samples.arrays()
    shards.write_shard(job.path, crops, labels, quality=params.jpeg_quality)
    return {"key": job.unit.key, **dataclasses.asdict(stats)}


def run_jobs(jobs: list[Job], params: RealParams, seed: int, overrides: Mapping[str, str], *,
             workers: int = 2, progress: bool = True, desc: str = "labelling") -> list[dict[str, Any]]:  # fmt: skip
    """Run the jobs whose shard is missing (largest first), in ``workers`` processes."""
    todo = sorted((j for j in jobs if not j.path.exists()), key=_cost, reverse=True)
    bar = tqdm(total=len(todo), desc=desc, unit="unit", disable=not progress)
    done: list[dict[str, Any]] = []
    if workers <= 1 or len(todo) <= 1:
        for job in todo:
            done.append(_run_job(job, params, seed, overrides))
            _tick(bar, done)
    else:
        context = multiprocessing.get_context("spawn")
        with ProcessPoolExecutor(workers, mp_context=context) as pool:
            futures = [pool.submit(_run_job, job, params, seed, dict(overrides)) for job in todo]
            for future in futures:
                done.append(future.result())
                _tick(bar, done)
    bar.close()
    return done


def _tick(bar: tqdm, done: list[dict[str, Any]]) -> None:
    bar.update(1)
    bar.set_postfix(frames=sum(d["frames"] for d in done), samples=sum(d["samples"] for d in done))


def _cost(job: Job) -> int:
    """A rough size of a job for scheduling: file size (clips) or number of photos."""
    unit = job.unit
    if unit.kind == "photos":
        return len(unit.files) * 100_000
    if unit.kind == "sequence" or unit.still:
        return 1_000 if unit.still else len(list(unit.path.iterdir())) * 20_000
    return unit.path.stat().st_size


def check_settings(root: Path, settings: Mapping[str, Any]) -> dict[str, Any]:
    """The existing manifest of ``root`` ({} if none); ConfigError if it was built otherwise."""
    if not (root / "manifest.json").exists():
        return {}
    old = shards.read_manifest(root)
    changed = [k for k in _SHAPING if old.get(k) != settings.get(k)]
    if changed:
        raise ConfigError(f"{root} was built with other settings ({', '.join(changed)}): give another "
                          "--out, or delete it to rebuild")  # fmt: skip
    return old


def count_samples(root: Path) -> dict[str, Any]:
    """Samples per split, base and jittered, shards and people, read back from every shard."""
    per_split = {s: 0 for s in shards.SPLITS}
    persons: dict[str, set[str]] = {s: set() for s in shards.SPLITS}
    base = units = 0
    for split in shards.SPLITS:
        for shard in shards.iter_shards(root, split):
            units += 1
            per_split[split] += len(shard)
            base += int((~shard["jitter"]).sum())
            persons[split].update(shard["person"].tolist())
    total = sum(per_split.values())
    return {"samples": total, "base": base, "jittered": total - base, "per_split": per_split,
            "people": sum(len(p) for p in persons.values()), "shards": units,
            "people_per_split": {s: len(p) for s, p in persons.items()}}  # fmt: skip


def write_build_manifest(root: Path, settings: Mapping[str, Any], sources: Iterable[str], run: dict[str, Any],
                         old: Mapping[str, Any]) -> dict[str, Any]:  # fmt: skip
    """``manifest.json``: settings, sources, counts, teacher, and one entry per build run."""
    runs = [*old.get("runs", []), run]
    sources = sorted({*old.get("sources", []), *sources})
    manifest = {**settings, "sources": sources, "counts": count_samples(root),
                "teacher": TEACHER, "runs": runs,
                "build_seconds": round(sum(r["seconds"] for r in runs), 1)}  # fmt: skip
    shards.write_manifest(root, manifest)
    return manifest


def build_real(out: str | Path | None = None, *, videos: Iterable[str | Path] = (),
               images: Iterable[str | Path] = (), name: str = "real", seed: int = 0,
               params: RealParams | None = None, limit_sources: int | None = None,
               include_generated: bool = False, people: str | Path | Mapping[str, str] | None = None,
               workers: int = 2, progress: bool = True, card: bool = True) -> BuildResult:  # fmt: skip
    """Build (or resume) a real-face dataset from clip and photo folders; see the module docstring.

    people: a ``{key pattern: person}`` mapping or a JSON file of one (:mod:`kaocap.data.people`).
    limit_sources: keep the first N units (in key order), for quick trials.
    """
    start = time.time()
    params = params or RealParams()
    root = Path(out) if out is not None else default_root(name)
    overrides = dict(people) if isinstance(people, Mapping) else load_overrides(people)
    roots = {"videos": [str(Path(v).resolve()) for v in videos], "images": [str(Path(i).resolve()) for i in images]}
    settings = {"kind": "real", "seed": seed, "params": params.to_dict(), "roots": roots,
                "include_generated": include_generated, "people_overrides": overrides,
                "people_rules": RULES_DIGEST, "limit_sources": limit_sources}  # fmt: skip
    old = check_settings(root, settings)
    units = discover_units(roots["videos"], roots["images"], include_generated=include_generated, overrides=overrides)
    jobs = plan_jobs(units[:limit_sources], root, seed, params, overrides)
    done = run_jobs(jobs, params, seed, overrides, workers=workers, progress=progress)
    run = {"started": time.strftime("%Y-%m-%dT%H:%M:%S", time.localtime(start)), "units_labelled": len(done),
           "frames": sum(d["frames"] for d in done), "samples": sum(d["samples"] for d in done),
           "seconds": round(time.time() - start, 1), "workers": workers,
           "errors": {d["key"]: d["error"] for d in done if "error" in d}}  # fmt: skip
    manifest = write_build_manifest(root, settings, (j.unit.key for j in jobs), run, old)
    if card:
        from kaocap.data.card import write_card

        write_card(root)
    logger.info("%s: %d units (%d labelled now), %d samples", root, len(jobs), len(done), manifest["counts"]["samples"])
    return BuildResult(root, len(jobs), len(done), manifest["counts"]["samples"], time.time() - start)
