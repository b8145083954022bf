"""The flip augmentation is the mirrored face: checked against MediaPipe run on mirrored real frames."""

from __future__ import annotations

import numpy as np
import pytest

from kaocap.constants import (
    BLENDSHAPE_MIRROR,
    BLENDSHAPES,
    LANDMARK_LEFT_EYE_OUTER,
    LANDMARK_RIGHT_EYE_OUTER,
)
from kaocap.eval.agreement import decode_frames
from kaocap.eval.learners_metrics import yaw_pitch_deg
from kaocap.train.augment import flip_batch, landmark_mirror
from tests.conftest import clock, shared

#: Real frames with a turned head or a one-sided expression (golden clips, MediaPipe's outputs
#: in tests/golden): (clip, frame).
FRAMES = (("liveportrait/assets/examples/driving/d3.mp4", 46), ("liveportrait/assets/examples/driving/d6.mp4", 552),
          ("liveportrait/assets/examples/source/s18.mp4", 18), ("sadtalker/examples/ref_video/WDA_KatieHill_000.mp4", 51))  # fmt: skip


def test_mirror_tables_are_involutions():
    shapes = np.array(BLENDSHAPE_MIRROR)
    assert (shapes[shapes] == np.arange(len(BLENDSHAPES))).all()
    for i, j in enumerate(shapes):
        assert BLENDSHAPES[j] == BLENDSHAPES[i].replace("Left", "#").replace("Right", "Left").replace("#", "Right")
    points = landmark_mirror()
    assert sorted(points) == list(range(478)) and (points[points] == np.arange(478)).all()
    assert points[LANDMARK_LEFT_EYE_OUTER] == LANDMARK_RIGHT_EYE_OUTER
    assert (points == np.arange(478)).sum() < 30  # only the midline (nose ridge, lips' centres) stays


def _labels(face, side: int) -> dict[str, np.ndarray]:
    """The outputs for a face found in a square crop (side px) as that crop's labels."""
    return {"blendshapes": face.blendshapes[None].copy(), "valid": face.blendshapes_valid[None].copy(),
            "landmarks": (face.landmarks.astype(np.float32) / side)[None], "rotation_crop": face.pose.rotation[None].astype(np.float32),
            "translation_cm": face.pose.translation_cm[None].astype(np.float32)}  # fmt: skip


@pytest.mark.parametrize("clip, index", FRAMES, ids=[f"{c.split('/')[-1]}:{i}" for c, i in FRAMES])
def test_flip_matches_the_peer_on_the_mirrored_frame(pipeline_image_mode, clip, index):
    """Flip a square crop around a real face and its labels (MediaPipe's outputs on the crop):
    the flipped labels are what MediaPipe says on the flipped crop; without the mirror
    partners (landmarks, left/right shapes) or with the rotation unchanged they are not."""
    [(_, image)] = list(decode_frames(shared("videos", clip), [index]))
    face = pipeline_image_mode(image, next(clock)).faces[0]
    side = int(min(image.shape[:2]) * 0.9)
    cx, cy = face.roi.center_xy
    x0 = int(np.clip(cx - side / 2, 0, image.shape[1] - side))
    y0 = int(np.clip(cy - side / 2, 0, image.shape[0] - side))
    square = np.ascontiguousarray(image[y0 : y0 + side, x0 : x0 + side])[None]
    labels = _labels(pipeline_image_mode(square[0], next(clock)).faces[0], side)
    before = {k: v.copy() for k, v in labels.items()}

    flipped = flip_batch(square, labels, np.array([True]))
    np.testing.assert_array_equal(flipped[0], square[0, :, ::-1])
    peer = _labels(pipeline_image_mode(flipped[0], next(clock)).faces[0], side)

    iod = np.linalg.norm(np.diff(before["landmarks"][0, [LANDMARK_LEFT_EYE_OUTER, LANDMARK_RIGHT_EYE_OUTER], :2], axis=0))
    err = np.linalg.norm(labels["landmarks"][0, :, :2] - peer["landmarks"][0, :, :2], axis=1) / iod
    unpaired = before["landmarks"][0, :, :2] * [-1, 1] + [1, 0]
    err_unpaired = np.linalg.norm(unpaired - peer["landmarks"][0, :, :2], axis=1) / iod
    assert np.median(err) < 0.02 and np.median(err_unpaired) > 3 * np.median(err)

    shown = labels["valid"][0] & peer["valid"][0]
    gap = np.abs(labels["blendshapes"][0] - peer["blendshapes"][0])[shown].mean()
    unswapped = np.abs(before["blendshapes"][0] - peer["blendshapes"][0])[shown].mean()
    assert gap < 0.07 and gap < 0.6 * unswapped  # MediaPipe itself is 0.02-0.06 off its own mirror

    yaw_pitch = yaw_pitch_deg(np.stack([before["rotation_crop"][0], labels["rotation_crop"][0], peer["rotation_crop"][0]]))
    np.testing.assert_allclose(yaw_pitch[1], yaw_pitch[2], atol=2.0)
    np.testing.assert_allclose(yaw_pitch[1], yaw_pitch[0] * [-1, 1], atol=1e-3)

    again = flip_batch(flipped, labels, np.array([True]))
    np.testing.assert_array_equal(again, square)
    for key, value in before.items():
        np.testing.assert_allclose(labels[key], value, atol=1e-6, err_msg=key)
