"""Front/rear head-pose fusion (DMHead's idea, made continuous), in numpy.

kaocap's face model is the front-range branch: the more accurate one while the face is in view
(``kaocap eval --task headpose``). The head model is the full-range branch, trained on every
yaw. Its own rotation says how much of the face is in view: the face axis's component along
the camera axis, ``R[2, 2]`` (cos of the angle between them). From ``FRONT_FULL_DEG`` inwards
the front branch gives the pose alone, from ``REAR_FULL_DEG`` outwards the full-range branch,
and in between their unit 6D vectors are mixed linearly, so the output passes from one branch
to the other without a jump. DMHead picks one branch by a hard mask; the hard mask is the
limit of this ramp when the two angles meet.

The same formula runs inside the fused ONNX graph (kaocap.export.headpose), which must match
this module within 1e-3.
"""

from __future__ import annotations

import math

import numpy as np
from numpy.typing import NDArray

#: Angle (deg) between the face axis and the camera axis up to which the front branch alone
#: gives the pose, and beyond which the full-range branch alone does (README "360° head pose").
FRONT_FULL_DEG = 70.0
REAR_FULL_DEG = 95.0
#: ``face_visible`` (the front weight) at or above this: the face counts as visible, and its
#: blendshapes and landmarks as measured.
VISIBLE_WEIGHT = 0.5


def unit_6d(rotation_6d: NDArray[np.floating]) -> NDArray[np.float32]:
    """(N, 6) with each 3-vector scaled to unit length (the two columns of a 6D rotation)."""
    x = np.asarray(rotation_6d, np.float32).reshape(-1, 2, 3)
    return (x / np.maximum(np.linalg.norm(x, axis=2, keepdims=True), 1e-12)).reshape(-1, 6)


def _facing_unit(u: NDArray[np.float32]) -> NDArray[np.float32]:
    return u[:, 0] * u[:, 4] - u[:, 1] * u[:, 3]  # (b1 x b2)_z = R[2, 2]


def _ramp(facing_cos: NDArray[np.float32]) -> NDArray[np.float32]:
    lo, hi = math.cos(math.radians(REAR_FULL_DEG)), math.cos(math.radians(FRONT_FULL_DEG))
    return np.clip((facing_cos - np.float32(lo)) / np.float32(hi - lo), 0.0, 1.0).astype(np.float32)


def facing(rotation_6d: NDArray[np.floating]) -> NDArray[np.float32]:
    """(N,) cos of the angle between the face axis and the camera axis, ``R[2, 2]``, from
    (N, 6) rotations (their unit columns' cross product)."""
    return _facing_unit(unit_6d(rotation_6d))


def front_weight(rotation_6d: NDArray[np.floating]) -> NDArray[np.float32]:
    """(N,) 0..1 share of the front branch, from the full-range branch's (N, 6) rotation."""
    return _ramp(facing(rotation_6d))


def fuse_rotations(front_6d: NDArray[np.floating], rear_6d: NDArray[np.floating]) -> tuple[NDArray[np.float32], NDArray[np.float32]]:
    """(fused (N, 6) rotation, front weight (N,)) from the two branches' (N, 6) rotations."""
    a, b = unit_6d(front_6d), unit_6d(rear_6d)
    w = _ramp(_facing_unit(b))
    return (b + w[:, None] * (a - b)).astype(np.float32), w
