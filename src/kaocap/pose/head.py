"""Head crops that stay upright at every yaw, and the ROI arithmetic of the head learner.

The face pipeline levels its crop on the eye line (MediaPipe's ROI, kaocap.landmarks.process).
That line degenerates once the face turns away: at a profile the two eye corners meet, behind
the head they swap sides, and the crop spins by up to 180 degrees from one frame to the next.
A *head ROI* is levelled on the head's own up axis instead, which the head rotation gives at
any yaw (pitch within +-70 deg), and is sized on the box of the 478 face points seen in that
upright frame (their projections exist whether or not the face is visible), scaled like
MediaPipe's ROI. For a frontal face the two ROIs agree to a few degrees and percent.

A head learner's ``roi`` output (kaocap.train.nets.ROI_FIELDS) is the head ROI as the crop it
read sees it: centre offset (x, y) in crop sides, log of its side over the crop's, and its
rotation minus the crop's. :func:`apply_roi` turns it into the next frame's image ROI.
"""

from __future__ import annotations

import math

import numpy as np
from numpy.typing import NDArray

from kaocap.landmarks.process import ROI_SCALE
from kaocap.types import Roi


def up_angle(rotation_crop: NDArray[np.floating]) -> NDArray[np.float64]:
    """(N,) rad: the in-plane rotation (clockwise as the viewer sees it, like Roi.rotation_rad)
    that brings the head's up axis upright, from (N, 3, 3) head rotations as the crop sees them."""
    r = np.asarray(rotation_crop, np.float64).reshape(-1, 3, 3)
    return np.arctan2(r[:, 0, 1], r[:, 1, 1])


def wrap(angle: NDArray[np.floating] | float) -> NDArray[np.float64]:
    """Angles wrapped to [-pi, pi)."""
    return (np.asarray(angle, np.float64) + math.pi) % (2 * math.pi) - math.pi


def head_rois(landmarks: NDArray[np.floating], rotation_crop: NDArray[np.floating]) -> NDArray[np.float64]:
    """(N, 4) head ROIs (centre x, y, side, rotation rad) in the units of ``landmarks``
    ((N, 478, 2+), NaN points ignored), from the head rotations (N, 3, 3) in the same frame."""
    xy = np.asarray(landmarks, np.float64)[:, :, :2]
    theta = up_angle(rotation_crop)
    c, s = np.cos(theta)[:, None], np.sin(theta)[:, None]
    # Into the upright head frame: rotate by -theta (image y down, clockwise positive).
    u, v = c * xy[..., 0] + s * xy[..., 1], -s * xy[..., 0] + c * xy[..., 1]
    lo_u, hi_u, lo_v, hi_v = np.nanmin(u, 1), np.nanmax(u, 1), np.nanmin(v, 1), np.nanmax(v, 1)
    mu, mv = (lo_u + hi_u) / 2, (lo_v + hi_v) / 2
    side = np.maximum(hi_u - lo_u, hi_v - lo_v) * ROI_SCALE
    centre_x, centre_y = c[:, 0] * mu - s[:, 0] * mv, s[:, 0] * mu + c[:, 0] * mv
    return np.stack([centre_x, centre_y, side, theta], axis=1)


def relative_roi(target: NDArray[np.floating], crop: NDArray[np.floating]) -> NDArray[np.float32]:
    """(N, 4) the ``roi`` output a head learner should give: ``target`` ROIs as the crops
    ``crop`` (both (N, 4) centre x, y, side, rotation, one frame) see them."""
    t, k = np.asarray(target, np.float64), np.asarray(crop, np.float64)
    c, s = np.cos(k[:, 3]), np.sin(k[:, 3])
    d = (t[:, :2] - k[:, :2]) / k[:, 2:3]
    dx, dy = c * d[:, 0] + s * d[:, 1], -s * d[:, 0] + c * d[:, 1]
    return np.stack([dx, dy, np.log(t[:, 2] / k[:, 2]), wrap(t[:, 3] - k[:, 3])], axis=1).astype(np.float32)


def recut(crops: NDArray[np.uint8], rois: NDArray[np.floating]) -> NDArray[np.uint8]:
    """(N, S, S, 3) crops of ``crops`` (N, S, S, 3) through ``rois`` (N, 4: centre x, y, side,
    rotation, in the crops' px), bilinear, border replicated as every kaocap crop."""
    import cv2

    size = crops.shape[1]
    out = np.empty_like(crops)
    for i, (cx, cy, side, theta) in enumerate(np.asarray(rois, np.float64)):
        roi = Roi(np.array([cx, cy], np.float32), np.array([side, side], np.float32), float(theta))
        cv2.warpAffine(crops[i], roi.crop_matrix(size), (size, size), dst=out[i], flags=cv2.INTER_LINEAR,
                       borderMode=cv2.BORDER_REPLICATE)  # fmt: skip
    return out


def head_crops(crops: NDArray[np.uint8], landmarks: NDArray[np.floating],
               rotation_crop: NDArray[np.floating]) -> tuple[NDArray[np.uint8], NDArray[np.float64]]:  # fmt: skip
    """Face crops (N, S, S, 3) re-cut on their head ROIs, from crop-normalised landmarks
    (N, 478, 3) and the rotations as the crops see them: (head crops, the head ROIs in the
    face crops' px (N, 4)). A head crop's rotation is ``rotation_z(rois[:, 3]) @ rotation_crop``."""
    rois = head_rois(np.asarray(landmarks, np.float64) * crops.shape[1], rotation_crop)
    return recut(crops, rois), rois


def apply_roi(roi: Roi, out: NDArray[np.floating]) -> Roi:
    """The image ROI that a head learner's ``roi`` output ``out`` (4,) names, read on ``roi``'s crop."""
    dx, dy, log_scale, dtheta = (float(v) for v in out)
    c, s = math.cos(roi.rotation_rad), math.sin(roi.rotation_rad)
    side = float(roi.size_wh[0])
    centre = roi.center_xy + np.array([c * dx - s * dy, s * dx + c * dy], np.float32) * side
    new_side = side * math.exp(log_scale)
    return Roi(centre.astype(np.float32), np.array([new_side, new_side], np.float32),
               float(wrap(roi.rotation_rad + dtheta)))  # fmt: skip
