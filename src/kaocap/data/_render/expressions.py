"""Expressions: sampling the 52 ARKit coefficients and turning them into ICT shape weights.

ICT-FaceKit's 57 shapes -> kaocap.BLENDSHAPES (ARKit):

==========================  ===============================================================
ICT shape(s)                ARKit label
==========================  ===============================================================
``<name>_L`` / ``_R``       ``<name>Left`` / ``<name>Right`` (ICT's L/R is the subject's, as
                            ARKit's), e.g. eyeBlink_L -> eyeBlinkLeft; 44 shapes
jawOpen, jawForward, ...    the same name (jawOpen, jawForward, jawLeft, jawRight, mouthClose,
                            mouthFunnel, mouthPucker, mouthLeft, mouthRight, mouthRollLower,
                            mouthRollUpper, mouthShrugLower, mouthShrugUpper); 13 shapes
browInnerUp_L + _R          browInnerUp = mean of the two halves. Rendered symmetric, or (30%)
                            split as v +- d with the mean kept exactly at the label v
cheekPuff_L + _R            cheekPuff = mean of the two halves (as browInnerUp)
cheekRaiser_L / _R          none: ARKit has no such shape (AU6 is in cheekSquint); kept at 0
PupilDilate_L / _R          none: kept at 0 (the pupil size is a shader parameter instead)
(no ICT shape)              tongueOut: the tongue geometry pushed out (:mod:`.ict`), jawOpen
                            raised to at least 0.25 + 0.35 * tongueOut so that it shows
(no eyeball motion in ICT)  eyeLook*: ICT moves the lids; the eyeballs are also rotated by
                            the Live Link Face gains (:func:`kaocap.stream.csv_livelink.
                            eye_angles_rad`)
==========================  ===============================================================

Sampling (:func:`sample_expression`) mixes four modes so that every shape, its extremes and
its one-sided forms are covered, next to realistic co-activations: a near-neutral face; a frame
of a real iPhone ARKit take (mirrored half the time, rescaled); such a frame weakened plus 1-3
random shapes; or 1-4 random shapes alone (winks, one-sided smiles, jaw left/right, cheekPuff,
tongueOut ...), half of them at 0.6..1. Gaze is drawn as a direction shared by both eyes (70%).
Then physical exclusions are applied (jawLeft vs jawRight, mouthLeft vs mouthRight, look
up vs down and in vs out per eye: the smaller is zeroed; no eyeWide on a closed eye; jawOpen
raised to at least mouthClose, as ARKit's mouthClose only exists with an open jaw).
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache
from pathlib import Path

import numpy as np
from numpy.typing import NDArray

from kaocap.constants import BLENDSHAPE_INDEX, BLENDSHAPE_MIRROR, BLENDSHAPES
from kaocap.stream.csv_livelink import eye_angles_rad, read_livelink_csv

#: The real iPhone take under ../shared/data used for co-activations.
DEFAULT_PRIOR_PATH = Path(
    "../shared/data/expression_priors/jmtechart/Blender/Blender Example Files/MySlate_3_Jason_Millers_iPhone.csv"
)
#: ICT shapes with no ARKit label.
_UNLABELLED = ("cheekRaiser_L", "cheekRaiser_R", "PupilDilate_L", "PupilDilate_R")
_SPLIT = {"browInnerUp_L": "browInnerUp", "browInnerUp_R": "browInnerUp",
          "cheekPuff_L": "cheekPuff", "cheekPuff_R": "cheekPuff"}  # fmt: skip
#: Mode probabilities: neutral, real frame, real frame + random shapes, random shapes.
MODE_P = (0.1, 0.3, 0.35, 0.25)
P_GAZE, P_TONGUE, P_ASYMMETRIC_SPLIT = 0.7, 0.06, 0.3
_EXCLUSIVE = [("jawLeft", "jawRight"), ("mouthLeft", "mouthRight")] + [
    pair for side in ("Left", "Right")
    for pair in ((f"eyeLookUp{side}", f"eyeLookDown{side}"), (f"eyeLookIn{side}", f"eyeLookOut{side}"))
]  # fmt: skip
_COVERABLE = tuple(n for n in BLENDSHAPES if not n.startswith("eyeLook"))
_I = BLENDSHAPE_INDEX


def arkit_name(ict_name: str) -> str | None:
    """The ARKit name an ICT shape is labelled as (None: unlabelled), module table."""
    if ict_name in _UNLABELLED:
        return None
    if ict_name in _SPLIT:
        return _SPLIT[ict_name]
    for suffix, side in (("_L", "Left"), ("_R", "Right")):
        if ict_name.endswith(suffix):
            return ict_name[: -len(suffix)] + side
    return ict_name


def label_matrix(ict_names: tuple[str, ...]) -> NDArray[np.float32]:
    """(52, 57) float32: ARKit label = matrix @ ICT weights (split halves averaged);
    tongueOut's row is 0 (it has no ICT shape)."""
    out = np.zeros((len(BLENDSHAPES), len(ict_names)), np.float32)
    for j, name in enumerate(ict_names):
        target = arkit_name(name)
        if target is not None:
            out[_I[target], j] = 0.5 if name in _SPLIT else 1.0
    if not np.all(out.sum(axis=1)[[i for n, i in _I.items() if n != "tongueOut"]] == 1.0):
        raise ValueError("the ICT shapes do not cover the 51 ARKit shapes once each")
    return out


@dataclass(frozen=True)
class Expression:
    """One face's expression. arkit: (52,) float32 label 0..1 (kaocap.BLENDSHAPES order);
    ict_weights: (57,) float32 ICT shape weights; tongue_out: 0..1; eye_angles_rad: (2, 2)
    (left, right) x (yaw, pitch), Live Link Face signs."""

    arkit: NDArray[np.float32]
    ict_weights: NDArray[np.float32]
    tongue_out: float
    eye_angles_rad: NDArray[np.float32]


@cache
def load_prior(path: str | Path = DEFAULT_PRIOR_PATH) -> NDArray[np.float32]:
    """(T, 52) float32 ARKit frames of a Live Link Face CSV (kaocap.BLENDSHAPES order)."""
    _, values, _ = read_livelink_csv(path)
    return np.ascontiguousarray(values[:, : len(BLENDSHAPES)])


def _cover(w: NDArray[np.float64], rng: np.random.Generator, count: int) -> None:
    """Set ``count`` random shapes (not eyeLook: gaze covers those) to random values."""
    for name in rng.choice(_COVERABLE, size=count, replace=False):
        r = rng.random()
        w[_I[name]] = 1.0 if r < 0.1 else (rng.uniform(0.6, 1.0) if r < 0.5 else rng.uniform(0.05, 1.0))


def _gaze(w: NDArray[np.float64], rng: np.random.Generator) -> None:
    """Both eyes look the same way: (yaw, pitch) in -1..1 shape units, small vergence noise."""
    yaw, pitch = rng.uniform(-1, 1), rng.uniform(-1, 1)
    for side, out_sign in (("Left", 1.0), ("Right", -1.0)):
        names = (f"eyeLookOut{side}", f"eyeLookIn{side}", f"eyeLookDown{side}", f"eyeLookUp{side}")
        for name in names:
            w[_I[name]] = 0.0
        lateral = yaw * out_sign + rng.normal(0, 0.03)
        w[_I[names[0] if lateral > 0 else names[1]]] = abs(lateral)
        w[_I[names[2] if pitch > 0 else names[3]]] = abs(pitch + rng.normal(0, 0.02))


def constrain(w: NDArray[np.float64]) -> None:
    """Apply the physical exclusions of the module docstring to (52,) coefficients, in place."""
    for a, b in _EXCLUSIVE:
        w[_I[a] if w[_I[a]] < w[_I[b]] else _I[b]] = 0.0
    for side in ("Left", "Right"):
        if w[_I[f"eyeBlink{side}"]] > 0.5:
            w[_I[f"eyeWide{side}"]] = 0.0
    tongue = w[_I["tongueOut"]]
    if tongue > 0:
        w[_I["jawOpen"]] = max(w[_I["jawOpen"]], 0.25 + 0.35 * tongue)
        w[_I["mouthClose"]] = 0.0
    w[_I["jawOpen"]] = max(w[_I["jawOpen"]], w[_I["mouthClose"]])
    np.clip(w, 0.0, 1.0, out=w)


def sample_arkit(rng: np.random.Generator, prior: NDArray[np.float32] | None) -> NDArray[np.float64]:
    """(52,) float64 ARKit coefficients 0..1 (module docstring)."""
    mode = rng.choice(len(MODE_P), p=MODE_P) if prior is not None and len(prior) else 3
    w = np.zeros(len(BLENDSHAPES))
    if mode == 0:
        w = rng.uniform(0, 0.08, len(w)) * (rng.random(len(w)) < 0.3)
        w[_I["tongueOut"]] = 0.0
    elif mode in (1, 2):
        frame = prior[rng.integers(len(prior))].astype(np.float64)  # type: ignore[index]
        if rng.random() < 0.5:
            frame = frame[list(BLENDSHAPE_MIRROR)]
        w = frame * (rng.uniform(0.7, 1.3) if mode == 1 else rng.uniform(0.2, 0.9))
        w = w + rng.normal(0, 0.02, len(w)) * (w > 0)
    if mode >= 2:
        _cover(w, rng, int(rng.integers(1, 4 if mode == 2 else 5)))
    if rng.random() < P_GAZE:
        _gaze(w, rng)
    if rng.random() < P_TONGUE:
        w[_I["tongueOut"]] = rng.uniform(0.2, 1.0)
    constrain(w)
    return w


def to_expression(arkit: NDArray[np.floating], ict_names: tuple[str, ...], rng: np.random.Generator) -> Expression:
    """ICT weights for ARKit coefficients (split shapes made asymmetric with probability
    P_ASYMMETRIC_SPLIT, mean kept); the returned label is recomputed from those weights."""
    weights = np.zeros(len(ict_names), np.float64)
    for j, name in enumerate(ict_names):
        target = arkit_name(name)
        if target is not None:
            weights[j] = arkit[_I[target]]
    for left, right in (("browInnerUp_L", "browInnerUp_R"), ("cheekPuff_L", "cheekPuff_R")):
        jl, jr = ict_names.index(left), ict_names.index(right)
        v = weights[jl]
        if rng.random() < P_ASYMMETRIC_SPLIT:
            d = rng.uniform(-1, 1) * 0.7 * min(v, 1 - v)
            weights[jl], weights[jr] = v + d, v - d
    weights32 = weights.astype(np.float32)
    label = label_matrix(ict_names) @ weights32
    label[_I["tongueOut"]] = np.float32(arkit[_I["tongueOut"]])
    angles = eye_angles_rad(label).reshape(2, 3)[:, :2]
    return Expression(label.astype(np.float32), weights32, float(label[_I["tongueOut"]]), angles.astype(np.float32))


def sample_expression(rng: np.random.Generator, ict_names: tuple[str, ...],
                      prior: NDArray[np.float32] | None) -> Expression:  # fmt: skip
    """A random expression (module docstring); ``prior``: (T, 52) real ARKit frames or None."""
    return to_expression(sample_arkit(rng, prior), ict_names, rng)
