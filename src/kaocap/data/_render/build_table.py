"""Regenerate the committed render tables: ``ict_mediapipe_correspondence.npz`` (method in
:mod:`.correspondence`) and ``ict_ambient_occlusion.npz`` (:func:`build_occlusion`).

    python -m kaocap.data._render.build_table
"""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
from numpy.typing import NDArray

from kaocap.data._render import appearance as ap
from kaocap.data._render import correspondence as corr
from kaocap.data._render.gl import GlRenderer, projection
from kaocap.data._render.ict import DEFAULT_HEAD_PATH, MOUTH_PARTS, IctModel, NormalSolver, load_ict
from kaocap.data._render.labels import surface_points
from kaocap.data._render.skin import skin_attributes
from kaocap.errors import InputError
from kaocap.pose.process import mirror_partners
from kaocap.types import euler_to_matrix

logger = logging.getLogger(__name__)

#: (yaw, pitch) degrees of the views, kaocap's convention; the first is frontal.
VIEWS = ((0, 0), (12, 0), (-12, 0), (0, 10), (0, -10), (8, 6), (-8, 6), (8, -6), (-8, -6))
SIZE = 512
_FOCAL = 1.2 * SIZE
_DISTANCE_CM = 48.0
_BACKGROUND = 0.45
#: ICT jawOpen of the head the inner-lip points are measured on (:mod:`.correspondence`, step 4).
LIPS_JAW_OPEN = 0.4


def fixed_look() -> tuple[ap.Appearance, ap.Lighting]:
    """A plain, evenly lit look for measuring (medium skin, brown hair and eyes)."""
    look = ap.Appearance((0.45, 0.27, 0.18), (0.38, 0.15, 0.13), (0.06, 0.035, 0.02), (0.14, 0.07, 0.03),
                         (0.6, 0.55, 0.45), (11.0, -4.0, 99.0, 1.5), (0.1, 0.2, 0.0, 0.8), (0.3, 0.6), 0.0)  # fmt: skip
    return look, ap.studio_lighting()


def view_matrix(yaw_deg: float, pitch_deg: float) -> NDArray[np.float32]:
    """(4, 4) model -> camera transform of a view: ICT's origin on the optical axis."""
    mv = np.eye(4, dtype=np.float32)
    mv[:3, :3] = euler_to_matrix(yaw_deg, pitch_deg, 0.0)
    mv[:3, 3] = (0.0, -1.0, -_DISTANCE_CM)
    return mv


def render_view(renderer: GlRenderer, model: IctModel, mesh: NDArray, normals: NDArray, mv: NDArray) -> NDArray[np.uint8]:
    """(S, S, 3) uint8 RGB of the mean head over a grey background."""
    rgba, _ = renderer.draw(mesh, normals, mv, projection(_FOCAL, SIZE, SIZE))
    alpha = rgba[..., 3:].astype(np.float32) / 255
    out = rgba[..., :3] * alpha + 255 * _BACKGROUND * (1 - alpha)
    return out.astype(np.uint8)


def unproject(renderer: GlRenderer, mesh: NDArray, mv: NDArray, landmarks_xy: NDArray) -> NDArray[np.float64]:
    """(N, 3) model-frame surface points under (N, 2) image px (NaN over the background)."""
    proj = projection(_FOCAL, SIZE, SIZE)
    ids = renderer.primitive_ids(mesh, mv, proj)
    cam = mesh.astype(np.float64) @ mv[:3, :3].T.astype(np.float64) + mv[:3, 3]
    screen = np.c_[SIZE / 2 + _FOCAL * cam[:, 0] / -cam[:, 2], SIZE / 2 - _FOCAL * cam[:, 1] / -cam[:, 2]]
    out = np.full((len(landmarks_xy), 3), np.nan)
    for n, (x, y) in enumerate(landmarks_xy):
        tri = ids[int(np.clip(y, 0, SIZE - 1)), int(np.clip(x, 0, SIZE - 1))]
        if tri < 0:
            continue
        corners = renderer.triangles[tri]
        p0, p1, p2 = screen[corners]
        m = np.array([p1 - p0, p2 - p0]).T
        v, w = np.linalg.solve(m, np.array([x, y]) - p0)
        out[n] = (1 - v - w) * mesh[corners[0]] + v * mesh[corners[1]] + w * mesh[corners[2]]
    return out


def teacher_views(model: IctModel, mesh: NDArray[np.float32]) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    """Teacher landmarks of ``mesh`` (Vd, 3), the mean head posed, unprojected onto it per view:
    (views, 478, 3) model frame (NaN: not found), and the frontal view's (478, 3) image landmarks."""
    from kaocap import Pipeline
    from kaocap.config import PipelineConfig

    look, light = fixed_look()
    static, noise, facemap = ap.static_attributes(model, ap.load_occlusion(model)), ap.noise_texture(), ap.face_map(model)
    renderer = GlRenderer(model, SIZE, static, noise, facemap)
    renderer.set_uniforms(ap.uniforms(model, look, light))
    renderer.set_skin(skin_attributes(model, static, look, noise, facemap))
    normals = NormalSolver(model.triangles, model.num_vertices)(mesh)
    cfg = PipelineConfig.image_mode()
    points, frontal = [], np.full((478, 3), np.nan)
    with Pipeline(cfg) as teacher:
        for k, (yaw, pitch) in enumerate(VIEWS):
            mv = view_matrix(yaw, pitch)
            faces = teacher(render_view(renderer, model, mesh, normals, mv), timestamp_ms=k + 1).faces
            if not faces:
                logger.warning("teacher found no face at yaw %s pitch %s", yaw, pitch)
                continue
            points.append(unproject(renderer, mesh, mv, faces[0].landmarks[: corr.NUM_MESH_LANDMARKS, :2]))
            if k == 0:
                frontal = faces[0].landmarks.astype(np.float64)
    if len(points) < 2:
        raise InputError(f"the teacher found the rendered face in only {len(points)} views")
    renderer.release()
    return np.stack(points), frontal


def open_mouth(model: IctModel) -> NDArray[np.float32]:
    """(Vd, 3) the mean head with ICT's jawOpen at :data:`LIPS_JAW_OPEN` (lips apart)."""
    weights = np.zeros(len(model.expr_names), np.float32)
    weights[model.expr_names.index("jawOpen")] = LIPS_JAW_OPEN
    return model.pose(model.neutral, weights, 0.0, np.zeros((2, 2)))


def symmetrise(points: NDArray[np.float64], canonical: NDArray[np.float64]) -> NDArray[np.float64]:
    """(468, 3) points averaged with their mirror partners (x -> -x). MediaPipe's canonical face
    and ICT's mean head are both exactly left-right symmetric; the partner of landmark i is the
    canonical point nearest to i's mirror image (kaocap.pose.process.mirror_partners)."""
    return 0.5 * (points + points[mirror_partners(canonical)] * np.array([-1.0, 1.0, 1.0]))


def measure_mesh_points(model: IctModel, mesh: NDArray[np.float32],
                        canonical: NDArray[np.float64]) -> tuple[NDArray, NDArray, NDArray, NDArray]:  # fmt: skip
    """Steps 1-3 of :mod:`.correspondence` on ``mesh`` (Vd, 3), the mean head posed: the 468 mesh
    landmarks' (468, 3) vertex ids (intp) and barycentric weights (float32) on its face part,
    their (468,) spread across views (cm), and the frontal view's (478, 3) teacher landmarks
    (image px). ``canonical``: (468, 3) MediaPipe's canonical face (mirror partners)."""
    views, frontal = teacher_views(model, mesh)
    median = np.nanmedian(views, axis=0)
    spread = np.nanmedian(np.linalg.norm(views - median, axis=2), axis=0)
    ids, weights = corr.snap(symmetrise(median, canonical), mesh, corr.face_triangles(model))
    return ids, weights, spread, frontal


def iris_points(model: IctModel, frontal: NDArray[np.float64]) -> tuple[NDArray[np.intp], NDArray[np.float32]]:
    """Step 5 of :mod:`.correspondence`: the 10 iris landmarks' (10, 3) vertex ids and weights on
    the scleras, from the frontal view's (478, 3) teacher landmarks."""
    iris_ids, iris_weights = [], []
    for (first, last), eye in ((corr.IRIS_RIGHT, 1), (corr.IRIS_LEFT, 0)):
        centre = frontal[first, :2]
        dirs = (frontal[first + 1 : last + 1, :2] - centre) * [1.0, -1.0]
        if np.isnan(dirs).any():
            raise InputError("the teacher found no iris in the frontal view")
        i, w = corr.snap(corr.iris_targets(model, eye, dirs), model.neutral, corr.eye_triangles(model, eye))
        iris_ids.append(i)
        iris_weights.append(w)
    return np.concatenate(iris_ids), np.concatenate(iris_weights)


def build_correspondence(head_path: str | Path = DEFAULT_HEAD_PATH, out: Path = corr.TABLE_PATH) -> Path:
    """Measure the table (method in :mod:`.correspondence`) and write it to ``out``."""
    from kaocap.pose.process import load_face_geometry

    model = load_ict(head_path)
    geometry = load_face_geometry()
    ids, weights, spread, frontal = measure_mesh_points(model, model.neutral, geometry.canonical)
    lips = list(corr.INNER_LIP)
    lip_ids, lip_weights, lip_spread, _ = measure_mesh_points(model, open_mouth(model), geometry.canonical)
    ids[lips], weights[lips], spread[lips] = lip_ids[lips], lip_weights[lips], lip_spread[lips]
    iris_ids, iris_weights = iris_points(model, frontal)
    ids, weights = np.concatenate([ids, iris_ids]), np.concatenate([weights, iris_weights])
    ours = surface_points(model.neutral, ids[: corr.NUM_MESH_LANDMARKS], weights[: corr.NUM_MESH_LANDMARKS])
    keep = geometry.weights > 0
    rotation, translation, scale = corr.weighted_similarity(geometry.canonical[keep], ours[keep], geometry.weights[keep])
    spread = np.r_[spread, np.zeros(len(ids) - len(spread))]
    corr.save_table(Path(out), model.source[ids], weights, rotation, translation, scale, spread)
    logger.info("wrote %s: median spread %.3f cm, canonical scale %.3f", out, float(np.median(spread)), scale)
    return Path(out)


def build_occlusion(head_path: str | Path = DEFAULT_HEAD_PATH, out: Path = ap.OCCLUSION_PATH) -> Path:
    """Bake per-vertex ambient occlusion of the mean head (64 directions, 512 px depth maps):
    neutral for every part but the mouth's inside, which is baked with the jaw open (closed,
    it would be black; when the lips are closed it is not drawn at all)."""
    model = load_ict(head_path)
    solver = NormalSolver(model.triangles, model.num_vertices)
    renderer = GlRenderer(model, 64, ap.static_attributes(model), ap.noise_texture(), ap.face_map(model), samples=0)
    weights = np.zeros(len(model.expr_names), np.float32)
    weights[model.expr_names.index("jawOpen")] = 1.0
    opened = model.pose(model.neutral, weights, 0.0, np.zeros((2, 2)))
    closed_ao = ap.bake_occlusion(renderer, model.neutral, solver(model.neutral), directions=64, size=512)
    open_ao = ap.bake_occlusion(renderer, opened, solver(opened), directions=64, size=512)
    renderer.release()
    mouth = np.concatenate([model.part_vertices(name) for name in MOUTH_PARTS])
    closed_ao[mouth] = open_ao[mouth]
    np.savez_compressed(out, ict_vertices=model.source.astype(np.int32), occlusion=closed_ao.astype(np.float16))
    logger.info("wrote %s: median occlusion %.2f", out, float(np.median(closed_ao)))
    return Path(out)


if __name__ == "__main__":
    logging.basicConfig(level=logging.INFO)
    build_correspondence()
    build_occlusion()
