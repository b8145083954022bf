"""Synthetic head renders with exact labels: ICT-FaceKit drawn headless on the CPU.

A render is one random ICT-FaceKit head (identity, expression, look) at a random pose, focal
length and size in frame, lit by a random key/fill/ambient rig, over a face-free photo (or a
procedural background), then degraded (blur, resolution loss, noise, JPEG). It is drawn with
moderngl on an EGL context (Mesa's llvmpipe; no anisotropic filtering, no MSAA by default: the
silhouette is softened in numpy). Labels are exact by construction:

* ``blendshapes`` (52,) 0..1, kaocap.BLENDSHAPES order, all valid (tongueOut included);
* ``pose``: rotation (3, 3) and translation_cm (3,) of MediaPipe's canonical face frame
  (placed on ICT's head by the committed correspondence table) in kaocap's camera frame
  (right-handed, cm: x right, y up, z towards the viewer; see :mod:`kaocap.types`);
* ``landmarks``: MediaPipe's 478 points as fixed barycentric points of ICT's mesh, projected:
  x, y px and z = depth relative to the 468 points' mean depth, in px at the head's distance
  (smaller = nearer; zero-mean like the MediaPipe network's z, same scale within 10%: measured); ``visibility`` 0 when outside the image, back-facing or behind
  another surface (depth-buffer test);
* the crop: ``roi_from_landmarks`` of the projected points, warped with ``Roi.crop_matrix``
  exactly as the runtime crops a tracked face.

ICT-FaceKit's 57 shapes -> ARKit (details in :mod:`kaocap.data._render.expressions`):

========================  ===================================================================
ICT                       ARKit label
========================  ===================================================================
``x_L`` / ``x_R`` (44)    ``xLeft`` / ``xRight`` (ICT's L/R is the subject's, as ARKit's)
13 unsided shapes         the same name (jawOpen, jawForward, jawLeft, jawRight, mouthClose,
                          mouthFunnel, mouthPucker, mouthLeft, mouthRight, mouthRoll*, mouthShrug*)
browInnerUp_L + _R        browInnerUp = mean of the halves (30% rendered asymmetric, mean kept)
cheekPuff_L + _R          cheekPuff = mean of the halves (as browInnerUp)
cheekRaiser_L / _R        no ARKit shape: always 0 (ARKit's AU6 is cheekSquint)
PupilDilate_L / _R        no ARKit shape: 0 (pupil size is drawn by the shader instead)
(none)                    tongueOut: ICT's tongue pushed out (up to 3 cm), jawOpen >= 0.25+0.35 t
(none)                    eyeLook*: eyeballs also rotated by Live Link Face's gains
========================  ===================================================================

Throughput at 256 x 256 on this project's 2-core machine (measured with
:func:`kaocap.data.render_shards.measure_rate`, procedural backgrounds): one process with one
Mesa thread 18 renders/s (about 36 ms of it OpenGL), 22 with two threads; two worker processes
36-40 renders/s; with the teacher on every render, 14 (one process) and 25 (two).

Identities: a fixed pool of ``num_identities`` coefficient vectors (100 ICT identity shapes,
N(0, identity_sigma)), each with its own look, drawn from ``identity_seed``; identity ``k`` is
the person ``ict_id_k`` so that splits by person hold. Everything about render ``i`` comes from
``numpy.random.default_rng([seed, i])`` (and its block's identity subset), so the same config
gives the same labels on any machine (pixels may differ by a grey level or so).

>>> cfg = RenderConfig(seed=1)
>>> renderer = HeadRenderer(cfg)                                     # doctest: +SKIP
>>> sample = renderer.render(renderer.sample_params(np.random.default_rng(0)))  # doctest: +SKIP
>>> sample.crop.shape, sample.blendshapes.shape                      # doctest: +SKIP
((128, 128, 3), (52,))
"""

from __future__ import annotations

import logging
import math
import os
from dataclasses import dataclass
from typing import Self

import cv2
import numpy as np
from numpy.typing import NDArray

from kaocap.data._render import appearance as ap
from kaocap.data._render import labels as lab
from kaocap.data._render.backgrounds import DEFAULT_IMAGES, BackgroundBank, procedural_background
from kaocap.data._render.correspondence import load_correspondence, weighted_similarity
from kaocap.data._render.expressions import (
    DEFAULT_PRIOR_PATH,
    Expression,
    constrain,
    load_prior,
    sample_expression,
    to_expression,
)
from kaocap.data._render.gl import GlRenderer, projection
from kaocap.data._render.ict import (
    DEFAULT_HEAD_PATH,
    MOUTH_PARTS,
    NUM_IDENTITY_SHAPES,
    NormalSolver,
    load_ict,
)
from kaocap.data._render.post import PostParams, composite, degrade, sample_post
from kaocap.data._render.skin import skin_attributes
from kaocap.data._render.teacher import to_crop
from kaocap.errors import ConfigError
from kaocap.landmarks.process import roi_from_landmarks
from kaocap.pose.process import load_face_geometry
from kaocap.types import HeadPose, Roi, euler_to_matrix, matrix_to_euler

__all__ = ["BackgroundBank", "HeadRenderer", "RenderConfig", "RenderParams", "RenderSample", "person_of_identity"]

logger = logging.getLogger(__name__)

#: Forehead-to-chin height of MediaPipe's canonical face (landmarks 10 -> 152), cm.
FACE_HEIGHT_CM = 17.7
#: Renders never put the canonical origin nearer to the camera than this (cm).
MIN_DISTANCE_CM = 20.0


@dataclass(frozen=True)
class RenderConfig:
    """How renders are drawn and sampled. Angles in degrees (kaocap's Euler convention), sizes
    in px. ``frontal_fraction`` of the poses come from the frontal ranges, the rest from the
    full ones. fov_deg: horizontal field of view. face_fraction: canonical face height over
    image height. centre_jitter: the head's image position, +- fraction of the size around the
    centre. msaa: OpenGL MSAA samples (0: silhouette softened in numpy, 4x is ~4x slower on
    llvmpipe). teacher: also run the MediaPipe-network teacher on every render (render_block).
    jitter_variants: extra crops per render with a perturbed ROI. photo_fraction: share of
    photo backgrounds when a bank is given. llvmpipe_threads: Mesa's rasteriser threads
    (LP_NUM_THREADS, read when the process's first context is made; 0 = Mesa's default, one per
    core). One is the most work per CPU second: run one worker process per core instead."""

    size: int = 256
    crop_size: int = 128
    seed: int = 0
    yaw_deg: tuple[float, float] = (-180.0, 180.0)
    pitch_deg: tuple[float, float] = (-70.0, 70.0)
    roll_deg: tuple[float, float] = (-45.0, 45.0)
    frontal_fraction: float = 0.5
    frontal_yaw_deg: tuple[float, float] = (-60.0, 60.0)
    frontal_pitch_deg: tuple[float, float] = (-35.0, 35.0)
    fov_deg: tuple[float, float] = (35.0, 80.0)
    face_fraction: tuple[float, float] = (0.25, 0.8)
    centre_jitter: float = 0.15
    num_identities: int = 1000
    identity_seed: int = 0
    identity_sigma: float = 1.0
    identities_per_block: int = 8
    msaa: int = 0
    teacher: bool = True
    jitter_variants: int = 0
    photo_fraction: float = 0.85
    background_count: int = 200
    jpeg_quality: int = 92
    llvmpipe_threads: int = 1
    head_path: str = str(DEFAULT_HEAD_PATH)
    prior_path: str = str(DEFAULT_PRIOR_PATH)
    images_path: str = str(DEFAULT_IMAGES)

    def __post_init__(self) -> None:
        if self.size < 32 or self.crop_size < 16:
            raise ConfigError(f"size {self.size} / crop_size {self.crop_size} too small")
        if self.num_identities < 1 or self.identities_per_block < 1:
            raise ConfigError("num_identities and identities_per_block must be >= 1")
        if not 0.0 <= self.frontal_fraction <= 1.0:
            raise ConfigError(f"frontal_fraction must be in 0..1, got {self.frontal_fraction}")


@dataclass(frozen=True)
class RenderParams:
    """Everything that defines one render. rotation: (3, 3) float32 and translation_cm: (3,)
    float32, the canonical face's pose in the camera frame (the pose label); focal_px: focal
    length; background_seed: seeds the background choice and the noise."""

    identity: int
    expression: Expression
    rotation: NDArray[np.float32]
    translation_cm: NDArray[np.float32]
    focal_px: float
    lighting: ap.Lighting
    post: PostParams
    background_seed: int

    @property
    def euler_deg(self) -> tuple[float, float, float]:
        """(yaw, pitch, roll) degrees, kaocap's convention."""
        return matrix_to_euler(self.rotation)


@dataclass(frozen=True)
class RenderSample:
    """One render and its exact labels.

    image: (S, S, 3) uint8 RGB, the full render after degradations. alpha: (S, S) uint8 head
    coverage (255 = head). crop: (C, C, 3) uint8, ``roi.crop_matrix(C)`` of ``image``.
    landmarks_image: (478, 3) float32 image px (z relative depth, px). landmarks_crop: (478, 3)
    float32 crop px (z scaled as x). visibility: (478,) float32 1/0. blendshapes: (52,) float32.
    pose: canonical face -> camera. params: what was drawn.
    """

    image: NDArray[np.uint8]
    alpha: NDArray[np.uint8]
    crop: NDArray[np.uint8]
    roi: Roi
    landmarks_image: NDArray[np.float32]
    landmarks_crop: NDArray[np.float32]
    visibility: NDArray[np.float32]
    blendshapes: NDArray[np.float32]
    pose: HeadPose
    params: RenderParams


def person_of_identity(identity: int) -> str:
    """The person id of pool identity ``identity`` (``ict_id_<k>``)."""
    return f"ict_id_{identity}"


def crop_of(image: NDArray[np.uint8], roi: Roi, size: int) -> NDArray[np.uint8]:
    """(size, size, 3) crop exactly as the runtime takes it (replicated borders)."""
    return cv2.warpAffine(image, roi.crop_matrix(size), (size, size), flags=cv2.INTER_LINEAR,
                          borderMode=cv2.BORDER_REPLICATE)  # fmt: skip


class HeadRenderer:
    """Draws :class:`RenderSample` s. ``backgrounds``: face-free photos (None: procedural only).

    One OpenGL context per renderer; use one renderer per process.
    """

    def __init__(self, cfg: RenderConfig | None = None, backgrounds: BackgroundBank | None = None) -> None:
        self.cfg = cfg = cfg or RenderConfig()
        self.model = load_ict(cfg.head_path)
        self.table = load_correspondence(self.model)
        self.prior = load_prior(cfg.prior_path)
        self.backgrounds = backgrounds if backgrounds is not None and len(backgrounds) else None
        self._noise = ap.noise_texture()
        self._normals = NormalSolver(self.model.triangles, self.model.num_vertices)
        self._static = ap.static_attributes(self.model, ap.load_occlusion(self.model))
        self._facemap = ap.face_map(self.model)
        if cfg.llvmpipe_threads > 0:
            os.environ.setdefault("LP_NUM_THREADS", str(cfg.llvmpipe_threads))
        self._gl = GlRenderer(self.model, cfg.size, self._static, self._noise, self._facemap, samples=cfg.msaa)
        self._skins: dict[int, NDArray[np.float32]] = {}
        self._looks: dict[int, ap.Appearance] = {}
        self._frames: dict[int, tuple[NDArray[np.float64], NDArray[np.float64]]] = {}

    def close(self) -> None:
        self._gl.release()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def identity_coefficients(self, identity: int) -> NDArray[np.float32]:
        """(100,) float32 ICT identity weights of pool identity ``identity``."""
        rng = np.random.default_rng([self.cfg.identity_seed, identity])
        return (rng.normal(size=NUM_IDENTITY_SHAPES) * self.cfg.identity_sigma).astype(np.float32)

    def look(self, identity: int) -> ap.Appearance:
        """The fixed look (skin, hair, eyes ...) of pool identity ``identity``."""
        if identity not in self._looks:
            self._looks[identity] = ap.sample_appearance(np.random.default_rng([self.cfg.identity_seed, identity, 1]))
        return self._looks[identity]

    def _skin(self, identity: int) -> NDArray[np.float32]:
        """(Vd, 4) skin albedo and hair coverage of an identity (cached, up to 256)."""
        if identity not in self._skins:
            if len(self._skins) >= 256:
                self._skins.pop(next(iter(self._skins)))
            self._skins[identity] = skin_attributes(self.model, self._static, self.look(identity), self._noise,
                                                    self._facemap)  # fmt: skip
        return self._skins[identity]

    def _sample_pose(self, rng: np.random.Generator) -> tuple[float, float, float]:
        cfg = self.cfg
        frontal = rng.random() < cfg.frontal_fraction
        yaw = rng.uniform(*(cfg.frontal_yaw_deg if frontal else cfg.yaw_deg))
        pitch = rng.uniform(*(cfg.frontal_pitch_deg if frontal else cfg.pitch_deg))
        return yaw, pitch, rng.uniform(*cfg.roll_deg)

    def sample_params(self, rng: np.random.Generator, identities: NDArray[np.integer] | None = None) -> RenderParams:
        """Random render parameters; the identity is drawn from ``identities`` (default: the
        whole pool)."""
        cfg = self.cfg
        identity = int(rng.choice(identities) if identities is not None else rng.integers(cfg.num_identities))
        expression = sample_expression(rng, self.model.expr_names, self.prior)
        rotation = euler_to_matrix(*self._sample_pose(rng)).astype(np.float32)
        focal = cfg.size / 2 / math.tan(math.radians(rng.uniform(*cfg.fov_deg)) / 2)
        distance = max(focal * FACE_HEIGHT_CM / (rng.uniform(*cfg.face_fraction) * cfg.size), MIN_DISTANCE_CM)
        offset = rng.uniform(-cfg.centre_jitter, cfg.centre_jitter, 2) * cfg.size
        translation = np.array([offset[0] * distance / focal, -offset[1] * distance / focal, -distance], np.float32)
        return RenderParams(identity, expression, rotation, translation, float(focal), ap.sample_lighting(rng),
                            sample_post(rng), int(rng.integers(2**31)))  # fmt: skip

    def make_params(self, *, identity: int = 0, blendshapes: NDArray[np.floating] | None = None,
                    yaw_deg: float = 0.0, pitch_deg: float = 0.0, roll_deg: float = 0.0,
                    translation_cm: tuple[float, float, float] = (0.0, 0.0, -45.0), focal_px: float | None = None,
                    seed: int = 0) -> RenderParams:  # fmt: skip
        """Explicit parameters (tests, previews): ``blendshapes`` (52,) ARKit values (default
        neutral; the sampler's physical rules apply, e.g. tongueOut opens the jaw), studio
        lighting, no degradation, a procedural or photo background from ``seed``.

        >>> params = renderer.make_params(blendshapes=jaw_open, yaw_deg=30)   # doctest: +SKIP
        """
        arkit = np.zeros(52) if blendshapes is None else np.array(blendshapes, np.float64)
        constrain(arkit)
        expression = to_expression(arkit, self.model.expr_names, np.random.default_rng([seed, 1]))
        rotation = euler_to_matrix(yaw_deg, pitch_deg, roll_deg).astype(np.float32)
        focal = float(focal_px) if focal_px is not None else 1.2 * self.cfg.size
        return RenderParams(identity, expression, rotation, np.array(translation_cm, np.float32), focal,
                            ap.studio_lighting(), PostParams(), seed)  # fmt: skip

    def canonical_frame(self, identity: int) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
        """Where MediaPipe's canonical face sits on pool identity ``identity``'s neutral head:
        (rotation (3, 3), origin (3,) cm) in the ICT model frame. The mean head's placement
        (correspondence table) moved by the weighted Procrustes fit of the identity's 468
        landmark points to the mean head's (identities differ by up to ~3.5 deg of pitch), so
        pose labels follow MediaPipe's landmark-based definition for every identity."""
        if identity not in self._frames:
            geometry = load_face_geometry()
            keep = geometry.weights > 0
            mean = self.table.points(self.model.neutral)[: lab.MESH_POINTS][keep]
            base = self.model.identity(self.identity_coefficients(identity), key=identity)
            ours = self.table.points(base)[: lab.MESH_POINTS][keep]
            rot, trans, scale = weighted_similarity(mean, ours, geometry.weights[keep])
            r0, t0 = self.table.canonical_rotation, self.table.canonical_translation_cm
            self._frames[identity] = (rot @ r0, scale * rot @ t0 + trans)
        return self._frames[identity]

    def head_transform(self, params: RenderParams) -> NDArray[np.float32]:
        """(4, 4) ICT model -> camera transform that puts the canonical face at the label pose."""
        r0, t0 = self.canonical_frame(params.identity)
        rotation = params.rotation.astype(np.float64) @ r0.T
        out = np.eye(4, dtype=np.float32)
        out[:3, :3], out[:3, 3] = rotation, params.translation_cm - rotation @ t0
        return out

    def render(self, params: RenderParams) -> RenderSample:
        """Draw one render and compute its labels."""
        cfg, model, expr = self.cfg, self.model, params.expression
        base = model.identity(self.identity_coefficients(params.identity), key=params.identity)
        mesh = model.pose(base, expr.ict_weights, expr.tongue_out, expr.eye_angles_rad)
        normals = self._normals(mesh)
        mv = self.head_transform(params)
        self._gl.set_uniforms(ap.uniforms(model, self.look(params.identity), params.lighting, expr.tongue_out))
        self._gl.set_skin(self._skin(params.identity))
        rgba, depth = self._gl.draw(mesh, normals, mv, projection(params.focal_px, cfg.size, cfg.size),
                                    self._draw_ranges(base, mesh, mv))  # fmt: skip
        points = lab.to_camera(self.table.points(mesh), mv[:3, :3], mv[:3, 3])
        point_normals = self.table.points(normals) @ mv[:3, :3].T.astype(np.float64)
        landmarks = lab.image_landmarks(points, params.focal_px, cfg.size, float(params.translation_cm[2]))
        visible = lab.visibility(points, point_normals, depth, params.focal_px)
        image = self._finish(rgba, params)
        roi = roi_from_landmarks(landmarks[:, :2])
        return RenderSample(image, rgba[..., 3].copy(), crop_of(image, roi, cfg.crop_size), roi, landmarks,
                            to_crop(landmarks, roi, cfg.crop_size), visible, expr.arkit.copy(),
                            HeadPose(params.rotation.copy(), params.translation_cm.copy()), params)  # fmt: skip

    def _draw_ranges(self, base: NDArray[np.float32], mesh: NDArray[np.float32], mv: NDArray) -> list[tuple[int, int]]:
        """Triangle ranges to draw: the mouth's inside only when the lips part; the back of the
        head before the face when the face looks away (fewer hidden fragments shaded)."""
        parts = self.model.part_triangles
        ranges = [parts[name] for name in parts if name not in MOUTH_PARTS]
        if mv[2, 2] < 0:  # the face's +z axis points away from the camera
            ranges[0], ranges[1] = ranges[1], ranges[0]
        if self.model.lips_apart(base, mesh):
            ranges += [parts[name] for name in MOUTH_PARTS]
        return ranges

    def _finish(self, rgba: NDArray[np.uint8], params: RenderParams) -> NDArray[np.uint8]:
        """Background, compositing and degradations (randomness from ``background_seed``)."""
        rng = np.random.default_rng(params.background_seed)
        if self.backgrounds is not None and rng.random() < self.cfg.photo_fraction:
            background = self.backgrounds.sample(rng, self.cfg.size)
        else:
            background = procedural_background(rng, self.cfg.size, self._noise)
        image = composite(rgba, background, soften=self.cfg.msaa == 0)
        return degrade(image, params.post, rng)


def __getattr__(name: str):
    """``render_block`` and friends live in :mod:`kaocap.data.render_shards` (imported lazily)."""
    if name in ("render_block", "render_unit_name", "block_identities", "default_bank"):
        from kaocap.data import render_shards

        return getattr(render_shards, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
