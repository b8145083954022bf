"""``kaocap data render``: a synthetic set of many render blocks, resumable, in worker processes.

Blocks of ``block`` renders go 8 : 1 : 1 to train / val / test by block index; each block draws
its identities from people of its own split (``render_shards``), so splits never share a person.
"""

from __future__ import annotations

import multiprocessing
import time
from concurrent.futures import ProcessPoolExecutor
from dataclasses import replace
from pathlib import Path

from kaocap.data import shards
from kaocap.data.build import BuildResult, default_root
from kaocap.data.render import RenderConfig
from kaocap.data.render_shards import render_block, render_unit_name

#: Split of block ``i``: blocks 0-7 of every ten train, 8 val, 9 test.
_SPLIT_OF_BLOCK = ("train",) * 8 + ("val", "test")


def plan_blocks(count: int, block: int) -> list[tuple[int, int, str]]:
    """(start index, count, split) of every block making up ``count`` renders."""
    starts = range(0, count, block)
    return [(s, min(block, count - s), _SPLIT_OF_BLOCK[i % len(_SPLIT_OF_BLOCK)]) for i, s in enumerate(starts)]


def _render_one(args: tuple[RenderConfig, int, int, str, str]) -> int:
    cfg, start, n, split, path = args
    render_block(cfg, start, n, path, split=split)
    return n


def build_renders(out: str | Path | None = None, *, count: int = 50_000, block: int = 256, seed: int = 0,
                  teacher: bool = True, workers: int = 2, progress: bool = False,
                  card: bool = True) -> BuildResult:  # fmt: skip
    """Render ``count`` samples into ``out`` (default: the cache's ``datasets/render``); blocks
    whose shard exists are skipped, so a stopped build resumes."""
    from tqdm import tqdm

    root = Path(out) if out is not None else default_root("render")
    cfg = replace(RenderConfig(seed=seed), teacher=teacher)
    todo = []
    for start, n, split in plan_blocks(count, block):
        path = root / split / render_unit_name(cfg, start, n, split)
        if not path.exists():
            todo.append((cfg, start, n, split, str(path)))
    started = time.perf_counter()
    bar = tqdm(total=sum(t[2] for t in todo), unit="render", disable=not progress)
    if workers <= 1:
        for job in todo:
            bar.update(_render_one(job))
    else:  # spawn: forking a process that already runs GL and inference threads can deadlock
        with ProcessPoolExecutor(max_workers=workers, mp_context=multiprocessing.get_context("spawn")) as pool:
            for done in pool.map(_render_one, todo):
                bar.update(done)
    bar.close()
    seconds = time.perf_counter() - started
    shards.write_manifest(root, {"kind": "render", "seed": seed, "count": count, "block": block,
                                 "teacher": teacher, "config": repr(cfg),
                                 "last_run": {"blocks": len(todo), "seconds": round(seconds, 1)}})  # fmt: skip
    if card:
        from kaocap.data.card import write_card

        write_card(root)
    units = len(plan_blocks(count, block))
    samples = sum(len(s) for s in shards.iter_shards(root))
    return BuildResult(root=root, units=units, labelled=len(todo), samples=samples, seconds=seconds)
