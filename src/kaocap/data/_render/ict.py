"""ICT-FaceKit head model: the parts we draw, identity and expression blending, eyes, tongue.

Model frame (ICT's own, cm): ``x`` to the subject's left, ``y`` up, ``z`` out of the face, the
axes of MediaPipe's canonical face (:mod:`kaocap.types`); the origin is ICT's (about 5.6 cm
behind and 1.5 cm above the canonical face's origin, see :mod:`.correspondence`).

A posed mesh is ``base + sum_j w_j * expr_deltas[j]`` with ``base = neutral + sum_i a_i *
id_deltas[i]`` (ICT's linear model), computed on the drawn vertices only: the expression sum on
the vertices some shape moves, the identity sum once per identity (:meth:`IctModel.identity`).
Two things ICT's blendshapes do not do are added here:

* Gaze: ICT's ``eyeLook*`` shapes move the eyelids only, so each eyeball is rotated about its
  centre by the angles :func:`kaocap.stream.csv_livelink.eye_angles_rad` gives for the same
  coefficients (gains fitted to a real iPhone take).
* ``tongueOut``: ICT has no such shape. The tongue (two UV islands of ICT's "gums and tongue"
  part, :func:`_tongue_vertices`) is pushed forward and down by up to :data:`TONGUE_OUT_CM`,
  weighted from 0 at its root to 1 at its tip.

Parts (vertex and polygon ranges from ICT-FaceKit's README): face, head and neck, mouth socket,
eye sockets, gums and tongue, teeth, scleras (their front bulge is the cornea; the iris is
painted on it by the shader; shrunk by :data:`EYEBALL_SCALE` to fit inside closed lids). Not drawn: iris meshes, lacrimal fluid, eye blend and eye
occlusion meshes, eyelashes (Unreal-style cards that need alpha textures; drawn opaque they
look like thick eyeliner, so a thin lash line is painted on the lids instead).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from enum import IntEnum
from functools import cache
from pathlib import Path

import numpy as np
from numpy.typing import NDArray

from kaocap.errors import InputError

logger = logging.getLogger(__name__)

#: Where ``../shared/data`` keeps the model, relative to the project's root.
DEFAULT_HEAD_PATH = Path("../shared/data/heads/ict_facekit/ict_facekit_compact.npz")
NUM_IDENTITY_SHAPES = 100
#: How far the tongue tip moves at tongueOut = 1, cm (forward, down) in the model frame.
TONGUE_OUT_CM = (3.0, -0.8)
#: ICT's sclera mesh (with its cornea bulge) is larger than the eyeball its lids close on: drawn
#: as is, it pokes through closed lids. It is shrunk about its centre by this factor (radius
#: 1.53 -> 1.30 cm; the human eyeball's is about 1.2).
EYEBALL_SCALE = 0.85
#: The tongue's root and tip depth in the neutral model frame (z, cm): weight 0 -> 1.
_TONGUE_Z = (4.5, 9.8)


class Material(IntEnum):
    """Per-vertex material id the shader switches on."""

    SKIN = 0
    MOUTH = 1
    GUMS = 2
    TEETH = 3
    EYE = 4
    SOCKET = 6
    TONGUE = 7


#: name -> (first vertex, end vertex, first polygon, end polygon, material).
PARTS: dict[str, tuple[int, int, int, int, Material]] = {
    "face": (0, 9409, 0, 9230, Material.SKIN),
    "head_neck": (9409, 11248, 9230, 11144, Material.SKIN),
    "eye_socket_left": (13294, 13678, 13226, 13630, Material.SOCKET),
    "eye_socket_right": (13678, 14062, 13630, 14034, Material.SOCKET),
    "sclera_left": (21451, 22221, 21496, 22296, Material.EYE),
    "sclera_right": (23021, 23791, 23094, 23894, Material.EYE),
    "mouth_socket": (11248, 13294, 11144, 13226, Material.MOUTH),
    "gums_tongue": (14062, 17039, 14034, 17006, Material.GUMS),
    "teeth": (17039, 21451, 17006, 21496, Material.TEETH),
}
#: The parts behind the lips, drawn only when the lips part (last in the triangle order).
MOUTH_PARTS = ("mouth_socket", "gums_tongue", "teeth")
#: Inner-lip landmark pairs of ICT's 68 points (upper, lower) checked for a parted mouth.
_INNER_UPPER, _INNER_LOWER = (61, 62, 63), (67, 66, 65)
#: Lips that part less than this (cm, beyond the neutral gap) hide the mouth's inside.
LIPS_APART_CM = 0.03
#: ICT's 68-point (Multi-PIE) landmark vertices live in vertex_indices.json beside the model.
_LANDMARK_KEY = "idx_to_landmark_verts"


@dataclass(frozen=True)
class Eye:
    """One eyeball in the drawn-vertex numbering. vertices: (Ve,) indices; centre: (3,) cm,
    the sclera's sphere centre in the neutral mean head; axis: (3,) unit, centre -> cornea apex;
    radius: sphere radius, cm."""

    vertices: NDArray[np.intp]
    centre: NDArray[np.float64]
    axis: NDArray[np.float64]
    radius: float


@dataclass(frozen=True)
class IctModel:
    """The drawn subset of ICT-FaceKit (Vd vertices, T triangles), ready to blend.

    neutral: (Vd, 3) float32 cm, the mean head. triangles: (T, 3) int32, counter-clockwise seen
    from outside. material: (Vd,) Material ids. source: (Vd,) ICT vertex ids. expr_names: the
    57 ICT shape names. moving: (Vm,) vertices any shape moves; expr_deltas: (57, Vm*3) float32.
    id_deltas: (100, Vd*3) float32. eyes: (left, right). tongue: (Vt,) vertices, tongue_weight:
    (Vt,) 0 at the root .. 1 at the tip. landmarks68: (68,) drawn ids of ICT's Multi-PIE points.
    part_triangles: name -> (first, end) triangle of each part.
    """

    neutral: NDArray[np.float32]
    triangles: NDArray[np.int32]
    material: NDArray[np.int8]
    source: NDArray[np.intp]
    expr_names: tuple[str, ...]
    moving: NDArray[np.intp]
    expr_deltas: NDArray[np.float32]
    id_deltas: NDArray[np.float32]
    eyes: tuple[Eye, Eye]
    tongue: NDArray[np.intp]
    tongue_weight: NDArray[np.float32]
    landmarks68: NDArray[np.intp]
    part_triangles: dict[str, tuple[int, int]]
    _identities: dict = field(default_factory=dict, repr=False, compare=False)

    @property
    def num_vertices(self) -> int:
        return int(self.neutral.shape[0])

    def part_vertices(self, name: str) -> NDArray[np.intp]:
        """Drawn ids of one part of :data:`PARTS`."""
        v0, v1 = PARTS[name][:2]
        return np.flatnonzero((self.source >= v0) & (self.source < v1))

    def identity(self, coefficients: NDArray[np.floating], key: object = None) -> NDArray[np.float32]:
        """(Vd, 3) float32 cm: the neutral head of identity ``coefficients`` (100,); cached by
        ``key`` when given (one identity of a fixed pool)."""
        if key is not None and key in self._identities:
            return self._identities[key]
        a = np.asarray(coefficients, np.float32).reshape(1, NUM_IDENTITY_SHAPES)
        base = self.neutral + (a @ self.id_deltas).reshape(-1, 3)
        if key is not None:
            self._identities[key] = base
        return base

    def pose(self, base: NDArray[np.float32], weights: NDArray[np.floating], tongue_out: float,
             eye_angles_rad: NDArray[np.floating]) -> NDArray[np.float32]:
        """(Vd, 3) float32 cm, model frame: ``base`` (an :meth:`identity`) with the 57 ICT
        ``weights``, the tongue pushed out by ``tongue_out`` (0..1) and the eyes rotated by
        ``eye_angles_rad`` (2, 2): (left, right) x (yaw, pitch), Live Link Face signs (yaw > 0
        turns the gaze to the subject's right, pitch > 0 down)."""
        w = np.asarray(weights, np.float32).reshape(len(self.expr_names))
        moved = np.zeros(self.expr_deltas.shape[1], np.float32)
        scratch = np.empty_like(moved)
        for j in np.flatnonzero(w):  # expressions are sparse: one axpy per active shape
            np.multiply(self.expr_deltas[j], w[j], out=scratch)
            moved += scratch
        out = base.copy()
        out[self.moving] += moved.reshape(-1, 3)
        if tongue_out > 0:
            forward, down = TONGUE_OUT_CM
            out[self.tongue] += np.float32(tongue_out) * self.tongue_weight[:, None] * np.array(
                [0.0, down, forward], np.float32)
        for eye, (yaw, pitch) in zip(self.eyes, np.asarray(eye_angles_rad, np.float64)):
            centre = (eye.centre + (base[eye.vertices] - self.neutral[eye.vertices]).mean(axis=0)).astype(np.float32)
            rot = _gaze_rotation(float(yaw), float(pitch)).astype(np.float32)
            out[eye.vertices] = (out[eye.vertices] - centre) @ rot.T + centre
        return out


    def lips_apart(self, base: NDArray[np.float32], mesh: NDArray[np.float32]) -> bool:
        """Whether the inner lips of ``mesh`` part by more than :data:`LIPS_APART_CM` anywhere
        along ICT's inner-lip landmarks, compared with the identity's neutral ``base``."""
        upper, lower = self.landmarks68[list(_INNER_UPPER)], self.landmarks68[list(_INNER_LOWER)]
        gap = np.linalg.norm(mesh[upper] - mesh[lower], axis=1) - np.linalg.norm(base[upper] - base[lower], axis=1)
        return bool(gap.max() > LIPS_APART_CM)


def _gaze_rotation(yaw_rad: float, pitch_rad: float) -> NDArray[np.float64]:
    """(3, 3) eyeball rotation, model frame: Live Link yaw > 0 turns the gaze (+z) towards -x
    (the subject's right), pitch > 0 towards -y (down)."""
    cy, sy, cp, sp = np.cos(-yaw_rad), np.sin(-yaw_rad), np.cos(pitch_rad), np.sin(pitch_rad)
    ry = np.array([[cy, 0, sy], [0, 1, 0], [-sy, 0, cy]])
    rx = np.array([[1, 0, 0], [0, cp, -sp], [0, sp, cp]])
    return ry @ rx


class NormalSolver:
    """Smooth vertex normals of a fixed triangulation: area-weighted sums of the incident
    triangles' normals, with the vertex-triangle incidence as a sparse matrix (about 3 ms for
    the 48k-triangle head on one core)."""

    def __init__(self, triangles: NDArray[np.int32], num_vertices: int) -> None:
        from scipy.sparse import csr_matrix

        t = len(triangles)
        self.triangles = triangles
        self._incidence = csr_matrix(
            (np.ones(3 * t, np.float32), (triangles.reshape(-1), np.repeat(np.arange(t), 3))),
            shape=(num_vertices, t),
        )

    def __call__(self, vertices: NDArray[np.float32]) -> NDArray[np.float32]:
        """(V, 3) float32 unit normals of (V, 3) vertices."""
        corners = np.take(vertices, self.triangles, axis=0)
        e1, e2 = corners[:, 1] - corners[:, 0], corners[:, 2] - corners[:, 0]
        face = np.empty_like(e1)
        face[:, 0] = e1[:, 1] * e2[:, 2] - e1[:, 2] * e2[:, 1]
        face[:, 1] = e1[:, 2] * e2[:, 0] - e1[:, 0] * e2[:, 2]
        face[:, 2] = e1[:, 0] * e2[:, 1] - e1[:, 1] * e2[:, 0]
        out = np.asarray(self._incidence @ face, np.float32)
        out /= np.maximum(np.sqrt((out * out).sum(axis=1, keepdims=True)), np.float32(1e-12))
        return out


def _triangulate(quads: NDArray[np.int32]) -> NDArray[np.int32]:
    """(F, 4) quads with -1 padding triangles -> (T, 3) triangles, same winding."""
    first = quads[:, [0, 1, 2]]
    quad = quads[quads[:, 3] >= 0]
    return np.concatenate([first, quad[:, [0, 2, 3]]]).astype(np.int32)


def _sphere_fit(points: NDArray[np.float64]) -> tuple[NDArray[np.float64], float]:
    """Least-squares sphere (centre (3,), radius) through (N, 3) points."""
    a = np.c_[2 * points, np.ones(len(points))]
    sol = np.linalg.lstsq(a, (points**2).sum(axis=1), rcond=None)[0]
    return sol[:3], float(np.sqrt(sol[3] + sol[:3] @ sol[:3]))


def _eye(points: NDArray[np.float64], vertices: NDArray[np.intp]) -> Eye:
    """Sphere centre and gaze axis of one sclera (cornea bulge excluded from the fit)."""
    centre, radius = _sphere_fit(points)
    axis = np.array([0.0, 0.0, 1.0])
    for _ in range(3):
        behind = (points - centre) @ axis < 0.5 * radius
        centre, radius = _sphere_fit(points[behind])
        apex = points[np.argsort(-((points - centre) @ axis))[:5]].mean(axis=0)
        axis = (apex - centre) / np.linalg.norm(apex - centre)
    return Eye(vertices, centre, axis, radius)


def _shrunk_eye(ict_neutral: NDArray, drawn_of: NDArray[np.intp], neutral: NDArray[np.float32], part: str) -> Eye:
    """Fit one sclera and shrink it in ``neutral`` (drawn numbering) by EYEBALL_SCALE."""
    v0, v1 = PARTS[part][:2]
    eye = _eye(ict_neutral[v0:v1].astype(np.float64), drawn_of[v0:v1])
    neutral[eye.vertices] = ((neutral[eye.vertices] - eye.centre) * EYEBALL_SCALE + eye.centre).astype(np.float32)
    return Eye(eye.vertices, eye.centre, eye.axis, eye.radius * EYEBALL_SCALE)


def _tongue_vertices(data, drawn_of: NDArray[np.intp]) -> tuple[NDArray[np.intp], NDArray[np.float32]]:
    """The tongue: UV islands of the gums-and-tongue part narrower than 4.5 cm, centred on
    x = 0, that jawOpen moves by more than 2 cm (two islands: its top and its underside)."""
    from scipy.sparse import coo_matrix
    from scipy.sparse.csgraph import connected_components

    f0, f1 = PARTS["gums_tongue"][2:4]
    faces_v, faces_uv = data["faces_v"][f0:f1], data["faces_uv"][f0:f1]
    quads = np.where(faces_uv[:, 3:] < 0, faces_uv[:, :1], faces_uv)
    edges = np.concatenate([quads[:, [k, (k + 1) % 4]] for k in range(4)])
    n_uv = len(data["uv"])
    graph = coo_matrix((np.ones(len(edges)), (edges[:, 0], edges[:, 1])), shape=(n_uv, n_uv))
    island = connected_components(graph, directed=False)[1][faces_uv[:, 0]]
    names = [str(n) for n in data["expr_names"]]
    jaw = np.linalg.norm(data["expr_deltas"][names.index("jawOpen")], axis=1)
    neutral = data["neutral"]
    chosen: list[NDArray] = []
    for label in np.unique(island):
        verts = np.unique(faces_v[island == label])
        verts = verts[verts >= 0]
        pts = neutral[verts]
        if np.ptp(pts[:, 0]) < 4.5 and abs(pts[:, 0].mean()) < 0.1 and jaw[verts].mean() > 2.0:
            chosen.append(verts)
    if len(chosen) != 2:
        raise InputError(f"ICT model: expected 2 tongue islands, found {len(chosen)}")
    source = np.unique(np.concatenate(chosen))
    z = neutral[source, 2]
    t = np.clip((z - _TONGUE_Z[0]) / (_TONGUE_Z[1] - _TONGUE_Z[0]), 0.0, 1.0)
    return drawn_of[source], (t * t * (3 - 2 * t)).astype(np.float32)


def _drawn_subset(data) -> tuple[NDArray[np.intp], NDArray[np.int32], NDArray[np.int8], dict[str, tuple[int, int]]]:
    """ICT vertex ids we draw (sorted), their triangles (drawn numbering, parts in PARTS order),
    materials, and each part's triangle range."""
    triangles, material, ranges = [], np.full(len(data["neutral"]), -1, np.int8), {}
    count = 0
    for name, (v0, v1, f0, f1, mat) in PARTS.items():
        triangles.append(_triangulate(data["faces_v"][f0:f1]))
        ranges[name] = (count, count + len(triangles[-1]))
        count += len(triangles[-1])
        material[v0:v1] = mat
    source = np.flatnonzero(material >= 0)
    drawn_of = np.full(len(material), -1, np.intp)
    drawn_of[source] = np.arange(len(source))
    return source, drawn_of[np.concatenate(triangles)].astype(np.int32), material[source], ranges


@cache
def load_ict(path: str | Path = DEFAULT_HEAD_PATH) -> IctModel:
    """The drawn subset of ICT-FaceKit from ``ict_facekit_compact.npz`` (cached per path).

    Raises InputError when the file (or ``vertex_indices.json`` beside it) is missing.

    >>> model = load_ict()                       # doctest: +SKIP  (needs ../shared/data)
    >>> model.neutral.shape, len(model.expr_names)
    ((24359, 3), 57)
    """
    import json

    path = Path(path)
    if not path.is_file():
        raise InputError(f"ICT-FaceKit model not found at {path} (expected ../shared/data/heads/ict_facekit)")
    with np.load(path) as npz:
        data = {k: npz[k] for k in npz.files}
    source, triangles, material, ranges = _drawn_subset(data)
    drawn_of = np.full(len(data["neutral"]), -1, np.intp)
    drawn_of[source] = np.arange(len(source))
    deltas = data["expr_deltas"][:, source]
    moving = np.flatnonzero(np.abs(deltas).max(axis=(0, 2)) > 1e-6)
    tongue, tongue_weight = _tongue_vertices(data, drawn_of)
    material[tongue] = Material.TONGUE
    neutral = np.ascontiguousarray(data["neutral"][source])
    eyes = [_shrunk_eye(data["neutral"], drawn_of, neutral, part) for part in ("sclera_left", "sclera_right")]
    landmarks = json.loads((path.parent / "vertex_indices.json").read_text())[_LANDMARK_KEY]
    logger.info("ICT model: %d of %d vertices drawn, %d triangles, %d move with expressions",
                len(source), len(data["neutral"]), len(triangles), len(moving))  # fmt: skip
    return IctModel(
        neutral=neutral,
        triangles=triangles,
        material=material,
        source=source,
        expr_names=tuple(str(n) for n in data["expr_names"]),
        moving=moving,
        expr_deltas=np.ascontiguousarray(deltas[:, moving].reshape(len(deltas), -1)),
        id_deltas=np.ascontiguousarray(data["id_deltas"][:, source].reshape(NUM_IDENTITY_SHAPES, -1)),
        eyes=(eyes[0], eyes[1]),
        tongue=tongue,
        tongue_weight=tongue_weight,
        landmarks68=drawn_of[np.asarray(landmarks, np.intp)],
        part_triangles=ranges,
    )
