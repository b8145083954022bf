"""Synthetic renders: labels land on the rendered face, agree with the teacher, survive a shard."""

from __future__ import annotations

import logging
import time

import numpy as np
import pytest

from tests.conftest import shared

pytest.importorskip("moderngl")

from kaocap.constants import (
    BLENDSHAPE_INDEX,
    BLENDSHAPES,
    LANDMARK_LEFT_EYE_OUTER,
    LANDMARK_NOSE_TIP,
    LANDMARK_RIGHT_EYE_OUTER,
    LANDMARK_UPPER_LIP,
)
from kaocap.data._render import expressions

logger = logging.getLogger(__name__)

ICT_NAMES = (
    ("PupilDilate_L", "PupilDilate_R", "browDown_L", "browDown_R", "browInnerUp_L", "browInnerUp_R")
    + ("browOuterUp_L", "browOuterUp_R", "cheekPuff_L", "cheekPuff_R", "cheekRaiser_L", "cheekRaiser_R")
    + tuple(f"{n}_{s}" for n in ("cheekSquint", "eyeBlink", "eyeLookDown", "eyeLookIn", "eyeLookOut",
                                   "eyeLookUp", "eyeSquint", "eyeWide") for s in "LR")
    + ("jawForward", "jawLeft", "jawOpen", "jawRight", "mouthClose", "mouthDimple_L", "mouthDimple_R",
       "mouthFrown_L", "mouthFrown_R", "mouthFunnel", "mouthLeft", "mouthLowerDown_L", "mouthLowerDown_R",
       "mouthPress_L", "mouthPress_R", "mouthPucker", "mouthRight", "mouthRollLower", "mouthRollUpper",
       "mouthShrugLower", "mouthShrugUpper", "mouthSmile_L", "mouthSmile_R", "mouthStretch_L",
       "mouthStretch_R", "mouthUpperUp_L", "mouthUpperUp_R", "noseSneer_L", "noseSneer_R")
)  # fmt: skip


def _iod(landmarks):
    return float(np.linalg.norm(landmarks[LANDMARK_LEFT_EYE_OUTER, :2] - landmarks[LANDMARK_RIGHT_EYE_OUTER, :2]))


# ---------------------------------------------------------------- mapping and sampling (no GL)


def test_ict_to_arkit_table_covers_every_shape_once():
    matrix = expressions.label_matrix(ICT_NAMES)
    assert matrix.shape == (52, 57)
    for name, row in zip(BLENDSHAPES, matrix):
        assert row.sum() == (0.0 if name == "tongueOut" else 1.0), name
    assert expressions.arkit_name("eyeBlink_L") == "eyeBlinkLeft"
    assert expressions.arkit_name("cheekPuff_R") == "cheekPuff"
    assert expressions.arkit_name("cheekRaiser_L") is None


def test_sampled_expressions_are_consistent_and_cover_extremes():
    rng = np.random.default_rng(0)
    prior = np.random.default_rng(1).random((20, 52)).astype(np.float32) * 0.5
    samples = [expressions.sample_expression(rng, ICT_NAMES, prior) for _ in range(3000)]
    arkit = np.stack([s.arkit for s in samples])
    assert arkit.min() >= 0 and arkit.max() <= 1
    assert np.all((arkit > 0.9).any(axis=0)), [n for n, hit in zip(BLENDSHAPES, (arkit > 0.9).any(axis=0)) if not hit]
    i = BLENDSHAPE_INDEX
    assert not np.any((arkit[:, i["jawLeft"]] > 0) & (arkit[:, i["jawRight"]] > 0))
    assert np.all(arkit[:, i["mouthClose"]] <= arkit[:, i["jawOpen"]] + 1e-6)
    tongue = arkit[:, i["tongueOut"]] > 0
    assert tongue.any() and np.all(arkit[tongue, i["jawOpen"]] >= 0.25)
    winks = (arkit[:, i["eyeBlinkLeft"]] > 0.8) & (arkit[:, i["eyeBlinkRight"]] < 0.2)
    assert winks.any()
    weights = np.stack([s.ict_weights for s in samples])
    left, right = ICT_NAMES.index("browInnerUp_L"), ICT_NAMES.index("browInnerUp_R")
    assert np.any(weights[:, left] != weights[:, right])  # asymmetric halves are rendered
    np.testing.assert_allclose((weights[:, left] + weights[:, right]) / 2, arkit[:, i["browInnerUp"]], atol=1e-6)


def test_committed_correspondence_table_is_sane():
    from kaocap.data._render.correspondence import TABLE_PATH
    from kaocap.types import matrix_to_euler

    with np.load(TABLE_PATH) as table:
        assert table["ict_vertices"].shape == (478, 3) and table["weights"].shape == (478, 3)
        np.testing.assert_allclose(table["weights"].sum(axis=1), 1.0, atol=1e-5)
        assert max(abs(a) for a in matrix_to_euler(table["canonical_rotation"])) < 4.0  # both faces look along +z
        assert 0.9 < float(table["canonical_scale"]) < 1.0
        assert float(np.median(table["spread_cm"][:468])) < 0.15  # the teacher agreed across views


# ---------------------------------------------------------------- renders


@pytest.fixture(scope="module")
def renderer():
    shared("heads", "ict_facekit", "ict_facekit_compact.npz")
    from kaocap.data.render import HeadRenderer, RenderConfig

    cfg = RenderConfig(head_path=str(shared("heads", "ict_facekit", "ict_facekit_compact.npz")),
                       prior_path=str(shared("expression_priors", "jmtechart", "Blender", "Blender Example Files",
                                             "MySlate_3_Jason_Millers_iPhone.csv")),
                       num_identities=50, identities_per_block=4)  # fmt: skip
    with HeadRenderer(cfg) as r:
        yield r


@pytest.fixture(scope="module")
def teacher():
    from kaocap.data._render.teacher import Teacher

    t = Teacher()
    yield t
    t.close()


def test_projected_points_land_on_the_rendered_face(renderer):
    sample = renderer.render(renderer.make_params(identity=3))
    for k in (LANDMARK_NOSE_TIP, LANDMARK_LEFT_EYE_OUTER, LANDMARK_RIGHT_EYE_OUTER, LANDMARK_UPPER_LIP, 468, 473):
        x, y = sample.landmarks_image[k, :2].astype(int)
        assert sample.alpha[y, x] == 255, k
        assert sample.visibility[k] == 1.0, k
    assert sample.visibility[:468].mean() > 0.9
    # the stored crop is the runtime's crop of the projected points
    m = sample.roi.crop_matrix(renderer.cfg.crop_size)
    np.testing.assert_allclose(sample.landmarks_crop[:, :2], sample.landmarks_image[:, :2] @ m[:, :2].T + m[:, 2], atol=1e-3)
    assert abs(float(sample.landmarks_image[:468, 2].mean())) < 1e-3  # MediaPipe's zero-mean z


def test_teacher_agrees_with_labels_on_a_frontal_neutral_face(renderer, teacher):
    for identity in (0, 7):
        sample = renderer.render(renderer.make_params(identity=identity))
        face = teacher(sample.image)
        assert face is not None
        error = np.linalg.norm(face.landmarks[:, :2] - sample.landmarks_image[:, :2], axis=1) / _iod(sample.landmarks_image)
        assert error.mean() < 0.05 and np.median(error) < 0.05, (identity, error.mean())
        yaw, pitch, roll = face.pose.euler_deg
        assert max(abs(yaw), abs(pitch), abs(roll)) < 8


def test_rendered_jaw_open_raises_the_teachers_jaw_open(renderer, teacher):
    jaw = np.zeros(52)
    jaw[BLENDSHAPE_INDEX["jawOpen"]] = 0.8
    neutral = teacher(renderer.render(renderer.make_params(identity=2)).image)
    opened = teacher(renderer.render(renderer.make_params(identity=2, blendshapes=jaw)).image)
    assert opened.blendshape("jawOpen") > neutral.blendshape("jawOpen") + 0.3


#: MediaPipe's inner-lip contours (FACE_LANDMARKS_LIPS) between the corners, pairwise across the mouth.
INNER_UPPER_LIP = (191, 80, 81, 82, 13, 312, 311, 310, 415)
INNER_LOWER_LIP = (95, 88, 178, 87, 14, 317, 402, 318, 324)


def test_open_mouth_inner_lip_labels_sit_on_their_own_lip(renderer, teacher):
    # A table measured with the lips closed put 95, 88, 318 and 324 on the upper lip: no gap, 8-15% IOD off.
    jaw = np.zeros(52)
    jaw[BLENDSHAPE_INDEX["jawOpen"]] = 0.6
    for identity in (0, 7):
        sample = renderer.render(renderer.make_params(identity=identity, blendshapes=jaw))
        face = teacher(sample.image)
        assert face is not None
        labels = sample.landmarks_image
        gap_px = labels[INNER_LOWER_LIP, 1] - labels[INNER_UPPER_LIP, 1]  # image y points down
        assert gap_px.min() > 3.0, (identity, dict(zip(INNER_LOWER_LIP, gap_px.round(1))))
        lips = INNER_UPPER_LIP + INNER_LOWER_LIP
        error = np.linalg.norm(face.landmarks[lips, :2] - labels[lips, :2], axis=1) / _iod(labels)
        assert error.max() < 0.05, (identity, dict(zip(lips, error.round(3))))


def test_a_closed_eye_hides_its_iris_points(renderer):
    wink = np.zeros(52)
    wink[BLENDSHAPE_INDEX["eyeBlinkLeft"]] = 1.0
    sample = renderer.render(renderer.make_params(identity=4, blendshapes=wink))
    assert sample.visibility[473:478].sum() == 0  # the subject's left iris, under the lid
    assert sample.visibility[468] == 1 and sample.visibility[469:473].sum() >= 2  # lids cover the top/bottom


def test_back_of_the_head_hides_the_face(renderer, teacher):
    sample = renderer.render(renderer.make_params(identity=5, yaw_deg=180))
    assert sample.visibility.mean() < 0.02
    assert teacher(sample.image) is None
    assert (sample.alpha > 0).mean() > 0.1  # the head is drawn


def test_tongue_out_is_drawn_and_labelled(renderer):
    tongue = np.zeros(52)
    tongue[BLENDSHAPE_INDEX["tongueOut"]] = 1.0
    params = renderer.make_params(identity=1, blendshapes=tongue)
    assert params.expression.arkit[BLENDSHAPE_INDEX["tongueOut"]] == 1.0
    assert params.expression.arkit[BLENDSHAPE_INDEX["jawOpen"]] >= 0.6  # tongueOut opens the jaw
    jaw = params.expression.arkit.copy()
    jaw[BLENDSHAPE_INDEX["tongueOut"]] = 0.0
    out, inside = renderer.render(params), renderer.render(renderer.make_params(identity=1, blendshapes=jaw))
    lips = out.landmarks_image[[13, 14], :2].mean(axis=0).astype(int)  # between the lips
    region = (slice(lips[1] - 3, lips[1] + 6), slice(lips[0] - 4, lips[0] + 5))
    assert out.image[region].mean() > inside.image[region].mean() + 10  # a pink tongue, not a dark mouth


def test_block_round_trips_through_a_shard_and_is_deterministic(renderer, tmp_path):
    import dataclasses

    from kaocap.data import shards
    from kaocap.data.render_shards import render_block, render_unit_name

    cfg = renderer.cfg
    name = render_unit_name(cfg, 10, 3, "train")
    assert name == render_unit_name(cfg, 10, 3, "train") and name.startswith("render-")
    path = render_block(cfg, 10, 3, tmp_path / "train" / name, split="train", renderer=renderer)
    again = render_block(cfg, 10, 3, tmp_path / "again.npz", split="train", renderer=renderer)
    shard, twin = shards.read_shard(path), shards.read_shard(again)
    assert len(shard) == 3 and set(shards.REQUIRED_KEYS) <= set(shard.keys())
    assert shard.crop(0).shape == (cfg.crop_size, cfg.crop_size, 3)
    assert all(shards.split_of(p, 0) == "train" for p in shard["person"])
    assert set(shard["kind"]) == {"render"} and shard["blendshapes_valid"].all()
    for key in ("blendshapes", "rotation", "translation_cm", "landmarks", "visibility", "roi", "person", "frame"):
        np.testing.assert_array_equal(shard[key], twin[key], err_msg=key)
    jittered = shards.read_shard(render_block(dataclasses.replace(cfg, jitter_variants=1, teacher=False), 10, 2,
                                              tmp_path / "jitter.npz", split="train", renderer=renderer))  # fmt: skip
    assert len(jittered) == 4 and list(jittered["jitter"]) == [False, True, False, True]
    np.testing.assert_array_equal(jittered["blendshapes"][0], jittered["blendshapes"][1])
    assert not np.allclose(jittered["roi"][0], jittered["roi"][1])
    sample = renderer.render(renderer.sample_params(np.random.default_rng([cfg.seed, 10]),
                                                    _identities(cfg, 10, 3)))  # fmt: skip
    np.testing.assert_allclose(shard["landmarks"][0], sample.landmarks_crop, atol=1e-4)
    assert np.isnan(shard["teacher_blendshapes"][:, BLENDSHAPE_INDEX["tongueOut"]]).all()
    found = shard["teacher_presence"] > 0
    assert np.isnan(shard["teacher_landmarks"][~found]).all()


def _identities(cfg, start, count):
    from kaocap.data.render_shards import block_identities

    return block_identities(cfg, start, count, "train")


def test_render_rate_is_reported(renderer):
    rng = np.random.default_rng(0)
    params = [renderer.sample_params(rng) for _ in range(12)]
    renderer.render(params[0])
    start = time.perf_counter()
    for p in params:
        renderer.render(p)
    rate = len(params) / (time.perf_counter() - start)
    logger.warning("render rate: %.1f images/s at %d px (one process, no teacher)", rate, renderer.cfg.size)
    print(f"render rate: {rate:.1f} images/s at {renderer.cfg.size} px")


def test_background_bank_keeps_only_face_free_crops():
    from kaocap.data._render.backgrounds import BackgroundBank, _detector

    root = shared("images", "face_recognition")
    bank = BackgroundBank.from_folder(root, count=6, size=96, seed=0, max_images=8)
    assert 0 < len(bank) <= 6 and all(image.shape == (96, 96, 3) for image in bank.images)
    detector = _detector(0.3)
    assert not any(detector(image, max_faces=1) for image in bank.images)
    sample = bank.sample(np.random.default_rng(0), 64)
    assert sample.shape == (64, 64, 3) and sample.dtype == np.uint8
