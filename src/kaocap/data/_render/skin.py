"""Per-identity skin colour and hair coverage, computed once per identity on the vertices.

Shading every skin fragment procedurally costs llvmpipe about as much as drawing the head, so
what varies slowly over the skin is computed here per vertex (the face is dense: ~2 mm between
vertices) and interpolated by the rasteriser: tone, blotches, fine mottling, blush, stubble and
the hair coverage (hairline with irregular edges). What needs sharp edges or fine detail stays
per fragment in :mod:`.shaders`: lips, brows, lash lines (face map), hair strands, eyes.

Frames and units: the ICT model frame of :mod:`.ict`, cm, on the mean head (``ref``), so the
patterns stick to the skin whatever the expression.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import NDArray

from kaocap.data._render.appearance import FACEMAP_BOX_CM, Appearance
from kaocap.data._render.ict import IctModel, Material

#: Azimuth knots (rad, 0 = front, pi = back) of the hairline; heights in :func:`hairline_y`.
_KNOT_PHI = np.array([0.0, 0.45, 0.85, 1.12, 1.3, 1.72, 2.2, np.pi])
#: The hair's "pole" (cm): azimuth and elevation of the strands are measured around it.
HAIR_CENTRE_CM = (0.0, 2.0, -1.0)


def hairline_y(abs_phi: NDArray[np.float64], front_y: float, back_y: float) -> NDArray[np.float64]:
    """Hairline height (cm) around the head: forehead, temples, sideburns, over the ears,
    behind the ears, nape; smooth between knots."""
    f = front_y
    knots_y = np.array([f, f - 0.4, f - 2.5, f - 7.5, f - 4.0, f - 9.5, f - 9.5 + 0.6 * (back_y - f + 9.5), back_y])
    i = np.clip(np.searchsorted(_KNOT_PHI, abs_phi, side="right"), 1, len(_KNOT_PHI) - 1)
    t = np.clip((abs_phi - _KNOT_PHI[i - 1]) / (_KNOT_PHI[i] - _KNOT_PHI[i - 1]), 0.0, 1.0)
    s = t * t * (3 - 2 * t)
    return knots_y[i - 1] * (1 - s) + knots_y[i] * s


def _smoothstep(lo: float, hi: float, x: NDArray) -> NDArray:
    t = np.clip((x - lo) / (hi - lo), 0.0, 1.0)
    return t * t * (3 - 2 * t)


def _sample(image: NDArray[np.uint8], u: NDArray, v: NDArray, channel: int, wrap: bool) -> NDArray[np.float64]:
    """Nearest texel of ``image`` (rows top first) at texture coordinates u, v (v up), 0..1."""
    h, w = image.shape[:2]
    col, row = np.floor(u * w).astype(int), np.floor((1.0 - v) * h).astype(int)
    if wrap:
        col, row = col % w, row % h
    else:
        col, row = np.clip(col, 0, w - 1), np.clip(row, 0, h - 1)
    return image[row, col, channel].astype(np.float64) / 255.0


def skin_attributes(model: IctModel, static: NDArray[np.float32], look: Appearance, noise: NDArray[np.uint8],
                    facemap: NDArray[np.uint8]) -> NDArray[np.float32]:  # fmt: skip
    """(Vd, 4) float32: linear RGB skin albedo and hair coverage 0..1 of each vertex (0 and
    coverage 0 off the skin). ``static``: :func:`~.appearance.static_attributes`."""
    ref, noise4 = static[:, :3].astype(np.float64), static[:, 5:9].astype(np.float64)
    out = np.zeros((len(ref), 4), np.float32)
    skin = model.material == Material.SKIN
    p, n = ref[skin], noise4[skin]
    c, s = np.cos(look.noise_angle), np.sin(look.noise_angle)
    detail, blotch = 0.5 + 0.3 * n[:, 3], n[:, 2] * c + n[:, 0] * s
    albedo = np.asarray(look.skin_rgb) * (1.0 + look.skin[0] * (detail - 0.5) * 2.0)[:, None]
    albedo *= 1.0 + (np.array([1.1, 0.92, 0.9]) - 1.0) * (look.skin[1] * _smoothstep(0.0, 0.6, blotch))[:, None]
    x0, y0, w, h = FACEMAP_BOX_CM
    front = p[:, 2] > 2.0
    u, v = (p[:, 0] - x0) / w, (p[:, 1] - y0) / h
    blush = np.where(front, _sample(facemap, u, v, 3, wrap=False), 0.0)
    stubble_area = np.where(front, _sample(facemap, u, v, 2, wrap=False), 0.0)
    albedo *= 1.0 + (np.array([1.12, 0.86, 0.86]) - 1.0) * (0.6 * blush)[:, None]
    grain = _sample(noise, p[:, 0] * 0.1 + look.offset[1], p[:, 1] * 0.1 + look.offset[0], 0, wrap=True)
    albedo *= (1.0 - 0.4 * stubble_area * look.skin[2] * (0.7 + 0.3 * grain))[:, None]
    q = p - HAIR_CENTRE_CM
    phi = np.arctan2(q[:, 0], q[:, 2])
    edge = n[:, 0] * c + n[:, 1] * s
    fine = _sample(noise, phi * 2.0 + look.offset[0], p[:, 1] * 0.15 + look.offset[1], 3, wrap=True) - 0.5
    rise = p[:, 1] - hairline_y(np.abs(phi), look.hair[0], look.hair[1]) + 0.8 * edge + 0.4 * fine
    out[skin, :3] = albedo
    out[skin, 3] = _smoothstep(-0.4, 0.4, rise)
    return out
