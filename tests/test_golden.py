"""kaocap against MediaPipe's own FaceLandmarker on 320 real frames of 10 people.

The peer's outputs are stored in tests/golden/mediapipe_golden.npz (regenerate with
scripts/make_goldens.py); the frames are decoded here from ../shared/data/videos.
"""

from __future__ import annotations

import numpy as np
import pytest

from kaocap.eval.agreement import compare, decode_frames
from tests.conftest import ROOT, clock, shared

GOLDEN = ROOT / "tests" / "golden" / "mediapipe_golden.npz"


@pytest.fixture(scope="module")
def golden():
    return dict(np.load(GOLDEN))


def _frames(golden):
    """(row, image) for every golden frame, checking the decoder gives the peer's pixels."""
    import hashlib

    for clip_id, clip in enumerate(golden["clips"]):
        rows = np.flatnonzero(golden["clip"] == clip_id)
        indices = [int(golden["frame"][r]) for r in rows]
        for row, (index, image) in zip(rows, decode_frames(shared("videos", str(clip)), indices)):
            assert index == golden["frame"][row]
            digest = hashlib.sha1(image.tobytes()).hexdigest()[:16]
            assert digest == golden["digest"][row], f"{clip} frame {index} decodes differently from the golden run"
            yield row, image


def _ours(pipe, golden) -> dict[str, np.ndarray]:
    n = len(golden["clip"])
    out = {"found": np.zeros(n, bool), "landmarks_px": np.full((n, 478, 3), np.nan),
           "blendshapes": np.full((n, 52), np.nan), "rotation": np.full((n, 3, 3), np.nan)}  # fmt: skip
    for row, image in _frames(golden):
        result = pipe(image, next(clock))
        if result.faces:
            face = result.faces[0]
            out["found"][row] = True
            out["landmarks_px"][row] = face.landmarks
            out["blendshapes"][row] = np.where(face.blendshapes_valid, face.blendshapes, np.nan)
            out["rotation"][row] = face.pose.rotation
    return out


def _peer(golden) -> dict[str, np.ndarray]:
    return {"found": golden["found"], "landmarks_px": golden["landmarks_px"],
            "blendshapes": golden["blendshapes"], "rotation": golden["matrix"][:, :3, :3]}  # fmt: skip


def test_golden_set_is_big_enough(golden):
    assert len(golden["clip"]) >= 300
    assert len(golden["clips"]) >= 6


def test_agreement_with_mediapipe(pipeline_image_mode, golden):
    report = compare(_ours(pipeline_image_mode, golden), _peer(golden))
    print("\n".join(report.lines()))
    assert report.detection_agreement >= 0.99
    assert report.landmark_median_iod <= 0.02
    assert report.blendshape_mae <= 0.03
    assert report.blendshape_mae_worst <= 0.06, report.worst_shape
    assert report.rotation_median_deg <= 2.0
