"""Procedural appearance: textures, per-identity looks, per-render lighting, shader uniforms.

Every colour here is linear RGB in 0..1 (the shader writes sRGB). Lengths are cm in the ICT
model frame (:mod:`.ict`). An identity's look (skin tone, lips, hair colour and hairline, iris,
stubble, brows) is a pure function of its seed, so a person keeps one look across renders;
lighting and pupil size change per render.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np
from numpy.typing import NDArray

from kaocap.data._render.ict import IctModel

#: Face map: a front projection (x, y cm) of the mean head holding region masks.
FACEMAP_BOX_CM = (-10.0, -13.0, 20.0, 26.0)  # x0, y0, width, height
FACEMAP_PX = 512
IRIS_RADIUS_CM = 0.6

#: Skin tones (sRGB), light to dark; an identity interpolates between neighbours.
_SKIN_SRGB = np.array([[0.97, 0.82, 0.73], [0.90, 0.70, 0.58], [0.78, 0.57, 0.43], [0.60, 0.42, 0.30],
                       [0.42, 0.28, 0.19], [0.26, 0.17, 0.12]])  # fmt: skip
#: Hair colours (linear) and how often each is drawn.
_HAIR = np.array([[0.02, 0.018, 0.015], [0.06, 0.035, 0.02], [0.15, 0.09, 0.05], [0.45, 0.33, 0.18],
                  [0.30, 0.10, 0.04], [0.35, 0.34, 0.33], [0.62, 0.61, 0.58]])  # fmt: skip
_HAIR_P = np.array([0.3, 0.25, 0.17, 0.1, 0.05, 0.08, 0.05])
_IRIS = np.array([[0.06, 0.03, 0.015], [0.14, 0.07, 0.03], [0.2, 0.15, 0.06], [0.1, 0.16, 0.07],
                  [0.1, 0.18, 0.32], [0.22, 0.24, 0.26]])  # fmt: skip
_IRIS_P = np.array([0.35, 0.25, 0.12, 0.08, 0.13, 0.07])


def _to_linear(srgb: NDArray) -> NDArray:
    return np.power(np.clip(srgb, 0, 1), 2.2)


@dataclass(frozen=True)
class Appearance:
    """One identity's look. Colours (3,) linear RGB; hair: front hairline y, back hairline y,
    bald-top y (99 = none), strand density; skin: detail, blotches, stubble, brow amounts;
    offset: (2,) noise texture offset; noise_angle: rad, how the per-vertex noise patterns mix."""

    skin_rgb: tuple[float, float, float]
    lip_rgb: tuple[float, float, float]
    hair_rgb: tuple[float, float, float]
    iris_rgb: tuple[float, float, float]
    teeth_rgb: tuple[float, float, float]
    hair: tuple[float, float, float, float]
    skin: tuple[float, float, float, float]
    offset: tuple[float, float]
    noise_angle: float


def sample_appearance(rng: np.random.Generator) -> Appearance:
    """A random identity look (see the module docstring)."""
    t = rng.uniform(0, len(_SKIN_SRGB) - 1)
    i = min(int(t), len(_SKIN_SRGB) - 2)
    srgb = _SKIN_SRGB[i] * (1 - (t - i)) + _SKIN_SRGB[i + 1] * (t - i)
    srgb = srgb * rng.uniform(0.92, 1.06) * np.array([1.0, rng.uniform(0.96, 1.03), rng.uniform(0.93, 1.05)])
    skin = _to_linear(srgb)
    lip = skin * np.array([1.0, 0.55, 0.58]) * rng.uniform(0.6, 0.95)
    hair = _HAIR[rng.choice(len(_HAIR), p=_HAIR_P)] * rng.uniform(0.8, 1.2, 3)
    iris = _IRIS[rng.choice(len(_IRIS), p=_IRIS_P)] * rng.uniform(0.8, 1.2, 3)
    teeth = np.array([0.72, 0.66, 0.55]) * rng.uniform(0.7, 1.05)
    style = rng.random()
    front, back = rng.uniform(10.3, 12.0), rng.uniform(-6.0, -2.0)
    bald_top = 99.0 if style < 0.7 else rng.uniform(9.0, 13.0)
    if style > 0.95:
        front = back = 99.0  # shaved / bald head
    stubble = rng.uniform(0.3, 1.0) if rng.random() < 0.35 else 0.0
    looks = (rng.uniform(0.05, 0.22), rng.uniform(0.0, 0.7), stubble, rng.uniform(0.5, 1.0))
    return Appearance(tuple(skin), tuple(lip), tuple(np.clip(hair, 0, 1)), tuple(np.clip(iris, 0, 1)),  # type: ignore[arg-type]
                      tuple(teeth), (front, back, bald_top, rng.uniform(1.0, 2.2)), looks,  # type: ignore[arg-type]
                      tuple(rng.random(2)), float(rng.uniform(0, 2 * np.pi)))  # type: ignore[arg-type]  # fmt: skip


def _kelvin_rgb(kelvin: float) -> NDArray[np.float64]:
    """Rough linear RGB tint of a black body at ``kelvin`` (2500..9000 K), max channel 1."""
    t = (kelvin - 2500.0) / 6500.0
    rgb = np.array([1.0, 0.55 + 0.45 * min(t * 1.6, 1.0), 0.25 + 0.75 * t])
    return rgb / rgb.max()


@dataclass(frozen=True)
class Lighting:
    """Per-render lights in the camera frame: key (direction towards the light, rgb), fill,
    sky/ground ambient, skin specular (strength, shininess), pupil radius (cm)."""

    key_dir: tuple[float, float, float]
    key_rgb: tuple[float, float, float]
    fill_dir: tuple[float, float, float]
    fill_rgb: tuple[float, float, float]
    sky_rgb: tuple[float, float, float]
    ground_rgb: tuple[float, float, float]
    spec: tuple[float, float]
    pupil_cm: float


def sample_lighting(rng: np.random.Generator) -> Lighting:
    """Random key + fill + ambient lighting, colour temperatures 2700..8000 K."""
    az, el = np.radians(rng.uniform(-110, 110)), np.radians(rng.uniform(-35, 75))
    key = np.array([np.sin(az) * np.cos(el), np.sin(el), np.cos(az) * np.cos(el)])
    fill = np.array([-key[0], rng.uniform(-0.3, 0.5), abs(key[2]) + 0.3])
    tint = _kelvin_rgb(rng.uniform(2700, 8000))
    ambient_tint = _kelvin_rgb(rng.uniform(3500, 9000))
    sky = ambient_tint * rng.uniform(0.12, 0.55)
    return Lighting(
        key_dir=tuple(key), key_rgb=tuple(tint * rng.uniform(0.5, 1.6)),  # type: ignore[arg-type]
        fill_dir=tuple(fill / np.linalg.norm(fill)),  # type: ignore[arg-type]
        fill_rgb=tuple(_kelvin_rgb(rng.uniform(3000, 9000)) * rng.uniform(0.0, 0.4)),  # type: ignore[arg-type]
        sky_rgb=tuple(sky), ground_rgb=tuple(sky * rng.uniform(0.25, 0.8)),  # type: ignore[arg-type]
        spec=(float(rng.uniform(0.04, 0.3)), float(rng.uniform(12, 45))),
        pupil_cm=float(rng.uniform(0.14, 0.3)),
    )


def studio_lighting() -> Lighting:
    """An even, frontal, neutral-white lighting (measurements, tests, previews)."""
    return Lighting((0.2, 0.45, 0.87), (1.0, 0.97, 0.93), (-0.4, 0.0, 0.9), (0.2, 0.2, 0.22),
                    (0.35, 0.36, 0.38), (0.2, 0.19, 0.18), (0.1, 25.0), 0.2)  # fmt: skip


def uniforms(model: IctModel, look: Appearance, light: Lighting) -> dict[str, object]:
    """Shader uniforms (:mod:`.shaders`) for one render."""
    x0, y0, w, h = FACEMAP_BOX_CM
    return {
        "u_facemap_box": (x0, y0, 1.0 / w, 1.0 / h),
        "u_light_dir": light.key_dir, "u_light_rgb": light.key_rgb,
        "u_fill_dir": light.fill_dir, "u_fill_rgb": light.fill_rgb,
        "u_sky_rgb": light.sky_rgb, "u_ground_rgb": light.ground_rgb, "u_spec": light.spec,
        "u_skin_rgb": look.skin_rgb, "u_lip_rgb": look.lip_rgb, "u_hair_rgb": look.hair_rgb,
        "u_iris_rgb": look.iris_rgb, "u_teeth_rgb": look.teeth_rgb, "u_hair": look.hair,
        "u_skin": look.skin, "u_offset": look.offset,
        "u_mix": (float(np.cos(look.noise_angle)), float(np.sin(look.noise_angle))), "u_eye": (IRIS_RADIUS_CM, light.pupil_cm),
        "u_eye_c": [tuple(e.centre) for e in model.eyes], "u_eye_a": [tuple(e.axis) for e in model.eyes],
    }  # fmt: skip


def noise_texture(size: int = 256, seed: int = 0) -> NDArray[np.uint8]:
    """(size, size, 4) uint8 tileable 1/f^beta noise: r fine (beta 0.8), g blotches (3.0),
    b strands (1.3), a medium (2.0); each channel spans 0..255 (1st..99th percentile)."""
    rng = np.random.default_rng(seed)
    f = np.fft.fftfreq(size)
    radius = np.hypot(f[:, None], f[None, :])
    radius[0, 0] = 1.0
    out = np.empty((size, size, 4), np.uint8)
    for c, beta in enumerate((0.8, 3.0, 1.3, 2.0)):
        field = np.real(np.fft.ifft2(np.fft.fft2(rng.normal(size=(size, size))) / radius**beta))
        lo, hi = np.percentile(field, (1, 99))
        out[..., c] = np.clip((field - lo) / (hi - lo) * 255, 0, 255).astype(np.uint8)
    return out


def _to_map(points_cm: NDArray) -> NDArray[np.int32]:
    """Face-map px (x right, row 0 at the top) of (N, 2+) model-frame points."""
    x0, y0, w, h = FACEMAP_BOX_CM
    px = np.empty((len(points_cm), 2))
    px[:, 0] = (points_cm[:, 0] - x0) / w * FACEMAP_PX
    px[:, 1] = (1.0 - (points_cm[:, 1] - y0) / h) * FACEMAP_PX
    return np.round(px * 16).astype(np.int32)  # 4 fractional bits for cv2's shift


def _brow_polygon(points: NDArray) -> NDArray:
    """A brow band under ICT's brow landmarks (lateral -> medial), thicker medially."""
    thickness = np.linspace(0.35, 0.8, len(points))
    upper = points[:, :2] + [0.0, 0.12]
    lower = points[:, :2] - np.c_[np.zeros(len(points)), thickness]
    return np.concatenate([upper, lower[::-1]])


def face_map(model: IctModel) -> NDArray[np.uint8]:
    """(512, 512, 4) uint8 masks over :data:`FACEMAP_BOX_CM`: r lips, g brows, b stubble area,
    a blush (cheeks and nose), drawn from ICT's 68 landmarks on the mean head, softened."""
    lm = model.neutral[model.landmarks68].astype(np.float64)
    px_per_cm = FACEMAP_PX / FACEMAP_BOX_CM[2]
    layers = np.zeros((4, FACEMAP_PX, FACEMAP_PX), np.uint8)
    cv2.fillPoly(layers[0], [_to_map(lm[48:60])], 255, cv2.LINE_AA, shift=4)
    for brow in (lm[17:22], lm[26:21:-1]):
        cv2.fillPoly(layers[1], [_to_map(_brow_polygon(brow))], 255, cv2.LINE_AA, shift=4)
    beard = np.concatenate([lm[2:15], lm[[54]] + [0.9, 0.9, 0], lm[35:30:-1] + [0, -0.4, 0], lm[[48]] + [-0.9, 0.9, 0]])
    cv2.fillPoly(layers[2], [_to_map(beard)], 255, cv2.LINE_AA, shift=4)
    for centre, axes in (((lm[2] + lm[31]) / 2, (2.0, 1.5)), ((lm[14] + lm[35]) / 2, (2.0, 1.5)), (lm[30], (1.1, 1.3))):
        c = _to_map(centre[None])[0]
        size = (int(axes[0] * px_per_cm * 16), int(axes[1] * px_per_cm * 16))
        cv2.ellipse(layers[3], (int(c[0]), int(c[1])), size, 0, 0, 360, 255, -1, cv2.LINE_AA, shift=4)
    sigmas = (0.06, 0.1, 0.5, 1.0)  # cm
    for layer, sigma in zip(layers, sigmas):
        layer[:] = cv2.GaussianBlur(layer, (0, 0), sigma * px_per_cm)
    return np.ascontiguousarray(np.moveaxis(layers, 0, -1))


def smooth_noise(points_cm: NDArray, scale_cm: float, seed: int, waves: int = 32) -> NDArray[np.float32]:
    """(N,) float32 smooth noise of (N, 3) points: a sum of ``waves`` random plane waves of
    wavelength about ``scale_cm``; zero mean, standard deviation about 0.5."""
    rng = np.random.default_rng(seed)
    directions = rng.normal(size=(waves, 3))
    directions /= np.linalg.norm(directions, axis=1, keepdims=True)
    freq = directions * (2 * np.pi / scale_cm) * rng.uniform(0.5, 1.5, (waves, 1))
    phase = rng.uniform(0, 2 * np.pi, waves)
    return (np.cos(points_cm @ freq.T + phase).sum(axis=1) / np.sqrt(2 * waves)).astype(np.float32)


def static_attributes(model: IctModel, ao: NDArray[np.float32] | None = None) -> NDArray[np.float32]:
    """(Vd, 9) float32 per-vertex ``ref xyz`` (mean head, cm), material id, ambient occlusion,
    and four smooth noise patterns (hairline jitter a, b at ~1.5 cm; blotches a, b at ~3 cm)."""
    ao = np.ones(model.num_vertices, np.float32) if ao is None else ao
    p = model.neutral.astype(np.float64)
    noise = [smooth_noise(p, scale, seed) for scale, seed in ((1.5, 1), (1.5, 2), (3.0, 3), (3.0, 4))]
    return np.c_[model.neutral, model.material.astype(np.float32), ao, *noise].astype(np.float32)
