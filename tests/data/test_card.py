"""Dataset card on small hand-built datasets: counts, Markdown, pictures, edge cases."""

from __future__ import annotations

import json

import cv2
import numpy as np

from kaocap.data import shards
from kaocap.data.card import counts, write_card


def _shard(root, split, name, person, n, kind="teacher", rotation=True, seed=0):
    rng = np.random.default_rng(seed)
    crops = np.zeros((n, 64, 64, 3), np.uint8)
    crops[:, 16:48, 16:48] = rng.integers(0, 255, (n, 1, 1, 3), dtype=np.uint8)
    lm = np.zeros((n, 478, 3), np.float32)
    lm[:, :, :2] = rng.uniform(16, 48, (n, 478, 2))
    blend = rng.random((n, 52)).astype(np.float32)
    blend[:, -1] = np.nan
    labels = {"roi": np.tile(np.array([32, 32, 64, 64, 0.1], np.float32), (n, 1)), "jitter": np.arange(n) % 2 == 1,
              "blendshapes": blend, "blendshapes_valid": np.isfinite(blend),
              "rotation": np.tile(np.eye(3, dtype=np.float32) if rotation else np.full((3, 3), np.nan, np.float32), (n, 1, 1)),
              "translation_cm": np.zeros((n, 3), np.float32), "landmarks": lm,
              "visibility": np.full((n, 478), np.nan, np.float32), "presence": np.ones(n, np.float32),
              "person": np.array([person] * n), "source": np.array([f"videos/{name}.mp4"] * n),
              "frame": np.arange(n, dtype=np.int32), "kind": np.array([kind] * n)}  # fmt: skip
    shards.write_shard(root / split / f"{name}.npz", crops, labels)


def test_counts_and_files(tmp_path):
    _shard(tmp_path, "train", "a", "alice", 6)
    _shard(tmp_path, "train", "b", "bob", 4, kind="take", rotation=False)
    _shard(tmp_path, "val", "c", "carol", 3)
    _shard(tmp_path, "test", "empty", "nobody", 0)
    shards.write_manifest(tmp_path, {"seed": 0, "runs": [{"seconds": 1.0}], "build_seconds": 1.0})
    count = counts(tmp_path)
    assert count["samples"] == 13 and count["base"] == 3 + 2 + 2
    assert count["split"] == {"train": {"samples": 10, "base": 5}, "val": {"samples": 3, "base": 2}}
    assert count["kind"]["take"] == {"samples": 4, "base": 2}
    assert count["person"]["carol"] == {"samples": 3, "base": 2, "split": "val"}
    out = write_card(tmp_path)
    assert json.loads((out / "counts.json").read_text()) == json.loads(json.dumps(count))
    md = (out / "card.md").read_text()
    assert "13 samples (7 base, 6 jittered), 3 people" in md and "| `alice` | train | 6 | 3 |" in md
    for name in ("blendshapes.png", "samples.png", "people.png"):
        image = cv2.imread(str(out / name))
        assert image is not None and min(image.shape[:2]) > 150, name
    assert cv2.imread(str(out / "people.png")).shape[1] == 3 * 128  # one cell per person


def test_empty_dataset(tmp_path):
    _shard(tmp_path, "train", "empty", "nobody", 0)
    out = write_card(tmp_path)
    assert json.loads((out / "counts.json").read_text())["samples"] == 0
    assert (out / "samples.png").is_file() and (out / "blendshapes.png").is_file()
