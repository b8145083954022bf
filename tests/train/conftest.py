"""A tiny dataset of real face crops for the training tests, built once per session.

Frames are the embedded portrait (kaocap.capture.default_image) moved, scaled, rotated and
recoloured; kaocap's MediaPipe path labels them as the data builders do (ROI, crop, landmarks in
crop px, blendshapes, head pose). Half the shards are "teacher" (real) samples, half "render"
samples whose exact labels are the teacher's with tongueOut drawn at random, and which carry
the teacher_* keys beside them. People are assigned to splits by hand so every split has both.
"""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from kaocap.constants import BLENDSHAPES
from kaocap.data import shards

CROP = 144  # not the learners' 128: loading must resize
PEOPLE = {"train": ("p0", "p1", "p2", "p3"), "val": ("p4",), "test": ("p5",)}
PER_PERSON = 8


def _variant(image: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    h, w = image.shape[:2]
    angle, scale = rng.uniform(-25, 25), rng.uniform(0.8, 1.15)
    m = cv2.getRotationMatrix2D((w / 2 + rng.uniform(-30, 30), h / 2 + rng.uniform(-30, 30)), angle, scale)
    out = cv2.warpAffine(image, m, (w, h), borderMode=cv2.BORDER_REFLECT)
    gain = rng.uniform(0.7, 1.2, 3)
    return np.clip(out * gain, 0, 255).astype(np.uint8)


def _label(face, crop_size: int) -> dict[str, np.ndarray]:
    m = face.roi.crop_matrix(crop_size)
    lm = face.landmarks.astype(np.float64)
    xy = lm[:, :2] @ m[:, :2].T + m[:, 2]
    z = lm[:, 2:] * crop_size / float(face.roi.size_wh[0])
    roi = np.array([*face.roi.center_xy, *face.roi.size_wh, face.roi.rotation_rad], np.float32)
    return {"roi": roi, "landmarks": np.hstack([xy, z]).astype(np.float32), "blendshapes": face.blendshapes,
            "rotation": face.pose.rotation, "translation_cm": face.pose.translation_cm}  # fmt: skip


def _shard_labels(rows: list[dict], person: str, kind: str, rng: np.random.Generator) -> dict[str, np.ndarray]:
    n = len(rows)
    stack = {k: np.stack([r[k] for r in rows]) for k in rows[0]}
    blend = stack["blendshapes"].astype(np.float32)
    valid = np.ones((n, len(BLENDSHAPES)), bool)
    labels = {"roi": stack["roi"], "jitter": np.zeros(n, bool), "rotation": stack["rotation"],
              "translation_cm": stack["translation_cm"], "landmarks": stack["landmarks"],
              "visibility": np.ones((n, 478), np.float32), "presence": np.ones(n, np.float32),
              "person": np.array([person] * n), "source": np.array([f"{person}.jpg"] * n),
              "frame": np.arange(n, dtype=np.int32), "kind": np.array([kind] * n)}  # fmt: skip
    if kind == "teacher":
        valid[:, -1] = False
        blend[:, -1] = np.nan
    else:
        exact = blend.copy()
        exact[:, -1] = rng.random(n)
        blend[:, -1] = np.nan  # the teacher has no tongueOut
        labels.update(teacher_blendshapes=blend, teacher_rotation=stack["rotation"],
                      teacher_landmarks=stack["landmarks"], teacher_presence=np.ones(n, np.float32))
        blend = exact
    labels.update(blendshapes=blend, blendshapes_valid=valid)
    return labels


@pytest.fixture(scope="session")
def tiny_dataset(tmp_path_factory):
    """Path of a dataset directory with train/val/test shards (6 people x 8 samples x 2 kinds)."""
    from kaocap import Pipeline, default_image
    from kaocap.config import PipelineConfig
    from kaocap.landmarks.process import crop

    root = tmp_path_factory.mktemp("tiny_dataset")
    rng, base, ts = np.random.default_rng(0), default_image(), 0
    cfg = PipelineConfig.image_mode()
    with Pipeline(cfg) as pipe:
        for split, people in PEOPLE.items():
            for person in people:
                for kind in ("teacher", "render"):
                    crops, rows = [], []
                    while len(rows) < PER_PERSON:
                        image = _variant(base, rng)
                        ts += 1
                        faces = pipe(image, ts).faces
                        if faces:
                            crops.append((crop(image, [faces[0].roi], CROP)[0] * 255 + 0.5).astype(np.uint8))
                            rows.append(_label(faces[0], CROP))
                    path = root / split / f"{kind}-{person}.npz"
                    shards.write_shard(path, np.stack(crops), _shard_labels(rows, person, kind, rng))
    shards.write_manifest(root, {"name": "tiny", "kind": "test"})
    return root


#: Learner -> optimiser steps (batch 16) in these tests.
STEPS = {"blendshapes_feat_mlp": 40, "blendshapes_mesh_mlp": 40, "blendshapes_hybrid_mlp": 40,
         "blendshapes_cnn_s": 10, "blendshapes_cnn_s_lmk": 10, "blendshapes_cnn_s_gd": 10, "blendshapes_cnn_s_gdf": 10, "head_cnn_xs": 40}  # fmt: skip
#: blendshapes_cnn_s exports the landmark learner's graph less one head: not exported here.
EXPORTED = [m for m in STEPS if m != "blendshapes_cnn_s"]


def train_config(model_id, data, out, **kw):
    """A short, single-threaded, seeded run (TrainConfig) for the tests."""
    from kaocap.train.loop import TrainConfig

    defaults = {"epochs": 100, "batch_size": 16, "lr": 3e-3, "max_steps": STEPS.get(model_id, 4),
                "progress": False, "seed": 0, "threads": 1}  # fmt: skip
    return TrainConfig(model_id, (data,), out, **{**defaults, **kw})


@pytest.fixture(scope="session")
def trained(tiny_dataset, tmp_path_factory):
    """Every torch learner trained once on the tiny set (TrainResult by id), exported."""
    pytest.importorskip("torch")
    from kaocap.train.loop import train

    out = tmp_path_factory.mktemp("runs")
    return {m: train(train_config(m, tiny_dataset, out / m, export=m in EXPORTED)) for m in STEPS}
