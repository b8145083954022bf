"""BlazeFace post-processing on small hand-built arrays, and batching against the real network."""

from __future__ import annotations

import numpy as np

from kaocap.detect import process
from kaocap.models import model_path
from kaocap.runtime import available_runtimes, open_session


def test_anchor_layout_matches_mediapipe():
    anchors = process.ssd_anchors()
    assert anchors.shape == (process.NUM_ANCHORS, 2)
    assert process.anchor_groups() == (512, 384)
    # first cell of the stride-8 grid (two anchors), then the stride-16 grid (six anchors per cell)
    np.testing.assert_allclose(anchors[:2], [[0.5 / 16, 0.5 / 16]] * 2)
    np.testing.assert_allclose(anchors[512:518], [[0.5 / 8, 0.5 / 8]] * 6)


def test_weighted_nms_merges_a_cluster_and_keeps_a_separate_face():
    boxes = np.array([[10, 10, 50, 50], [12, 10, 52, 50], [100, 100, 140, 140]], np.float32)
    keypoints = np.zeros((3, 6, 2), np.float32)
    scores = np.array([0.9, 0.6, 0.8], np.float32)
    out = process.weighted_nms(boxes, keypoints, scores, iou_threshold=0.3)
    assert [round(d.score, 2) for d in out] == [0.9, 0.8]
    expected_x0 = (10 * 0.9 + 12 * 0.6) / 1.5
    np.testing.assert_allclose(out[0].box, [expected_x0, 10, expected_x0 + 40, 50], rtol=1e-6)
    np.testing.assert_allclose(out[1].box, boxes[2])


def test_decode_places_a_zero_offset_box_on_its_anchor():
    regressors = np.zeros((process.NUM_ANCHORS, 16), np.float32)
    regressors[0, 2:4] = 20  # 20 px wide and high
    logits = np.full(process.NUM_ANCHORS, -10.0, np.float32)
    logits[0] = 10.0
    boxes, keypoints, scores = process.decode(regressors, logits, 0.5)
    assert len(scores) == 1 and scores[0] > 0.99
    np.testing.assert_allclose(boxes[0], [-6, -6, 14, 14])  # anchor centre 4 px, 128-px units
    np.testing.assert_allclose(keypoints[0], 4.0)


def test_tiles_cover_the_frame_with_overlap():
    tiles = process.tile_regions(1920, 1080, 648)
    covered = np.zeros((1080, 1920), bool)
    for x0, y0, x1, y1 in tiles:
        assert x1 - x0 == 648 and y1 - y0 == 648
        covered[y0:y1, x0:x1] = True
    assert covered.all()
    assert len(tiles) == 8


def test_letterbox_maps_back_to_the_image():
    image = np.zeros((100, 300, 3), np.uint8)
    tensor, to_image = process.letterbox(image)
    assert tensor.shape == (1, 128, 128, 3) and tensor.min() == -1.0
    np.testing.assert_allclose(to_image @ [0, 0, 1], [0, -100])  # input top-left, above the image
    np.testing.assert_allclose(to_image @ [128, 128, 1], [300, 200])


def test_split_batch_equals_single_runs():
    rng = np.random.default_rng(0)
    images = rng.uniform(-1, 1, (3, 128, 128, 3)).astype(np.float32)
    for runtime in available_runtimes():
        if runtime == "onnxruntime":
            continue
        session = open_session(model_path("mediapipe_face_detector"), runtime)
        batched = process.split_batch(session.run({"input": images})["regressors"], 3)
        for i in range(3):
            single = session.run({"input": images[i : i + 1]})["regressors"][0]
            np.testing.assert_allclose(batched[i], single, atol=1e-4)
