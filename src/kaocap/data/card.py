"""Dataset card: what a dataset holds, as files people can read, written into ``<root>/card/``.

* ``counts.json``: samples (all / base = not jittered) per split, kind, source and person.
* ``card.md``: the same as tables, with the manifest's settings and teacher.
* ``blendshapes.png``: per-blendshape label histograms of the base samples (log counts).
* ``samples.png``: a contact sheet of random samples: crop, landmarks, head axes (x red,
  y green, z blue, drawn in the crop), top blendshapes, yaw/pitch/roll (degrees, kaocap.types).
* ``people.png``: one crop per person id, to review the person rules by eye.

>>> write_card(default_root("real"))        # doctest: +SKIP
"""

from __future__ import annotations

import json
import logging
from collections import Counter, defaultdict
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

from kaocap.constants import BLENDSHAPES, LANDMARK_NOSE_TIP
from kaocap.data import shards
from kaocap.types import matrix_to_euler

logger = logging.getLogger(__name__)

SHEET_COLUMNS, SHEET_ROWS = 6, 4
PEOPLE_COLUMNS = 14


def _index(root: Path) -> dict[str, Any]:
    """Small label arrays of every sample (no crops), concatenated, plus where each came from."""
    cols: dict[str, list] = defaultdict(list)
    for split in shards.SPLITS:
        for shard in shards.iter_shards(root, split):
            n = len(shard)
            for key in ("person", "source", "kind", "jitter", "blendshapes"):
                cols[key].append(shard[key])
            cols["split"].append(np.array([split] * n, dtype=str))
            cols["path"].append(np.array([str(shard.path)] * n, dtype=str))
            cols["row"].append(np.arange(n))
    if not cols:
        return {"person": np.zeros(0, str), "jitter": np.zeros(0, bool), "blendshapes": np.zeros((0, 52))}
    return {k: np.concatenate(v) for k, v in cols.items()}


def _per(values: NDArray, base: NDArray[np.bool_]) -> dict[str, dict[str, int]]:
    every, based = Counter(values.tolist()), Counter(values[base].tolist())
    return {k: {"samples": every[k], "base": based[k]} for k in sorted(every)}


def counts(root: Path) -> dict[str, Any]:
    """Samples per split, kind, source and person (``samples`` and ``base`` = not jittered)."""
    idx = _index(root)
    if not len(idx["person"]):
        return {"samples": 0, "base": 0, "split": {}, "kind": {}, "source": {}, "person": {}}
    base = ~idx["jitter"]
    person_split = {p: s for p, s in zip(idx["person"].tolist(), idx["split"].tolist())}
    people = _per(idx["person"], base)
    for p in people:
        people[p]["split"] = person_split[p]
    return {"samples": len(base), "base": int(base.sum()), "split": _per(idx["split"], base),
            "kind": _per(idx["kind"], base), "source": _per(idx["source"], base), "person": people}  # fmt: skip


def _table(title: str, rows: dict[str, dict[str, Any]], columns: tuple[str, ...]) -> list[str]:
    out = [f"## {title}", "", "| name | " + " | ".join(columns) + " |", "|---" * (len(columns) + 1) + "|"]
    out += [f"| `{k}` | " + " | ".join(str(v.get(c, "")) for c in columns) + " |" for k, v in rows.items()]
    return [*out, ""]


def markdown(root: Path, count: dict[str, Any], manifest: dict[str, Any]) -> str:
    """The card as Markdown: summary, settings, teacher, pictures, tables per split/kind/source/person."""
    lines = [f"# Dataset `{root.name}`", "",
             (f"{count['samples']} samples ({count['base']} base, {count['samples'] - count['base']} jittered), "
              f"{len(count['person'])} people, {len(count['source'])} sources. Built "
              f"{len(manifest.get('runs', []))} time(s), {manifest.get('build_seconds', '?')} s in all."), "",
             "![samples](samples.png)", "", "![blendshapes](blendshapes.png)", "", "![people](people.png)", "",
             "## Settings", "", "```json", json.dumps({k: v for k, v in manifest.items()
                                                      if k not in ("sources", "runs", "counts")}, indent=1),
             "```", ""]  # fmt: skip
    lines += _table("Splits", count["split"], ("samples", "base"))
    lines += _table("Kinds", count["kind"], ("samples", "base"))
    lines += _table("Sources", count["source"], ("samples", "base"))
    lines += _table("People", count["person"], ("split", "samples", "base"))
    return "\n".join(lines)


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def plot_histograms(blendshapes: NDArray[np.floating], path: Path) -> None:
    """(N, 52) labels (NaN = unknown) -> a heat map whose row i is blendshape i's histogram
    (20 bins over 0..1, colour = log10 of the count), beside each shape's mean and count."""
    plt = _pyplot()
    bins = np.linspace(0, 1, 21)
    hist = np.zeros((len(BLENDSHAPES), len(bins) - 1))
    means, known = np.full(len(BLENDSHAPES), np.nan), np.zeros(len(BLENDSHAPES), int)
    for i in range(len(BLENDSHAPES)):
        values = blendshapes[:, i][np.isfinite(blendshapes[:, i])]
        hist[i], _ = np.histogram(values, bins=bins)
        known[i] = len(values)
        means[i] = values.mean() if len(values) else np.nan
    fig = plt.figure(figsize=(14, 14))
    ax, bar = fig.add_axes((0.15, 0.1, 0.58, 0.86)), fig.add_axes((0.75, 0.1, 0.23, 0.86))
    image = ax.imshow(np.log10(1 + hist), aspect="auto", cmap="viridis", extent=(0, 1, len(BLENDSHAPES) - 0.5, -0.5))
    ax.set_yticks(range(len(BLENDSHAPES)), BLENDSHAPES, fontsize=9)
    ax.set_xticks(np.linspace(0, 1, 6))
    ax.set_xlabel("label value (20 bins)")
    ax.set_title(f"Blendshape label histograms, {len(blendshapes)} base samples", fontsize=13)
    colour = fig.colorbar(image, cax=fig.add_axes((0.15, 0.045, 0.58, 0.012)), orientation="horizontal")
    ticks = range(int(np.log10(1 + max(1, hist.max()))) + 1)
    colour.set_ticks([np.log10(1 + 10**t) for t in ticks], labels=[f"{10**t:g}" for t in ticks])
    colour.set_label("samples per bin (log scale)")
    bar.barh(range(len(BLENDSHAPES)), np.nan_to_num(means), color="tab:orange")
    for i, (m, n) in enumerate(zip(means, known)):
        bar.text(0.01, i, "no labels" if not n else f"{m:.2f} (n={n})", va="center", fontsize=8)
    bar.set_ylim(len(BLENDSHAPES) - 0.5, -0.5)
    bar.set_yticks([])
    bar.set_xlim(0, 1)
    bar.set_title("mean label", fontsize=13)
    fig.savefig(path, dpi=80)
    plt.close(fig)


def _axes_in_crop(rotation: NDArray, roi_row: NDArray) -> NDArray[np.float64]:
    """(3, 2) directions in crop px of the head's x, y, z axes (camera y up -> image y down)."""
    c, s = np.cos(roi_row[4]), np.sin(roi_row[4])
    to_crop = np.array([[c, s], [-s, c]])
    image_dirs = np.stack([rotation[0, :], -rotation[1, :]], axis=1)  # columns of R, in image axes
    return image_dirs @ to_crop.T


def _short(text: str, n: int) -> str:
    """``text``, or its last n - 1 characters after an ellipsis."""
    return text if len(text) <= n else "…" + text[-(n - 1):]


def _sample_text(shard: shards.Shard, row: int) -> list[str]:
    text = [f"{_short(str(shard['person'][row]), 22)} {shard['kind'][row]}{' jit' if shard['jitter'][row] else ''}"]
    rot = shard["rotation"][row]
    if np.isfinite(rot).all():
        yaw, pitch, roll = matrix_to_euler(rot)
        text.append(f"yaw {yaw:+.0f} pitch {pitch:+.0f} roll {roll:+.0f}")
    values = np.nan_to_num(shard["blendshapes"][row], nan=-1.0)
    return text + [f"{BLENDSHAPES[i]} {values[i]:.2f}" for i in np.argsort(-values)[:3]]


def _person_text(shard: shards.Shard, row: int) -> list[str]:
    return [_short(str(shard["person"][row]), 20), _short(str(shard["source"][row]).split("/")[-1], 20)]


class _Sheet:
    """A grid of upscaled crops on one canvas, each with a few lines of text above it."""

    def __init__(self, n: int, columns: int, cell: int, lines: int) -> None:
        self.columns, self.cell, self.text_h = max(1, min(columns, n)), cell, 15 * lines + 6
        rows = max(1, -(-n // self.columns))
        self.canvas = np.full((rows * (cell + self.text_h), self.columns * cell, 3), 255, np.uint8)
        self.texts: list[tuple[float, float, str]] = []
        self.points: list[NDArray] = []
        self.arrows: list[tuple[NDArray, NDArray, str]] = []

    def add(self, k: int, crop: NDArray[np.uint8], text: list[str]) -> tuple[NDArray, float]:
        """Place crop k; returns its top-left corner on the canvas and its px scale."""
        import cv2

        r, c = divmod(k, self.columns)
        origin = np.array([c * self.cell, r * (self.cell + self.text_h) + self.text_h], float)
        y, x = int(origin[1]), int(origin[0])
        self.canvas[y:y + self.cell, x:x + self.cell] = cv2.resize(crop, (self.cell, self.cell), interpolation=cv2.INTER_LINEAR)
        self.texts.append((x + 3, y - self.text_h + 3, "\n".join(text)))
        return origin, self.cell / crop.shape[0]

    def save(self, path: Path, title: str) -> None:
        plt = _pyplot()
        h, w = self.canvas.shape[:2]
        fig = plt.figure(figsize=(w / 100, (h + 40) / 100), dpi=100)
        ax = fig.add_axes((0, 0, 1, h / (h + 40)))
        ax.imshow(self.canvas, interpolation="nearest")
        if self.points:
            pts = np.concatenate(self.points)
            ax.scatter(pts[:, 0], pts[:, 1], s=0.8, c="cyan", linewidths=0)
        for tail, vec, colour in self.arrows:
            ax.annotate("", tail + vec, tail, arrowprops={"color": colour, "width": 1.5, "headwidth": 6, "headlength": 6})
        for x, y, text in self.texts:
            ax.text(x, y, text, fontsize=8.5, family="monospace", va="top", ha="left")
        ax.set_xlim(0, w)
        ax.set_ylim(h, 0)
        ax.axis("off")
        fig.text(0.5, 1 - 20 / (h + 40), title, ha="center", va="center", fontsize=14)
        fig.savefig(path, dpi=100)
        plt.close(fig)


def _each(idx: dict[str, Any], rows: NDArray[np.int64]):
    """(k, shard, row) for the chosen samples, loading each shard once (rows sorted by shard)."""
    loaded: dict[str, shards.Shard] = {}
    for k, i in enumerate(rows):
        path = str(idx["path"][i])
        if path not in loaded:
            loaded = {path: shards.read_shard(Path(path))}
        yield k, loaded[path], int(idx["row"][i])


def contact_sheet(idx: dict[str, Any], rows: NDArray[np.int64], path: Path, title: str) -> None:
    """Samples with landmarks, head axes (x red, y green, z blue) and their top labels."""
    sheet = _Sheet(len(rows), SHEET_COLUMNS, 256, 5)
    for k, shard, row in _each(idx, rows):
        origin, scale = sheet.add(k, shard.crop(row), _sample_text(shard, row))
        lm, rot = shard["landmarks"][row], shard["rotation"][row]
        if np.isfinite(lm).all():
            sheet.points.append(origin + lm[:, :2] * scale)
            if np.isfinite(rot).all():
                nose = origin + lm[LANDMARK_NOSE_TIP, :2] * scale
                for d, colour in zip(_axes_in_crop(rot, shard["roi"][row]), ("red", "lime", "blue")):
                    sheet.arrows.append((nose, d * sheet.cell * 0.25, colour))
    sheet.save(path, title)


def people_sheet(idx: dict[str, Any], rows: NDArray[np.int64], path: Path, title: str) -> None:
    """One crop per person id, with the id and the source it came from."""
    sheet = _Sheet(len(rows), PEOPLE_COLUMNS, 128, 2)
    for k, shard, row in _each(idx, rows):
        sheet.add(k, shard.crop(row), _person_text(shard, row))
    sheet.save(path, title)


def write_card(root: str | Path, *, seed: int = 0) -> Path:
    """Write ``counts.json``, ``card.md`` and the PNGs into ``<root>/card/``; returns that folder."""
    root = Path(root)
    out = root / "card"
    out.mkdir(parents=True, exist_ok=True)
    manifest = shards.read_manifest(root) if (root / "manifest.json").exists() else {}
    count = counts(root)
    (out / "counts.json").write_text(json.dumps(count, indent=1, sort_keys=True))
    (out / "card.md").write_text(markdown(root, count, manifest))
    idx = _index(root)
    base = np.flatnonzero(~idx["jitter"])
    plot_histograms(idx["blendshapes"][base], out / "blendshapes.png")
    rng = np.random.default_rng(seed)
    picks = np.sort(rng.choice(len(idx["person"]), min(len(idx["person"]), SHEET_COLUMNS * SHEET_ROWS), replace=False))
    contact_sheet(idx, picks, out / "samples.png", f"{len(picks)} random samples of {root.name}")
    firsts = np.array(sorted({p: i for i, p in reversed(list(zip(base, idx["person"][base])))}.values()), dtype=np.int64)
    people_sheet(idx, firsts, out / "people.png", f"One base crop per person ({len(firsts)})")
    logger.info("wrote the card of %s into %s", root, out)
    return out
