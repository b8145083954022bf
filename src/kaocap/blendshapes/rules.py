"""Rule-based geometric solver: the zero-training baseline (MeFaMo / KalidoKit spirit).

Each ARKit shape reads one hand-picked geometric cue (a distance ratio, an offset or an angle
from :mod:`kaocap.blendshapes.features`, averaged over the listed names) and maps it linearly to
0..1 between two per-shape values ``lo`` (-> 0) and ``hi`` (-> 1). Only those two numbers per
shape are fitted on labelled data (a least-squares line of label on cue, keeping the declared
direction); nothing else is learnt. tongueOut has no geometric cue and is not produced.

Head rotation is the local face frame (:func:`~kaocap.blendshapes.features.face_frame`) turned
into the camera convention, times one constant rotation fitted on the data; translation is the
training mean.

>>> solver = RuleSolver().fit(features, blendshapes, valid, rotation_crop)   # doctest: +SKIP
>>> out = solver.predict(mesh)            # (N, 478, 3) crop-normalised      # doctest: +SKIP
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

from kaocap.blendshapes.features import FEATURE_NAMES, face_frame, geometric_features
from kaocap.blendshapes.learned import LearnerOutput
from kaocap.constants import BLENDSHAPES

#: shape -> (cue feature names averaged, direction: +1 larger cue = more shape, -1 smaller).
RULES: dict[str, tuple[tuple[str, ...], int]] = {
    "eyeBlinkLeft": (("eyeL_open_mid", "eyeL_open_outer", "eyeL_open_inner"), -1),
    "eyeLookDownLeft": (("irisL_in_eye_y",), -1), "eyeLookInLeft": (("irisL_in_eye_x",), -1),
    "eyeLookOutLeft": (("irisL_in_eye_x",), 1), "eyeLookUpLeft": (("irisL_in_eye_y",), 1),
    "eyeSquintLeft": (("cheekL_lower_lid",), -1), "eyeWideLeft": (("eyeL_open_mid",), 1),
    "eyeBlinkRight": (("eyeR_open_mid", "eyeR_open_outer", "eyeR_open_inner"), -1),
    "eyeLookDownRight": (("irisR_in_eye_y",), -1), "eyeLookInRight": (("irisR_in_eye_x",), 1),
    "eyeLookOutRight": (("irisR_in_eye_x",), -1), "eyeLookUpRight": (("irisR_in_eye_y",), 1),
    "eyeSquintRight": (("cheekR_lower_lid",), -1), "eyeWideRight": (("eyeR_open_mid",), 1),
    "jawForward": (("chin_nose_z",), 1), "jawRight": (("chin_nose_x",), -1),
    "jawLeft": (("chin_nose_x",), 1), "jawOpen": (("nose_chin",), 1),
    "mouthClose": (("mouth_open_inner",), -1), "mouthFunnel": (("lip_upper_nose_z",), 1),
    "mouthPucker": (("mouth_width",), -1), "mouthRight": (("lipc_nose_x",), -1),
    "mouthLeft": (("lipc_nose_x",), 1), "mouthSmileLeft": (("cornerL_lipc_y",), 1),
    "mouthSmileRight": (("cornerR_lipc_y",), 1), "mouthFrownLeft": (("cornerL_lipc_y",), -1),
    "mouthFrownRight": (("cornerR_lipc_y",), -1), "mouthDimpleLeft": (("cornerL_lipc_z",), -1),
    "mouthDimpleRight": (("cornerR_lipc_z",), -1), "mouthStretchLeft": (("cornerL_lipc_x",), 1),
    "mouthStretchRight": (("cornerR_lipc_x",), -1), "mouthRollLower": (("lip_lower_thickness",), -1),
    "mouthRollUpper": (("lip_upper_thickness",), -1), "mouthShrugLower": (("lip_lower_chin",), -1),
    "mouthShrugUpper": (("lip_upper_nose",), -1), "mouthPressLeft": (("mouthL_open",), -1),
    "mouthPressRight": (("mouthR_open",), -1), "mouthLowerDownLeft": (("lipL_lower_chin",), -1),
    "mouthLowerDownRight": (("lipR_lower_chin",), -1), "mouthUpperUpLeft": (("lipL_upper_nose",), -1),
    "mouthUpperUpRight": (("lipR_upper_nose",), -1), "browDownLeft": (("browL_inner_eye",), -1),
    "browDownRight": (("browR_inner_eye",), -1), "browInnerUp": (("browR_inner_eye", "browL_inner_eye"), 1),
    "browOuterUpLeft": (("browL_outer_eye",), 1), "browOuterUpRight": (("browR_outer_eye",), 1),
    "cheekPuff": (("cheek_gap",), 1), "cheekSquintLeft": (("cheekL_lower_lid",), -1),
    "cheekSquintRight": (("cheekR_lower_lid",), -1), "noseSneerLeft": (("noseL_wing_eye",), -1),
    "noseSneerRight": (("noseR_wing_eye",), -1),
}  # fmt: skip
#: Crop coordinates (x right, y down, z away) -> camera frame (x right, y up, z to the viewer).
_CROP_TO_CAMERA = np.diag([1.0, -1.0, -1.0])
_INDEX = {n: i for i, n in enumerate(FEATURE_NAMES)}


def cues(features: NDArray[np.floating]) -> NDArray[np.float64]:
    """(N, F) geometric features -> (N, 52) rule cues (NaN for shapes without a rule)."""
    f = np.asarray(features, dtype=np.float64)
    out = np.full((len(f), len(BLENDSHAPES)), np.nan)
    for j, name in enumerate(BLENDSHAPES):
        if name in RULES:
            out[:, j] = f[:, [_INDEX[c] for c in RULES[name][0]]].mean(axis=1)
    return out


def frame_rotation(mesh: NDArray[np.floating]) -> NDArray[np.float64]:
    """(N, 478, 3) crop landmarks -> (N, 3, 3) rotation of the local face frame, camera axes."""
    _, axes, _ = face_frame(mesh)
    return _CROP_TO_CAMERA @ np.transpose(axes, (0, 2, 1))


class RuleSolver:
    """lo, hi: (52,) cue values mapped to 0 and 1 (NaN: shape not produced). offset: (3, 3)."""

    def __init__(self) -> None:
        direction = np.array([RULES[n][1] if n in RULES else np.nan for n in BLENDSHAPES])
        self.lo = np.where(np.isnan(direction), np.nan, 0.0)
        self.hi = direction.copy()  # unfitted: cue 0 -> 0, cue +-1 -> 1
        self.offset = np.eye(3)
        self.translation_cm = np.array([0.0, 0.0, -50.0])

    @property
    def valid(self) -> NDArray[np.bool_]:
        """(52,) True where the solver produces the shape."""
        return ~np.isnan(self.lo)

    def fit(self, features: NDArray, blendshapes: NDArray, valid: NDArray, rotation_crop: NDArray,
            mesh: NDArray, translation_cm: NDArray | None = None) -> RuleSolver:  # fmt: skip
        """Fit lo/hi per shape, the rotation offset and the mean translation on N samples:
        features (N, F), blendshapes (N, 52) 0..1, valid (N, 52) bool, rotation_crop (N, 3, 3),
        mesh (N, 478, 3) crop landmarks, translation_cm (N, 3)."""
        c = cues(features)
        for j, name in enumerate(BLENDSHAPES):
            if name not in RULES:
                continue
            self.lo[j], self.hi[j] = _fit_range(c[:, j], blendshapes[:, j], valid[:, j], RULES[name][1])
        geo = frame_rotation(mesh)
        u, _, vt = np.linalg.svd(np.einsum("nji,njk->ik", geo, rotation_crop))  # sum geo^T label
        d = np.sign(np.linalg.det(u @ vt))
        self.offset = u @ np.diag([1.0, 1.0, d]) @ vt
        if translation_cm is not None and len(translation_cm):
            self.translation_cm = np.nanmean(np.asarray(translation_cm, np.float64), axis=0)
        return self

    def predict(self, mesh: NDArray[np.floating]) -> LearnerOutput:
        """(N, 478, 3) crop-normalised landmarks -> LearnerOutput (tongueOut 0)."""
        c = cues(geometric_features(mesh))
        value = np.clip((c - self.lo) / (self.hi - self.lo), 0.0, 1.0)
        value = np.where(self.valid, value, 0.0).astype(np.float32)
        rotation = frame_rotation(mesh) @ self.offset
        translation = np.tile(self.translation_cm.astype(np.float32), (len(value), 1))
        return LearnerOutput(value, rotation, translation)

    def to_dict(self) -> dict[str, Any]:
        none = lambda a: [None if np.isnan(v) else float(v) for v in a]
        return {"lo": none(self.lo), "hi": none(self.hi), "offset": self.offset.tolist(),
                "translation_cm": self.translation_cm.tolist()}  # fmt: skip

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> RuleSolver:
        solver = cls()
        solver.lo = np.array([np.nan if v is None else v for v in data["lo"]], np.float64)
        solver.hi = np.array([np.nan if v is None else v for v in data["hi"]], np.float64)
        solver.offset = np.asarray(data["offset"], np.float64)
        solver.translation_cm = np.asarray(data["translation_cm"], np.float64)
        return solver

    def save(self, path: Path) -> None:
        Path(path).write_text(json.dumps(self.to_dict(), indent=1))

    @classmethod
    def load(cls, path: Path) -> RuleSolver:
        return cls.from_dict(json.loads(Path(path).read_text()))


def _fit_range(cue: NDArray, label: NDArray, valid: NDArray, direction: int) -> tuple[float, float]:
    """lo/hi of one shape: least-squares line label ~ a * cue + b, a forced to ``direction``'s
    sign; without usable labels (constant or wrong-signed) the cue's 5th..95th percentiles."""
    ok = valid & np.isfinite(cue) & np.isfinite(label)
    x, y = cue[ok], label[ok]
    if len(x) >= 2 and np.std(x) > 1e-9 and np.std(y) > 1e-6:
        a, b = np.polyfit(x, y, 1)
        if np.sign(a) == direction and abs(a) > 1e-9:
            return float(-b / a), float((1.0 - b) / a)
    finite = cue[np.isfinite(cue)]
    if len(finite) < 2:
        return 0.0, float(direction)
    p5, p95 = np.percentile(finite, [5, 95])
    p95 = p95 if p95 > p5 else p5 + 1e-3
    return (float(p5), float(p95)) if direction > 0 else (float(p95), float(p5))
