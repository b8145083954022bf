"""Geometric features of the 478-point face mesh, in numpy (training and runtime share them).

The mesh is first expressed in a *local face frame* built from rigid points (eye corners, nose
bridge and base): origin midway between the outer eye corners, ``x`` towards the subject's left
(image right on a frontal face), ``y`` up, ``z`` out of the face (MediaPipe's canonical-face
axes), unit length = the outer inter-ocular distance (IOD). In that frame the features are

* distance ratios: distances between landmark pairs / IOD (eye and mouth openings, brow heights),
* offsets: the (x, y, z) position of a landmark relative to a reference landmark / IOD (iris in
  the eye, mouth corners around the lip centre, chin under the nose),
* angles (rad) of landmark vectors: in-plane ``atan2(dy, dx)`` and out-of-plane elevation
  ``atan2(dz, |dxy|)`` (mouth-corner tilt, brow slant, lip protrusion),
* pose: the 9 entries of the frame's axes in the input's coordinates (the head rotation as the
  crop sees it; the only features that depend on the input's orientation).

Every feature is invariant to translating and uniformly scaling the input landmarks, so image
px, crop px and crop-normalised (0..1) landmarks give the same features.

>>> import numpy as np
>>> from kaocap.blendshapes.features import geometric_features, FEATURE_NAMES
>>> mesh = np.random.default_rng(0).random((2, 478, 3), dtype=np.float32)  # any (N, 478, 3)
>>> geometric_features(mesh).shape == (2, len(FEATURE_NAMES))
True
"""

from __future__ import annotations

import numpy as np
from numpy.typing import NDArray

from kaocap.constants import NUM_LANDMARKS
from kaocap.types import Roi

# Rigid points of the local face frame (MediaPipe 478 topology; R = the subject's right).
_EYE_OUTER_R, _EYE_OUTER_L, _NOSE_BRIDGE, _NOSE_BASE = 33, 263, 168, 2

#: (name, a, b): distance |a - b| / IOD.
DISTANCES: tuple[tuple[str, int, int], ...] = (
    ("eyeR_open_outer", 160, 144), ("eyeR_open_mid", 159, 145), ("eyeR_open_inner", 158, 153),
    ("eyeL_open_outer", 387, 373), ("eyeL_open_mid", 386, 374), ("eyeL_open_inner", 385, 380),
    ("eyeR_width", 33, 133), ("eyeL_width", 263, 362),
    ("irisR_upper_lid", 468, 159), ("irisR_lower_lid", 468, 145),
    ("irisL_upper_lid", 473, 386), ("irisL_lower_lid", 473, 374),
    ("browR_outer_eye", 46, 33), ("browR_mid_eye", 105, 159), ("browR_inner_eye", 107, 133),
    ("browR_lower_outer", 70, 33), ("browR_lower_mid", 52, 159), ("browR_lower_inner", 55, 133),
    ("browL_outer_eye", 276, 263), ("browL_mid_eye", 334, 386), ("browL_inner_eye", 336, 362),
    ("browL_lower_outer", 300, 263), ("browL_lower_mid", 282, 386), ("browL_lower_inner", 285, 362),
    ("brow_inner_gap", 107, 336), ("brow_lower_inner_gap", 55, 285),
    ("nostril_width", 98, 327), ("noseR_wing_eye", 129, 133), ("noseL_wing_eye", 358, 362),
    ("noseR_wing_brow", 129, 55), ("noseL_wing_brow", 358, 285),
    ("mouth_open_inner", 13, 14), ("mouth_open_outer", 0, 17), ("mouth_width", 61, 291),
    ("mouth_width_inner", 78, 308), ("lip_upper_thickness", 0, 13), ("lip_lower_thickness", 14, 17),
    ("mouthR_open", 82, 87), ("mouthL_open", 312, 317), ("lipR_upper_nose", 37, 98),
    ("lipL_upper_nose", 267, 327), ("lip_upper_nose", 0, 2), ("lipR_lower_chin", 84, 152),
    ("lipL_lower_chin", 314, 152), ("lip_lower_chin", 17, 152), ("cornerR_eye", 61, 33),
    ("cornerL_eye", 291, 263), ("cornerR_chin", 61, 152), ("cornerL_chin", 291, 152),
    ("cornerR_nose", 61, 98), ("cornerL_nose", 291, 327), ("nose_chin", 2, 152),
    ("cheek_gap", 50, 280), ("cheek_gap_low", 205, 425), ("face_width", 234, 454),
    ("cheekR_lower_lid", 50, 145), ("cheekL_lower_lid", 280, 374), ("jaw_width", 172, 397),
)  # fmt: skip

#: (name, point, reference): the point's (x, y, z) relative to the reference / IOD.
OFFSETS: tuple[tuple[str, int, int], ...] = (
    ("irisR_in_eye", 468, 133), ("irisL_in_eye", 473, 362), ("irisR_to_outer", 468, 33),
    ("irisL_to_outer", 473, 263), ("cornerR_lipc", 61, 13), ("cornerL_lipc", 291, 13),
    ("cornerR_lowerc", 61, 14), ("cornerL_lowerc", 291, 14), ("lipc_nose", 13, 2),
    ("lip_upper_nose", 0, 2), ("lip_lower_nose", 17, 2), ("chin_nose", 152, 2),
    ("browR_mid", 105, 168), ("browL_mid", 334, 168), ("browR_inner", 107, 168),
    ("browL_inner", 336, 168), ("cheekR_nose", 50, 1), ("cheekL_nose", 280, 1),
    ("lower_lip_upper_lip", 14, 13), ("noseR_wing", 129, 1), ("noseL_wing", 358, 1),
)  # fmt: skip

#: (name, a, b): angles of the vector a -> b: in-plane atan2(dy, dx) and elevation.
ANGLES: tuple[tuple[str, int, int], ...] = (
    ("lipc_cornerR", 13, 61), ("lipc_cornerL", 13, 291), ("lowerc_cornerR", 14, 61),
    ("lowerc_cornerL", 14, 291), ("mouth_axis", 61, 291), ("browR_slant", 55, 46),
    ("browL_slant", 285, 276), ("browR_upper_slant", 107, 105), ("browL_upper_slant", 336, 334),
    ("eyeR_axis", 133, 33), ("eyeL_axis", 362, 263), ("jaw_axis", 2, 152),
    ("cornerR_upper", 61, 0), ("cornerL_upper", 291, 0), ("cornerR_lower", 61, 17),
    ("cornerL_lower", 291, 17), ("nose_lipc", 2, 13),
)  # fmt: skip

POSE_NAMES: tuple[str, ...] = tuple(f"axis_{a}_{c}" for a in "xyz" for c in "xyz")

#: Names of the columns :func:`geometric_features` returns, in order.
FEATURE_NAMES: tuple[str, ...] = (
    tuple(n for n, _, _ in DISTANCES)
    + tuple(f"{n}_{c}" for n, _, _ in OFFSETS for c in "xyz")
    + tuple(f"{n}_{k}" for n, _, _ in ANGLES for k in ("angle", "elevation"))
    + POSE_NAMES
)
NUM_FEATURES = len(FEATURE_NAMES)
NUM_POSE_FEATURES = len(POSE_NAMES)


def _check_mesh(mesh: NDArray) -> NDArray[np.float64]:
    m = np.asarray(mesh, dtype=np.float64)
    if m.ndim == 2:
        m = m[None]
    if m.ndim != 3 or m.shape[1:] != (NUM_LANDMARKS, 3):
        raise ValueError(f"mesh must be (N, {NUM_LANDMARKS}, 3), got {np.shape(mesh)}")
    return m


def _unit(v: NDArray[np.float64]) -> NDArray[np.float64]:
    return v / np.maximum(np.linalg.norm(v, axis=-1, keepdims=True), 1e-12)


def face_frame(mesh: NDArray[np.floating]) -> tuple[NDArray, NDArray, NDArray]:
    """The local face frame of (N, 478, 3) landmarks in image-like coordinates (x right, y down,
    z away from the camera, as MediaPipe's landmarks; any px or normalised unit).

    Returns ``origin`` (N, 3) in the input's unit, ``axes`` (N, 3, 3) whose rows are the frame's
    x (subject's left), y (up) and z (out of the face) unit vectors in input coordinates, and
    ``iod`` (N,) the outer inter-ocular distance in the input's unit.
    """
    m = _check_mesh(mesh)
    right, left = m[:, _EYE_OUTER_R], m[:, _EYE_OUTER_L]
    x = _unit(left - right)
    up = m[:, _NOSE_BRIDGE] - m[:, _NOSE_BASE]
    y = _unit(up - np.sum(up * x, axis=-1, keepdims=True) * x)
    z = np.cross(x, y)
    return (left + right) / 2, np.stack([x, y, z], axis=1), np.linalg.norm(left - right, axis=-1)


def to_face_frame(mesh: NDArray[np.floating]) -> NDArray[np.float64]:
    """(N, 478, 3) landmarks -> (N, 478, 3) in the local face frame, unit = IOD."""
    m = _check_mesh(mesh)
    origin, axes, iod = face_frame(m)
    return np.einsum("npc,nkc->npk", m - origin[:, None], axes) / iod[:, None, None]


def geometric_features(mesh: NDArray[np.floating]) -> NDArray[np.float32]:
    """(N, 478, 3) or (478, 3) landmarks -> (N, NUM_FEATURES) float32, columns FEATURE_NAMES.

    Distances and offsets are in IOD units, angles in radians, pose entries unitless. Rows whose
    landmarks hold NaN come out NaN.
    """
    m = _check_mesh(mesh)
    q = to_face_frame(m)
    _, axes, _ = face_frame(m)
    a, b = (np.array(c) for c in zip(*[(i, j) for _, i, j in DISTANCES]))
    dist = np.linalg.norm(q[:, a] - q[:, b], axis=-1)
    p, r = (np.array(c) for c in zip(*[(i, j) for _, i, j in OFFSETS]))
    offs = (q[:, p] - q[:, r]).reshape(len(q), -1)
    s, e = (np.array(c) for c in zip(*[(i, j) for _, i, j in ANGLES]))
    v = q[:, e] - q[:, s]
    angle = np.arctan2(v[..., 1], v[..., 0])
    elevation = np.arctan2(v[..., 2], np.linalg.norm(v[..., :2], axis=-1))
    angles = np.stack([angle, elevation], axis=-1).reshape(len(q), -1)
    pose = axes.reshape(len(q), -1)
    return np.concatenate([dist, offs, angles, pose], axis=1).astype(np.float32)


def normalise_mesh(mesh: NDArray[np.floating]) -> NDArray[np.float32]:
    """(N, 478, 3) landmarks -> (N, 478, 3) float32 centred on their mean and divided by their
    RMS distance from it (translation and scale removed, orientation kept)."""
    m = _check_mesh(mesh)
    centred = m - m.mean(axis=1, keepdims=True)
    rms = np.sqrt(np.mean(np.sum(centred**2, axis=-1), axis=1))
    return (centred / np.maximum(rms, 1e-12)[:, None, None]).astype(np.float32)


def landmarks_to_crop(landmarks_px: NDArray[np.floating], roi: Roi) -> NDArray[np.float32]:
    """(478, 3) image-px landmarks -> (478, 3) coordinates of the ROI's upright crop, 0..1 across
    the crop (x right, y down), z divided by the ROI width (the shards' landmarks / crop size)."""
    lm = np.asarray(landmarks_px, dtype=np.float64)
    affine = roi.crop_matrix(1)
    out = np.empty(lm.shape, np.float32)
    out[:, :2] = lm[:, :2] @ affine[:, :2].T + affine[:, 2]
    out[:, 2] = lm[:, 2] / float(roi.size_wh[0])
    return out


def rotation_z(angle_rad: float | NDArray[np.floating]) -> NDArray[np.float64]:
    """(3, 3) or (N, 3, 3) right-handed rotation about the camera z axis (towards the viewer)."""
    t = np.asarray(angle_rad, dtype=np.float64)
    c, s = np.cos(t), np.sin(t)
    out = np.zeros((*t.shape, 3, 3))
    out[..., 0, 0], out[..., 0, 1], out[..., 1, 0], out[..., 1, 1], out[..., 2, 2] = c, -s, s, c, 1.0
    return out


def camera_to_crop_rotation(rotation: NDArray[np.floating], roi_rotation_rad: float | NDArray) -> NDArray[np.float64]:
    """Head rotation(s) (3, 3) / (N, 3, 3) in the camera frame -> as seen in the ROI's upright crop.

    The crop undoes the ROI's clockwise rotation ``roi_rotation_rad``, i.e. rotates the scene by
    +angle about the camera z axis: ``R_crop = Rz(angle) @ R_camera`` (kaocap.types frames).
    """
    return rotation_z(roi_rotation_rad) @ np.asarray(rotation, dtype=np.float64)


def crop_to_camera_rotation(rotation_crop: NDArray[np.floating], roi_rotation_rad: float | NDArray) -> NDArray[np.float64]:
    """Inverse of :func:`camera_to_crop_rotation`: ``R_camera = Rz(-angle) @ R_crop``."""
    return rotation_z(-np.asarray(roi_rotation_rad, dtype=np.float64)) @ np.asarray(rotation_crop, dtype=np.float64)
