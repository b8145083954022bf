"""Shard format: round trip, atomic writes, person splits that cannot leak."""

from __future__ import annotations

import numpy as np
import pytest

from kaocap.data import shards


def _labels(n: int, person: str = "p0") -> dict[str, np.ndarray]:
    rng = np.random.default_rng(n)
    return {
        "roi": rng.random((n, 5)).astype(np.float32),
        "jitter": np.zeros(n, bool),
        "blendshapes": rng.random((n, 52)).astype(np.float32),
        "blendshapes_valid": np.ones((n, 52), bool),
        "rotation": np.tile(np.eye(3, dtype=np.float32), (n, 1, 1)),
        "translation_cm": rng.random((n, 3)).astype(np.float32),
        "landmarks": rng.random((n, 478, 3)).astype(np.float32),
        "visibility": np.ones((n, 478), np.float32),
        "presence": np.ones(n, np.float32),
        "person": np.array([person] * n),
        "source": np.array(["clip.mp4"] * n),
        "frame": np.arange(n, dtype=np.int32),
        "kind": np.array(["teacher"] * n),
    }


def test_round_trip(tmp_path):
    rng = np.random.default_rng(0)
    crops = np.zeros((4, 64, 64, 3), np.uint8)
    crops[:, 16:48, 16:48] = rng.integers(0, 255, (4, 1, 1, 3), dtype=np.uint8)  # flat patches: JPEG-stable
    labels = _labels(4)
    path = tmp_path / "train" / "u.npz"
    shards.write_shard(path, crops, labels)
    shard = next(shards.iter_shards(tmp_path, "train"))
    assert len(shard) == 4 and set(shard.keys()) == set(labels)
    for key, value in labels.items():
        np.testing.assert_array_equal(shard[key], value)
    inner = (slice(None), slice(22, 42), slice(22, 42))  # away from the JPEG edge ringing
    assert np.abs(shard.crops()[inner].astype(int) - crops[inner]).max() <= 6
    assert not list(tmp_path.rglob("*.tmp*"))


def test_rows_must_match(tmp_path):
    labels = _labels(3)
    labels["presence"] = np.ones(2, np.float32)
    with pytest.raises(ValueError, match="presence"):
        shards.write_shard(tmp_path / "x.npz", np.zeros((3, 8, 8, 3), np.uint8), labels)
    del labels["presence"]
    with pytest.raises(ValueError, match="miss"):
        shards.write_shard(tmp_path / "x.npz", np.zeros((3, 8, 8, 3), np.uint8), labels)


def test_person_split_is_a_function_of_the_person():
    people = [f"person{i}" for i in range(2000)]
    splits = [shards.split_of(p, seed=7) for p in people]
    assert splits == [shards.split_of(p, seed=7) for p in reversed(people)][::-1]
    counts = {s: splits.count(s) for s in shards.SPLITS}
    assert 1450 < counts["train"] < 1750 and 120 < counts["val"] < 280 and 120 < counts["test"] < 280
    assert splits != [shards.split_of(p, seed=8) for p in people]


def test_unit_names_are_stable_and_distinct():
    a = shards.unit_name("teacher", "videos/a b.mp4", {"stride": 2})
    assert a == shards.unit_name("teacher", "videos/a b.mp4", {"stride": 2})
    assert a != shards.unit_name("teacher", "videos/a b.mp4", {"stride": 3})
    assert a.startswith("teacher-a_b-") and a.endswith(".npz")
