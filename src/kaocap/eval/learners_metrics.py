"""Accuracy measures for blendshape + head-pose learners (numpy; used by training and eval).

>>> import numpy as np
>>> y = np.random.default_rng(0).random((50, 52))
>>> float(np.nanmean(pearson_per_shape(y, y)))
1.0
"""

from __future__ import annotations

import numpy as np
from numpy.typing import NDArray

from kaocap.constants import BLENDSHAPES
from kaocap.types import matrix_to_euler

#: Pearson r is NaN for a shape with fewer valid samples than this, or a constant side.
MIN_SAMPLES = 5


def pearson_per_shape(pred: NDArray, label: NDArray, valid: NDArray | None = None) -> NDArray[np.float64]:
    """(52,) Pearson correlation per shape over the samples where ``valid`` (N, 52) holds and both
    values are finite; NaN where undefined (too few samples, constant labels or predictions)."""
    p, y = np.asarray(pred, np.float64), np.asarray(label, np.float64)
    ok = np.isfinite(p) & np.isfinite(y)
    if valid is not None:
        ok &= np.asarray(valid, bool)
    n = ok.sum(axis=0)
    p, y = np.where(ok, p, 0.0), np.where(ok, y, 0.0)
    safe_n = np.maximum(n, 1)
    dp = np.where(ok, p - p.sum(axis=0) / safe_n, 0.0)
    dy = np.where(ok, y - y.sum(axis=0) / safe_n, 0.0)
    sp, sy = np.sqrt((dp**2).sum(axis=0)), np.sqrt((dy**2).sum(axis=0))
    defined = (n >= MIN_SAMPLES) & (sp > 1e-9 * np.sqrt(safe_n)) & (sy > 1e-9 * np.sqrt(safe_n))
    with np.errstate(invalid="ignore", divide="ignore"):
        r = (dp * dy).sum(axis=0) / (sp * sy)
    return np.where(defined, np.clip(r, -1.0, 1.0), np.nan)


def mean_corr(per_shape: NDArray) -> float:
    """Mean over the shapes where the correlation is defined (NaN if none)."""
    finite = np.asarray(per_shape)[np.isfinite(per_shape)]
    return float(finite.mean()) if len(finite) else float("nan")


def geodesic_deg(a: NDArray, b: NDArray) -> NDArray[np.float64]:
    """(N,) angle in degrees of the rotation between (N, 3, 3) ``a`` and ``b``."""
    rel = np.einsum("nji,njk->nik", np.asarray(a, np.float64), np.asarray(b, np.float64))
    cos = (np.trace(rel, axis1=1, axis2=2) - 1) / 2
    return np.degrees(np.arccos(np.clip(cos, -1.0, 1.0)))


def euler_errors_deg(pred: NDArray, label: NDArray) -> NDArray[np.float64]:
    """(N, 3) |difference| of (yaw, pitch, roll) in degrees (kaocap.types convention), wrapped
    to 0..180. Rows with a non-finite matrix come out NaN."""
    out = np.full((len(pred), 3), np.nan)
    for i, (p, y) in enumerate(zip(pred, label)):
        if np.isfinite(p).all() and np.isfinite(y).all():
            d = np.subtract(matrix_to_euler(p), matrix_to_euler(y))
            out[i] = np.abs((d + 180.0) % 360.0 - 180.0)
    return out


def rotation_mae_deg(pred: NDArray, label: NDArray) -> float:
    """Mean of the yaw, pitch and roll MAEs (the AFLW2000 convention), degrees."""
    err = euler_errors_deg(pred, label)
    return float(np.nanmean(err)) if np.isfinite(err).any() else float("nan")


#: A synthetic face counts as visible (its expression can be seen, so blendshape scores are
#: taken on it) within these |yaw| and |pitch| of the exact label, degrees.
VISIBLE_YAW_DEG, VISIBLE_PITCH_DEG = 60.0, 40.0


def yaw_pitch_deg(rotation: NDArray) -> NDArray[np.float64]:
    """(N, 2) yaw and pitch in degrees of (N, 3, 3) rotations (kaocap.types convention)."""
    return np.array([matrix_to_euler(r)[:2] for r in np.asarray(rotation, np.float64)]).reshape(-1, 2)


def face_visible(rotation: NDArray) -> NDArray[np.bool_]:
    """(N,) True where the head rotation shows the face (VISIBLE_YAW_DEG, VISIBLE_PITCH_DEG)."""
    yp = np.abs(yaw_pitch_deg(rotation))
    return (yp[:, 0] <= VISIBLE_YAW_DEG) & (yp[:, 1] <= VISIBLE_PITCH_DEG)


def lr_pairs() -> list[tuple[int, int]]:
    """Index pairs (left, right) of the mirrored ARKit shapes."""
    pairs = []
    for i, name in enumerate(BLENDSHAPES):
        if name.endswith("Left"):
            pairs.append((i, BLENDSHAPES.index(name[: -len("Left")] + "Right")))
    return pairs


def lr_asymmetry(per_shape: NDArray) -> tuple[float, str]:
    """Largest |r_left - r_right| over mirrored pairs, and the pair's stem name."""
    gaps = [(abs(per_shape[a] - per_shape[b]), BLENDSHAPES[a][:-4]) for a, b in lr_pairs()
            if np.isfinite(per_shape[a]) and np.isfinite(per_shape[b])]  # fmt: skip
    return max(gaps) if gaps else (float("nan"), "")
