"""Real-face samples: crop geometry, jitter, thinning, person rules, source discovery."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from kaocap.data import shards
from kaocap.data.build import plan_jobs
from kaocap.data.people import person_of
from kaocap.data.real import (
    RealParams,
    Teacher,
    Thinner,
    crop_image,
    jitter_roi,
    label_unit,
    landmarks_in_crop,
    roi_array,
    roi_from_array,
)
from kaocap.data.sources import SourceUnit, discover_units
from kaocap.landmarks.process import crop as runtime_crop
from kaocap.landmarks.process import roi_from_landmarks
from kaocap.types import Roi, invert_affine
from tests.conftest import shared


def _face(centre=(100.0, 120.0), scale=40.0, seed=0) -> np.ndarray:
    """(478, 3) px points spread like a face, eye corners 33 and 263 level."""
    rng = np.random.default_rng(seed)
    pts = np.zeros((478, 3), np.float32)
    pts[:, :2] = rng.uniform(-1, 1, (478, 2)) * scale + centre
    pts[33, :2], pts[263, :2] = (centre[0] - scale / 2, centre[1]), (centre[0] + scale / 2, centre[1])
    pts[:, 2] = rng.normal(0, 5, 478)
    return pts


def test_crop_is_the_runtime_crop():
    rng = np.random.default_rng(1)
    image = rng.integers(0, 255, (240, 320, 3), dtype=np.uint8)
    roi = Roi(np.array([150.0, 110.0], np.float32), np.array([90.0, 90.0], np.float32), 0.3)
    ours = crop_image(image, roi, 128)
    theirs = runtime_crop(image, [roi], 128)[0]
    np.testing.assert_allclose(ours / 255.0, theirs, atol=1e-6)


@given(st.floats(-math.pi, math.pi), st.floats(20, 300), st.floats(-50, 50), st.floats(-50, 50))
def test_landmarks_map_into_the_crop_and_back(rotation, side, dx, dy):
    points = _face()
    roi = Roi(np.array([100 + dx, 120 + dy], np.float32), np.array([side, side], np.float32), rotation)
    in_crop = landmarks_in_crop(points, roi, 128)
    back = np.c_[in_crop[:, :2], np.ones(478)] @ invert_affine(roi.crop_matrix(128)).T
    np.testing.assert_allclose(back, points[:, :2], atol=2e-3 * max(side, 1))
    np.testing.assert_allclose(in_crop[:, 2], points[:, 2] * 128 / side, rtol=1e-5, atol=1e-4)
    assert roi_from_array(roi_array(roi)).crop_matrix(128) == pytest.approx(roi.crop_matrix(128), abs=1e-3)


def test_base_roi_puts_the_face_in_the_middle_third():
    roi = roi_from_landmarks(_face())
    in_crop = landmarks_in_crop(_face(), roi, 128)
    lo, hi = in_crop[:, :2].min(0), in_crop[:, :2].max(0)
    np.testing.assert_allclose(lo, 128 / 6, atol=0.5)  # box scaled by 1.5 around the points
    np.testing.assert_allclose(hi, 128 * 5 / 6, atol=0.5)


def test_jitter_is_bounded_and_seeded():
    base = roi_from_landmarks(_face())
    params = RealParams()
    draws = [jitter_roi(base, np.random.default_rng(3), params) for _ in range(2)]
    assert roi_array(draws[0]).tolist() == roi_array(draws[1]).tolist()
    rng = np.random.default_rng(4)
    rois = np.array([roi_array(jitter_roi(base, rng, params)) for _ in range(500)])
    side = float(base.size_wh[0])
    assert np.abs(rois[:, :2] - base.center_xy).max() <= 2.5 * params.shift_sd * side + 1e-3
    assert np.abs(np.log(rois[:, 2] / side)).max() <= 2.5 * params.scale_sd + 1e-5
    assert np.abs(np.degrees(rois[:, 4] - base.rotation_rad)).max() <= 2.5 * params.rotation_sd_deg + 1e-4
    assert rois[:, :2].std(0).min() > 0.5 * params.shift_sd * side  # it does move


def test_thinner_skips_only_near_identical_faces():
    thinner = Thinner(min_move_iod=0.02, min_blendshape_change=0.05)
    face, blend = _face(), np.full(52, 0.2, np.float32)
    iod = 40.0
    assert thinner.keep(face, blend)
    assert not thinner.keep(face + 0.01 * iod, blend + 0.04)  # moved 1% IOD, changed 0.04
    assert thinner.keep(face + np.array([0.03 * iod, 0, 0], np.float32), blend)  # moved 3%
    changed = blend.copy()
    changed[17] += 0.06
    assert thinner.keep(face + np.array([0.03 * iod, 0, 0], np.float32), changed)
    assert thinner.keep(_face(centre=(400.0, 120.0)), blend)  # a second face elsewhere: its own slot
    assert not thinner.keep(_face(centre=(400.0, 120.0)), blend)
    keep_all = Thinner(0.0, 0.0)
    assert keep_all.keep(face, blend) and keep_all.keep(face, blend)


@pytest.mark.parametrize(("key", "person"), [
    ("videos/mead_dreamtalk/M030_front_angry_level3_001.mp4", "mead:M030"),
    ("videos/mead_lrs3_spectre/samples/MEAD/M030_level_3_angry_016.mp4", "mead:M030"),
    ("videos/sadtalker/examples/ref_video/WDA_KatieHill_000.mp4", "hdtf:WDA_KatieHill"),
    ("videos/v_express/RD_Radio10_0_clip_0.mp4", "hdtf:RD_Radio10"),
    ("videos/v_express/short_case_AOC_gt.mp4", "alexandria_ocasio_cortez"),
    ("videos/sadtalker/examples/ref_video/WDA_AlexandriaOcasioCortez_000.mp4", "alexandria_ocasio_cortez"),
    ("videos/edtalk/uncrop_Obama.mp4", "obama"),
    ("images/face_recognition/examples/knn_examples/train/obama/obama.jpg", "obama"),
    ("videos/liveportrait/assets/examples/driving/d10_old_history.mp4", "liveportrait:d10"),
    ("videos/liveportrait/assets/examples/driving/d10.mp4", "liveportrait:d10"),
    ("videos/liveportrait/assets/examples/driving/d12.mp4", "liveportrait:man_b"),
    ("images/liveportrait/assets/examples/driving/d9.jpg", "images/liveportrait/assets/examples/driving/d9"),
    ("images/deca/TestSamples/examples/id04657-PPHljWCZ53c-000565_inputs_inputs.jpg", "voxceleb:id04657"),
    ("videos/mead_lrs3_spectre/samples/LRS3/0Fi83BHQsMA_00002.mp4", "lrs3:0Fi83BHQsMA"),
    ("images/dlib/examples/johns/John_Simm/John_Simm_0001.jpg", "john_simm"),
    ("images/facenet_pytorch/data/test_images/paul_rudd/1.jpg", "paul_rudd"),
    ("images/deepface/tests/unit/dataset/img2.jpg", "angelina_jolie"),
    ("images/deepface/tests/unit/dataset/img11_reflection.jpg", "angelina_jolie"),
    ("images/facenet_pytorch/data/test_images/angelina_jolie/1.jpg", "angelina_jolie"),
    ("images/deepface/tests/unit/dataset/img67.jpg", "elon_musk"),
    ("images/liveportrait/assets/examples/driving/d12.jpg", "elon_musk"),
    ("images/deepface/tests/unit/dataset/img3.jpg", "deepface:b"),
    ("images/simswap_crop224/crop_224/ljm2.jpg", "simswap:ljm"),
    ("videos/pc_avs/Audio_Source/00104.mp4", "robert_downey_jr"),
    ("videos/lia_x/driving4.mp4", "obama"),
    ("videos/pd_fgc/test7.mp4#x672-896", "pd_fgc"),
    ("videos/pc_avs_frames_history/misc/Pose_Source/517600078", "pc_avs:517"),
    ("videos/lia_x/driving1.mp4", "videos/lia_x/driving1"),
    ("images/face_recognition/examples/obama_and_biden.jpg", None),
])  # fmt: skip
def test_person_rules(key, person):
    assert person_of(key) == person


def test_overrides_come_first():
    assert person_of("videos/lia_x/driving1.mp4", {"*/lia_x/*": "lia"}) == "lia"
    assert person_of("images/face_recognition/examples/obama_and_biden.jpg", {"*obama_and*": "pair"}) == "pair"


@settings(max_examples=200, deadline=None)
@given(st.lists(st.text(min_size=1, max_size=12), min_size=1, max_size=30), st.integers(0, 2**31))
def test_split_of_is_a_pure_function_of_person_and_seed(people, seed):
    splits = {p: shards.split_of(p, seed) for p in people}
    assert all(s in shards.SPLITS for s in splits.values())
    assert splits == {p: shards.split_of(p, seed) for p in reversed(people)}


@settings(max_examples=30, deadline=None)
@given(st.lists(st.sampled_from(["a", "b", "c", "d", "e", "f"]), min_size=2, max_size=12), st.integers(0, 99))
def test_no_person_in_two_splits_whatever_the_folders(tmp_path_factory, names, seed):
    """Photo folders whose photos show people also seen in other folders and in clips."""
    root = tmp_path_factory.mktemp("photos")
    units = []
    for i, name in enumerate(names):
        folder = root / f"f{i % 3}" / "train" / name  # an identity folder: person = name
        folder.mkdir(parents=True, exist_ok=True)
        (folder / f"{i}.jpg").write_bytes(b"")
    units = discover_units(images=[root])
    units.append(SourceUnit(root / "clip.mp4", "x/clip.mp4", "video", person="a"))
    seen: dict[str, set[str]] = {}
    for job in plan_jobs(units, root / "out", seed, RealParams(), {}):
        people = {person_of(f"{job.unit.key}/{f}") for f in job.unit.files} if job.unit.files else {job.unit.person}
        for person in people:
            seen.setdefault(person, set()).add(job.split)
    assert all(len(s) == 1 for s in seen.values())


def test_shared_sources():
    units = discover_units([shared("videos")])
    keys = {u.key for u in units}
    panels = sorted(u.key for u in units if "pd_fgc" in u.key)
    assert panels == ["videos/pd_fgc/test5.mp4#x448-672", "videos/pd_fgc/test5.mp4#x672-896",
                      "videos/pd_fgc/test5.mp4#x896-1120", "videos/pd_fgc/test6.mp4#x672-896",
                      "videos/pd_fgc/test7.mp4#x672-896", "videos/pd_fgc/test8.mp4#x672-896"]  # fmt: skip
    assert sum(u.still for u in units) == 4
    assert not any("latentsync" in k for k in keys)
    assert sum(u.kind == "sequence" for u in units) == 2
    assert all(u.person for u in units)
    with_generated = discover_units([shared("videos")], include_generated=True)
    assert len(with_generated) == len(units) + 3


def test_whole_shared_plan_has_no_leak(tmp_path):
    units = discover_units([shared("videos")], [shared("images")])
    jobs = plan_jobs(units, tmp_path, 0, RealParams(), {})
    seen: dict[str, set[str]] = {}
    for job in jobs:
        files = job.unit.files or ("",)
        for f in files:
            person = person_of(f"{job.unit.key}/{f}") if job.unit.kind == "photos" else job.unit.person
            seen.setdefault(person, set()).add(job.split)
    assert len(seen) > 150 and all(len(s) == 1 for s in seen.values())
    assert {j.split for j in jobs} == set(shards.SPLITS)


def test_thinning_in_a_real_clip():
    clip = shared("videos", "mead_dreamtalk", "W009_front_neutral_level1_001.mp4")
    unit = SourceUnit(clip, "videos/W009_front_neutral_level1_001.mp4", "video", person="mead:W009")
    teacher = Teacher()
    params = RealParams(stride=6, jitter=0)
    _, loose = label_unit(unit, RealParams(stride=6, jitter=0, thin_iod=0, thin_blendshape=0), 0, teacher)
    _, thinned = label_unit(unit, params, 0, teacher)
    _, strict = label_unit(unit, RealParams(stride=6, jitter=0, thin_iod=10, thin_blendshape=10), 0, teacher)
    assert loose.thinned == 0 and loose.samples == loose.faces == loose.frames > 15
    assert thinned.samples + thinned.thinned == thinned.faces
    assert strict.samples == 1 and strict.thinned == strict.faces - 1
