"""ICT vertex <-> MediaPipe landmark correspondence, and the canonical face's place on ICT.

The table (``ict_mediapipe_correspondence.npz`` beside this module) gives each of the 478
MediaPipe landmarks as a barycentric point on ICT's mesh: ``ict_vertices`` (478, 3) ICT vertex
ids, ``weights`` (478, 3). It is measured, not guessed (:func:`.build_table.build_correspondence`,
``python -m kaocap.data._render.build_table``):

1. The mean ICT head (no identity, neutral, eyes straight) is rendered at 512 x 512 at a few
   near-frontal poses with a fixed look.
2. The MediaPipe-network teacher (:class:`kaocap.Pipeline`, detection every frame) finds the
   468 mesh landmarks; each landmark's pixel is unprojected through a triangle-id pass onto
   the mesh (barycentric point), in the model frame.
3. Per landmark, the median over poses, averaged with its mirror partner's (both faces are
   exactly symmetric), is snapped to the closest point of ICT's face part.
4. The 18 inner-lip landmarks between the mouth corners (:data:`INNER_LIP`) are measured by
   steps 1-3 on the head with its jaw open instead (ICT jawOpen
   :data:`~.build_table.LIPS_JAW_OPEN`: the inner lips 0.6 to 1.5 cm apart). On closed lips,
   which touch, the teacher's lower inner-lip points unprojected onto the upper lip near the
   corners (95, 88, 318, 324) and onto the hidden contact line in the middle: labels that
   stayed up, or lagged behind the lower lip, as the mouth opened.
5. Iris landmarks 468..477 come from the eye geometry instead: the cornea apex, and four
   points on the limbus (radius :data:`~.appearance.IRIS_RADIUS_CM`) in the directions the
   teacher's own iris points take around its centre (so MediaPipe's order is kept).

The file also holds the similarity that places MediaPipe's canonical face on ICT's head:
``p_ict = canonical_scale * canonical_rotation @ p_canonical + canonical_translation_cm``,
a weighted Procrustes fit (MediaPipe's own landmark weights) of the 468 points. Head-pose
labels are the canonical face's pose, as the teacher's are.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from numpy.typing import NDArray

from kaocap.data._render.ict import IctModel
from kaocap.errors import InputError

logger = logging.getLogger(__name__)

TABLE_PATH = Path(__file__).with_name("ict_mediapipe_correspondence.npz")
NUM_MESH_LANDMARKS = 468
#: (first, last) iris landmark of the subject's right and left eye (MediaPipe's order).
IRIS_RIGHT, IRIS_LEFT = (468, 472), (473, 477)
#: MediaPipe's inner-lip contours (FACE_LANDMARKS_LIPS), corner 78 to corner 308: entry k of
#: the lower one lies across the opening from entry k of the upper one.
INNER_UPPER_LIP = (78, 191, 80, 81, 82, 13, 312, 311, 310, 415, 308)
INNER_LOWER_LIP = (78, 95, 88, 178, 87, 14, 317, 402, 318, 324, 308)
#: The 18 inner-lip landmarks between the corners, measured on an open mouth (step 4).
INNER_LIP = tuple(sorted(INNER_UPPER_LIP[1:-1] + INNER_LOWER_LIP[1:-1]))


@dataclass(frozen=True)
class Correspondence:
    """The table (module docstring). vertices: (478, 3) drawn-vertex ids; weights: (478, 3)
    float32; canonical_*: the canonical face -> ICT similarity (rotation (3, 3), translation
    (3,) cm, scale)."""

    vertices: NDArray[np.intp]
    weights: NDArray[np.float32]
    canonical_rotation: NDArray[np.float64]
    canonical_translation_cm: NDArray[np.float64]
    canonical_scale: float

    def points(self, mesh: NDArray[np.floating]) -> NDArray[np.float64]:
        """(478, 3) landmark points on a (Vd, 3) posed mesh (model frame)."""
        return np.einsum("nk,nkd->nd", self.weights.astype(np.float64), mesh[self.vertices].astype(np.float64))


def load_correspondence(model: IctModel, path: Path = TABLE_PATH) -> Correspondence:
    """The committed table, in the drawn-vertex numbering of ``model``."""
    if not path.is_file():
        raise InputError(f"{path} is missing: regenerate it with python -m kaocap.data._render.build_table")
    with np.load(path) as data:
        drawn_of = np.full(int(model.source.max()) + 1, -1, np.intp)
        drawn_of[model.source] = np.arange(model.num_vertices)
        vertices = drawn_of[data["ict_vertices"]]
        if np.any(vertices < 0):
            raise InputError(f"{path} names ICT vertices that are not drawn")
        return Correspondence(vertices, data["weights"].astype(np.float32), data["canonical_rotation"],
                              data["canonical_translation_cm"], float(data["canonical_scale"]))  # fmt: skip


def closest_on_triangles(point: NDArray, a: NDArray, b: NDArray, c: NDArray) -> tuple[int, NDArray, float]:
    """The closest point to ``point`` (3,) on triangles ``a, b, c`` (M, 3): (triangle index,
    barycentric weights (3,), distance). Ericson's ClosestPtPointTriangle, vectorised: the
    regions are assigned from the last test to the first so that the first that holds wins."""
    ab, ac, ap, bp, cp = b - a, c - a, point - a, point - b, point - c
    d1, d2, d3, d4 = (ab * ap).sum(1), (ac * ap).sum(1), (ab * bp).sum(1), (ac * bp).sum(1)
    d5, d6 = (ab * cp).sum(1), (ac * cp).sum(1)
    va, vb, vc = d3 * d6 - d5 * d4, d5 * d2 - d1 * d6, d1 * d4 - d3 * d2
    with np.errstate(divide="ignore", invalid="ignore"):
        inv = 1.0 / (va + vb + vc)
        bary = np.c_[1 - (vb + vc) * inv, vb * inv, vc * inv]
        t_bc = (d4 - d3) / ((d4 - d3) + (d5 - d6))
        t_ac = d2 / (d2 - d6)
        t_ab = d1 / (d1 - d3)
    zero = np.zeros_like(d1)
    regions = (
        ((va <= 0) & (d4 - d3 >= 0) & (d5 - d6 >= 0), np.c_[zero, 1 - t_bc, t_bc]),
        ((vb <= 0) & (d2 >= 0) & (d6 <= 0), np.c_[1 - t_ac, zero, t_ac]),
        ((d6 >= 0) & (d5 <= d6), np.tile([0.0, 0.0, 1.0], (len(d1), 1))),
        ((vc <= 0) & (d1 >= 0) & (d3 <= 0), np.c_[1 - t_ab, t_ab, zero]),
        ((d3 >= 0) & (d4 <= d3), np.tile([0.0, 1.0, 0.0], (len(d1), 1))),
        ((d1 <= 0) & (d2 <= 0), np.tile([1.0, 0.0, 0.0], (len(d1), 1))),
    )
    for region, value in regions:
        bary[region] = value[region]
    closest = bary[:, :1] * a + bary[:, 1:2] * b + bary[:, 2:] * c
    dist = np.linalg.norm(closest - point, axis=1)
    best = int(np.nanargmin(dist))
    return best, bary[best], float(dist[best])


def snap(points: NDArray, mesh: NDArray, triangles: NDArray[np.int32]) -> tuple[NDArray[np.intp], NDArray[np.float32]]:
    """Closest surface points of (N, 3) ``points`` on ``triangles`` of ``mesh``:
    (N, 3) vertex ids and (N, 3) barycentric weights."""
    a, b, c = (mesh[triangles[:, k]].astype(np.float64) for k in range(3))
    ids, weights = np.zeros((len(points), 3), np.intp), np.zeros((len(points), 3), np.float32)
    for n, p in enumerate(points):
        t, bary, _ = closest_on_triangles(np.asarray(p, np.float64), a, b, c)
        ids[n], weights[n] = triangles[t], bary
    return ids, weights


def weighted_similarity(source: NDArray, target: NDArray, weights: NDArray) -> tuple[NDArray, NDArray, float]:
    """(rotation, translation, scale) minimising sum w |s R source + t - target|^2 (Umeyama)."""
    w = weights / weights.sum()
    mu_s, mu_t = w @ source, w @ target
    xs, xt = source - mu_s, target - mu_t
    cov = (xt * w[:, None]).T @ xs
    u, sig, vt = np.linalg.svd(cov)
    d = np.diag([1.0, 1.0, np.sign(np.linalg.det(u @ vt))])
    rotation = u @ d @ vt
    scale = float(np.trace(np.diag(sig) @ d) / (w @ (xs**2).sum(1)))
    return rotation, mu_t - scale * rotation @ mu_s, scale


def face_triangles(model: IctModel) -> NDArray[np.int32]:
    """Triangles of ICT's face part (drawn numbering)."""
    face = np.zeros(model.num_vertices, bool)
    face[model.part_vertices("face")] = True
    return model.triangles[face[model.triangles].all(axis=1)]


def eye_triangles(model: IctModel, eye: int) -> NDArray[np.int32]:
    """Triangles of one sclera (0 = left, 1 = right)."""
    mask = np.zeros(model.num_vertices, bool)
    mask[model.eyes[eye].vertices] = True
    return model.triangles[mask[model.triangles].all(axis=1)]


def iris_targets(model: IctModel, eye: int, ring_dirs: NDArray) -> NDArray[np.float64]:
    """(5, 3) model-frame targets: the cornea apex then limbus points along (4, 2) directions
    (x right = model +x, y up) as seen from the front."""
    from kaocap.data._render.appearance import IRIS_RADIUS_CM

    e = model.eyes[eye]
    ex = np.cross([0.0, 1.0, 0.0], e.axis)
    ex /= np.linalg.norm(ex)
    ey = np.cross(e.axis, ex)
    if ex[0] < 0:
        ex = -ex
    apex = e.centre + e.axis * (e.radius + 0.5)
    along = np.sqrt(e.radius**2 - IRIS_RADIUS_CM**2)
    ring = [e.centre + e.axis * along + IRIS_RADIUS_CM * (d[0] * ex + d[1] * ey) / np.linalg.norm(d) for d in ring_dirs]
    return np.array([apex, *ring])


def save_table(path: Path, ict_vertices: NDArray, weights: NDArray, rotation: NDArray, translation: NDArray,
               scale: float, spread_cm: NDArray) -> None:  # fmt: skip
    """Write the table (module docstring); spread_cm: (478,) per-landmark spread across views."""
    np.savez_compressed(path, ict_vertices=ict_vertices.astype(np.int32), weights=weights.astype(np.float32),
                        canonical_rotation=rotation, canonical_translation_cm=translation,
                        canonical_scale=np.float64(scale), spread_cm=spread_cm.astype(np.float32))  # fmt: skip
