"""Run kaocap's own trained blendshape + head-pose learners (exported ONNX) without torch.

A learner file ``<model_id>.onnx`` sits beside its card ``<model_id>.card.json`` (the card is
also embedded in the ONNX ``metadata_props`` under ``kaocap_card``). Loading checks the file's
sha256 against the card; what the network reads is the card's ``input_kind``, never guessed from
tensor shapes:

=============  ===========================================================================
input_kind     network inputs
=============  ===========================================================================
``image``      ``image`` (N, 3, S, S) float32 RGB 0..1, the ROI's upright crop
``features``   ``features`` (N, F) float32, :func:`kaocap.blendshapes.features.geometric_features`
``mesh``       ``mesh`` (N, 1434) float32, :func:`~kaocap.blendshapes.features.normalise_mesh`
``hybrid``     ``features`` and ``mesh`` as above
=============  ===========================================================================

Outputs: ``blendshapes`` (N, 52) 0..1 in kaocap.BLENDSHAPES order (tongueOut included);
``rotation_6d`` (N, 6) the first two columns of the head rotation *as the crop sees it*
(Zhou et al. 2019; :func:`crop_to_camera_rotation` turns it into the camera frame);
``translation_cm`` (N, 3) camera frame, cm; and, from learners trained with the landmark head,
``landmarks`` (N, 478, 3) crop-normalised (x, y 0..1 across the crop, z / crop side), which
lets the pipeline track the face and solve its translation without MediaPipe's landmark network;
and, from head learners, ``roi`` and ``presence`` (:data:`HEAD_OUTPUTS`).

>>> model = LearnedModel("blendshapes_cnn_s.onnx", runtime="openvino")    # doctest: +SKIP
>>> out = model.predict(crops=crops_uint8)   # (N, S, S, 3) RGB            # doctest: +SKIP
>>> out.blendshapes.shape, out.rotation_crop.shape                         # doctest: +SKIP
((N, 52), (N, 3, 3))
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import cv2
import numpy as np
from numpy.typing import NDArray

from kaocap.blendshapes.features import geometric_features, normalise_mesh
from kaocap.constants import BLENDSHAPES
from kaocap.errors import ModelError
from kaocap.models import sha256_file
from kaocap.runtime import Session, open_session

CARD_KEY = "kaocap_card"
INPUT_KINDS = ("image", "features", "mesh", "hybrid")
OUTPUT_NAMES = ("blendshapes", "rotation_6d", "translation_cm")
LANDMARKS_OUTPUT = "landmarks"
#: Outputs of head learners: ``roi`` (N, 4) the next crop as this one sees it (dx, dy in crop
#: sides, log scale, rotation rad: kaocap.pose.head.next_roi) and ``presence`` (N,) 0..1.
HEAD_OUTPUTS = ("roi", "presence")


def rotation_6d_to_matrix(x: NDArray[np.floating]) -> NDArray[np.float64]:
    """(N, 6) -> (N, 3, 3): Gram-Schmidt on the two columns ``x[:, :3]`` and ``x[:, 3:]``."""
    x = np.asarray(x, dtype=np.float64).reshape(-1, 6)
    a1, a2 = x[:, :3], x[:, 3:]
    # Norms and dots as plain reductions (the bits of np.linalg.norm, without its overhead),
    # b1 x b2 written out: np.cross costs more than the rest of this per frame (N is small).
    b1 = a1 / np.maximum(np.sqrt(np.add.reduce(a1 * a1, axis=1, keepdims=True)), 1e-12)
    a2 = a2 - np.add.reduce(b1 * a2, axis=1, keepdims=True) * b1
    b2 = a2 / np.maximum(np.sqrt(np.add.reduce(a2 * a2, axis=1, keepdims=True)), 1e-12)
    b3 = b1[:, [1, 2, 0]] * b2[:, [2, 0, 1]] - b1[:, [2, 0, 1]] * b2[:, [1, 2, 0]]
    return np.stack([b1, b2, b3], axis=2)


def matrix_to_rotation_6d(rotation: NDArray[np.floating]) -> NDArray[np.float32]:
    """(N, 3, 3) -> (N, 6): the first two columns, concatenated."""
    r = np.asarray(rotation).reshape(-1, 3, 3)
    return np.concatenate([r[:, :, 0], r[:, :, 1]], axis=1).astype(np.float32)


def image_input(crops: NDArray[np.uint8], size: int) -> NDArray[np.float32]:
    """(N, S, S, 3) RGB uint8 crops -> (N, 3, size, size) float32 in 0..1 (area-resized)."""
    crops = np.asarray(crops)
    if crops.ndim != 4 or crops.shape[3] != 3:
        raise ValueError(f"crops must be (N, S, S, 3) RGB, got {crops.shape}")
    if crops.shape[1:3] != (size, size):
        crops = np.stack([cv2.resize(c, (size, size), interpolation=cv2.INTER_AREA) for c in crops])
    return np.ascontiguousarray(crops.transpose(0, 3, 1, 2), dtype=np.float32) * np.float32(1 / 255)


def roi_crops(image: NDArray[np.uint8], rois: list, size: int) -> NDArray[np.uint8]:
    """(N, size, size, 3) RGB uint8 crops of the ROIs of one frame, made exactly as the data
    engine makes its crops (kaocap.data.real): the ROI's upright crop warped straight to
    ``size`` (bilinear, border replicated). :func:`image_input` turns them into network input."""
    crops = np.empty((len(rois), size, size, 3), np.uint8)
    for i, roi in enumerate(rois):
        cv2.warpAffine(image, roi.crop_matrix(size), (size, size), dst=crops[i],
                       flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)  # fmt: skip
    return crops


def read_card(path: str | Path) -> dict[str, Any]:
    """The card beside a learner file (``x.onnx`` -> ``x.card.json``), the sha256 of the file
    checked (and of its weights file ``x.bin`` for an OpenVINO IR ``x.xml``)."""
    path = Path(path)
    card_path = path.with_name(path.name.removesuffix(path.suffix) + ".card.json")
    if not card_path.is_file():
        raise ModelError(f"{path.name} has no card ({card_path.name} missing)")
    card = json.loads(card_path.read_text())
    for file in [path] + ([path.with_suffix(".bin")] if path.suffix == ".xml" else []):
        expected = card.get("sha256", {}).get(file.name)
        if expected is None:
            raise ModelError(f"card {card_path.name} has no sha256 for {file.name}")
        if not file.is_file() or sha256_file(file) != expected:
            raise ModelError(f"{file} does not match its card (sha256): wrong or corrupt model file")
    return card


def embedded_card(path: str | Path) -> dict[str, Any]:
    """The card embedded in an ONNX file's ``metadata_props`` (read with onnxruntime)."""
    import onnxruntime as ort

    opts = ort.SessionOptions()
    opts.log_severity_level = 3
    meta = ort.InferenceSession(str(path), opts, providers=["CPUExecutionProvider"]).get_modelmeta()
    text = meta.custom_metadata_map.get(CARD_KEY)
    if text is None:
        raise ModelError(f"{path} carries no {CARD_KEY} metadata")
    return json.loads(text)


@dataclass(frozen=True, slots=True)
class LearnerOutput:
    """Per-face predictions. blendshapes (N, 52) 0..1; rotation_crop (N, 3, 3) head rotation in
    the upright crop's camera frame; translation_cm (N, 3) camera frame, cm; landmarks
    (N, 478, 3) crop-normalised, or None when the learner has no landmark head; roi (N, 4) and
    presence (N,) from head learners, else None; rotation_6d (N, 6) the raw network output
    behind rotation_crop (kaocap.pose.fusion mixes two networks' before Gram-Schmidt)."""

    blendshapes: NDArray[np.float32]
    rotation_crop: NDArray[np.float64]
    translation_cm: NDArray[np.float32]
    landmarks: NDArray[np.float32] | None = None
    roi: NDArray[np.float32] | None = None
    presence: NDArray[np.float32] | None = None
    rotation_6d: NDArray[np.float32] | None = None

    def __post_init__(self) -> None:
        n = len(self.blendshapes)
        if self.blendshapes.shape != (n, len(BLENDSHAPES)) or self.rotation_crop.shape != (n, 3, 3):
            raise ValueError("blendshapes must be (N, 52) and rotation_crop (N, 3, 3)")
        if self.translation_cm.shape != (n, 3):
            raise ValueError("translation_cm must be (N, 3)")


def learner_feeds(input_kind: str, *, crops: NDArray | None = None, mesh: NDArray | None = None,
                  image_size: int = 128) -> dict[str, NDArray[np.float32]]:  # fmt: skip
    """Network inputs for ``input_kind`` from RGB crops (N, S, S, 3) uint8 or crop-normalised
    landmarks (N, 478, 3) (:func:`kaocap.blendshapes.features.landmarks_to_crop`)."""
    if input_kind not in INPUT_KINDS:
        raise ModelError(f"unknown input_kind {input_kind!r}; known: {', '.join(INPUT_KINDS)}")
    if input_kind == "image":
        if crops is None:
            raise ValueError("an image learner needs crops")
        return {"image": image_input(crops, image_size)}
    if mesh is None:
        raise ValueError(f"a {input_kind} learner needs landmarks (mesh)")
    feeds = {}
    if input_kind in ("features", "hybrid"):
        feeds["features"] = geometric_features(mesh)
    if input_kind in ("mesh", "hybrid"):
        feeds["mesh"] = normalise_mesh(mesh).reshape(len(mesh), -1)
    return feeds


class LearnedModel:
    """An exported learner run through a :class:`kaocap.runtime.Session` (numpy only)."""

    def __init__(self, path: str | Path, runtime: str | None = None, *, threads: int = 1) -> None:
        self.path = Path(path)
        self.card = read_card(self.path)
        self.input_kind: str = self.card["input_kind"]
        self.image_size = int(self.card.get("image_size", 128))
        # Inputs the file takes channels-last (TFLite exports): the card says so, nothing is guessed.
        self._nhwc = frozenset(s["name"] for s in self.card.get("inputs") or () if s.get("layout") == "NHWC")
        self.session: Session = open_session(self.path, runtime, threads=threads)

    @property
    def has_landmarks(self) -> bool:
        """Whether the network has the ``landmarks`` output (learners with the landmark head)."""
        return any(o.name == LANDMARKS_OUTPUT for o in self.session.outputs)

    def feeds(self, *, crops: NDArray | None = None, mesh: NDArray | None = None) -> dict[str, NDArray]:
        return learner_feeds(self.input_kind, crops=crops, mesh=mesh, image_size=self.image_size)

    def run(self, feeds: dict[str, NDArray]) -> LearnerOutput:
        """Predictions from :func:`learner_feeds` (images NCHW, whatever layout the file takes)."""
        out = self.session.run({k: np.ascontiguousarray(v.transpose(0, 2, 3, 1)) if k in self._nhwc else v
                                for k, v in feeds.items()})  # fmt: skip
        return LearnerOutput(
            np.asarray(out["blendshapes"], np.float32),
            rotation_6d_to_matrix(out["rotation_6d"]),
            np.asarray(out["translation_cm"], np.float32),
            *(np.asarray(out[k], np.float32) if k in out else None for k in (LANDMARKS_OUTPUT, *HEAD_OUTPUTS)),
            np.asarray(out["rotation_6d"], np.float32),
        )

    def predict(self, *, crops: NDArray | None = None, mesh: NDArray | None = None) -> LearnerOutput:
        """Predictions for N faces from crops (image learners) or crop-normalised landmarks."""
        return self.run(self.feeds(crops=crops, mesh=mesh))
