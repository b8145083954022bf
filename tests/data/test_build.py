"""A tiny real-face build end to end: 2 clips, a frame folder and identity photo folders."""

from __future__ import annotations

import json

import av
import numpy as np
import pytest

from kaocap.capture import read_image
from kaocap.cli import main
from kaocap.data import shards
from kaocap.data.build import build_real
from kaocap.data.real import RealParams, crop_image, roi_from_array
from tests.conftest import shared

PARAMS = RealParams(stride=3, jitter=1)
CLIPS = (("videos", "mead_dreamtalk", "W011_front_surprised_level3_001.mp4"),
         ("videos", "liveportrait", "assets", "examples", "driving", "d0.mp4"))  # fmt: skip
PHOTOS = (("images", "dlib", "examples", "johns"), ("images", "facenet_pytorch", "data", "test_images"))
JOHNS = ("John_Simm", "John_Salley")


@pytest.fixture(scope="module")
def inputs(tmp_path_factory):
    """videos/ with 2 clips and a 20-frame folder of a third; images/ with identity folders."""
    root = tmp_path_factory.mktemp("inputs")
    (root / "videos" / "frames").mkdir(parents=True)
    for parts in CLIPS:
        (root / "videos" / parts[-1]).symlink_to(shared(*parts))
    frames = sorted(shared("videos", "pc_avs_frames_history", "misc", "Pose_Source", "517600078").glob("*.jpg"))
    for path in frames[:20]:
        (root / "videos" / "frames" / path.name).symlink_to(path)
    (root / "images" / "johns").mkdir(parents=True)
    for name in JOHNS:  # an identity folder: person = folder name
        (root / "images" / "johns" / name).symlink_to(shared(*PHOTOS[0], name), target_is_directory=True)
    (root / "images" / "test_images").symlink_to(shared(*PHOTOS[1]), target_is_directory=True)
    return root


@pytest.fixture(scope="module")
def built(inputs, tmp_path_factory):
    out = tmp_path_factory.mktemp("ds") / "tiny"
    result = build_real(out, videos=[inputs / "videos"], images=[inputs / "images"], seed=3, params=PARAMS,
                        workers=1, progress=False)  # fmt: skip
    return out, result


def _all(root):
    return [(shard.path.parent.name, shard) for shard in shards.iter_shards(root)]


def test_shards_read_back(built):
    root, result = built
    loaded = _all(root)
    assert result.samples == sum(len(s) for _, s in loaded) > 100
    kinds = {str(k) for _, s in loaded for k in s["source"]}
    assert any(k.endswith(".mp4") for k in kinds) and any(k.endswith("/frames") for k in kinds)
    assert any(k.startswith("images/johns/") for k in kinds)
    for _, shard in loaded:
        assert set(shards.REQUIRED_KEYS) <= set(shard.keys())
        n = len(shard)
        assert shard["landmarks"].shape == (n, 478, 3) and shard["blendshapes"].shape == (n, 52)
        if n:
            assert shard.crop(0).shape == (128, 128, 3)
            assert np.isnan(shard["blendshapes"][:, -1]).all() and not shard["blendshapes_valid"][:, -1].any()
            assert np.isfinite(shard["landmarks"]).all() and (shard["presence"] > 0.5).all()
    manifest = shards.read_manifest(root)
    assert manifest["seed"] == 3 and manifest["params"] == PARAMS.to_dict()
    assert manifest["counts"]["samples"] == result.samples and "0.010%" in manifest["teacher"]["agreement"]
    assert manifest["runs"][0]["units_labelled"] == result.units


def _source_image(inputs, key: str, frame: int) -> np.ndarray:
    path = inputs / key
    if frame < 0:
        return read_image(path)
    if path.is_dir():
        return read_image(sorted(path.iterdir())[frame])
    with av.open(str(path)) as container:
        for i, decoded in enumerate(container.decode(video=0)):
            if i == frame:
                return decoded.to_ndarray(format="rgb24")
    raise AssertionError(f"{key} has no frame {frame}")


def test_crops_are_the_runtime_crops(built, inputs):
    """Re-crop the source frame with the stored ROI: the stored JPEG matches within its loss, and
    the landmarks land on the face the teacher saw."""
    root, _ = built
    rng = np.random.default_rng(0)
    checked = 0
    for _, shard in _all(root):
        for i in rng.choice(len(shard), min(4, len(shard)), replace=False) if len(shard) else []:
            image = _source_image(inputs, str(shard["source"][i]), int(shard["frame"][i]))
            roi, stored = shard["roi"][i], shard.crop(i).astype(int)
            error = np.abs(crop_image(image, roi_from_array(roi), 128).astype(int) - stored).mean()
            shifted = roi + np.array([0.02 * roi[2], 0, 0, 0, 0], np.float32)  # 2.6 crop px to the side
            off = np.abs(crop_image(image, roi_from_array(shifted), 128).astype(int) - stored).mean()
            assert error < 4 and error < 0.7 * off, (shard["source"][i], error, off)  # JPEG q92 loss only
            lm = shard["landmarks"][i]
            assert ((lm[:, :2] > -20) & (lm[:, :2] < 148)).mean() > 0.95
            checked += 1
    assert checked >= 10


def test_splits_follow_people(built):
    root, _ = built
    split_of_person: dict[str, set[str]] = {}
    for split, shard in _all(root):
        for person in set(shard["person"].tolist()):
            split_of_person.setdefault(person, set()).add(split)
            assert shards.split_of(person, 3) == split
    assert all(len(s) == 1 for s in split_of_person.values())
    assert {"john_simm", "paul_rudd", "mead:W011"} <= set(split_of_person)


def test_resume_does_no_work(built, inputs):
    root, first = built
    again = build_real(root, videos=[inputs / "videos"], images=[inputs / "images"], seed=3, params=PARAMS,
                       workers=1, progress=False, card=False)  # fmt: skip
    assert again.labelled == 0 and again.units == first.units and again.samples == first.samples
    assert shards.read_manifest(root)["runs"][-1]["units_labelled"] == 0
    with pytest.raises(Exception, match="other settings"):
        build_real(root, videos=[inputs / "videos"], seed=4, params=PARAMS, workers=1, progress=False)


def test_same_seed_same_dataset(built, inputs, tmp_path):
    """A rebuild of the clips in 2 worker processes gives the same shards, array for array."""
    root, _ = built
    other = tmp_path / "again"
    build_real(other, videos=[inputs / "videos"], seed=3, params=PARAMS, workers=2, progress=False, card=False)
    theirs = {p.relative_to(other): p for p in other.glob("*/*.npz")}
    ours = {p.relative_to(root): p for p in root.glob("*/*.npz") if p.relative_to(root) in theirs}
    assert len(ours) == len(theirs) == 3
    for name, path in ours.items():
        a, b = shards.read_shard(path), shards.read_shard(theirs[name])
        for key in a.keys():  # noqa: SIM118 (a Shard, not a dict)
            np.testing.assert_array_equal(a[key], b[key], err_msg=f"{name}: {key}")


def test_card_files(built):
    root, result = built
    card = root / "card"
    for name in ("counts.json", "card.md", "blendshapes.png", "samples.png", "people.png"):
        assert (card / name).stat().st_size > 500, name
    counts = json.loads((card / "counts.json").read_text())
    assert counts["samples"] == result.samples
    assert sum(v["samples"] for v in counts["split"].values()) == result.samples
    assert "john_simm" in counts["person"] and "| `john_simm` |" in (card / "card.md").read_text()


def test_cli_build_and_card(inputs, tmp_path, capsys):
    out = tmp_path / "cli"
    code = main(["data", "build", "--videos", str(inputs / "videos"), "--out", str(out), "--limit-sources", "1",
                 "--stride", "8", "--jitter", "0", "--workers", "1", "-q"])  # fmt: skip
    assert code == 0 and "1 units" in capsys.readouterr().out
    assert sum(len(s) for s in shards.iter_shards(out)) > 0
    assert main(["data", "card", str(out)]) == 0 and (out / "card" / "samples.png").is_file()
    assert main(["data", "build", "--videos", str(inputs / "nowhere"), "--out", str(tmp_path / "x"), "-q"]) == 3
