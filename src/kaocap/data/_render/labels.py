"""Exact labels of a render: surface points, their projection, depth and visibility.

Frames: model (ICT's, :mod:`.ict`), camera (kaocap's: x right, y up, z towards the viewer, cm),
image (px, x right, y down, origin at the top-left pixel's corner; :mod:`.gl`).
"""

from __future__ import annotations

import numpy as np
from numpy.typing import NDArray

from kaocap.data._render.gl import linear_depth

#: A mesh point is hidden when the nearest surface in all of its 3x3 pixel neighbourhood is
#: this much in front of it (cm). Generous: MediaPipe's inner-lip and lid-margin points sit in
#: creases a few mm behind the surface that hides them, yet count as seen (the lip line).
DEPTH_TOLERANCE_CM = 0.4
#: A point faces the camera when the angle between its normal and the view ray is below ~110
#: degrees: lenient, as the lip-contact points' normals point down into the lip line.
FACING_MIN_COS = -0.35
#: The same for the iris points, on the eyeball: a closed lid lies within 1 mm of the cornea.
IRIS_DEPTH_TOLERANCE_CM = 0.05
#: MediaPipe's 468 mesh points come first; the 10 iris points follow.
MESH_POINTS = 468


def surface_points(vertices: NDArray[np.floating], ids: NDArray[np.intp], weights: NDArray[np.floating]) -> NDArray[np.float64]:
    """(N, 3): barycentric points ``sum_k weights[:, k] * vertices[ids[:, k]]``."""
    return np.einsum("nk,nkd->nd", weights.astype(np.float64), vertices[ids].astype(np.float64))


def to_camera(points: NDArray[np.floating], rotation: NDArray, translation: NDArray) -> NDArray[np.float64]:
    """(N, 3) model-frame points -> camera frame: ``rotation @ p + translation``."""
    return points @ np.asarray(rotation, np.float64).T + np.asarray(translation, np.float64)


def project(points_cam: NDArray[np.floating], focal_px: float, size: int) -> NDArray[np.float64]:
    """(N, 2) image px of (N, 3) camera-frame points (pinhole at the image centre)."""
    z = -points_cam[:, 2]
    return np.c_[size / 2 + focal_px * points_cam[:, 0] / z, size / 2 - focal_px * points_cam[:, 1] / z]


def image_landmarks(points_cam: NDArray[np.floating], focal_px: float, size: int, origin_z_cm: float) -> NDArray[np.float32]:
    """(478, 3) float32: image px x, y and MediaPipe's z: depth relative to the mean depth of the
    468 mesh points (zero mean over them, as the network's z), smaller = nearer, in px at the
    canonical origin's depth ``origin_z_cm`` (camera Z, cm). Measured against the teacher on
    renders: its z = (0.9 .. 1.07) x this z, offset < 0.02 px."""
    xy = project(points_cam, focal_px, size)
    mean_z = float(points_cam[:MESH_POINTS, 2].mean())
    z = (mean_z - points_cam[:, 2]) * focal_px / -origin_z_cm
    return np.c_[xy, z].astype(np.float32)


def visibility(points_cam: NDArray[np.floating], normals_cam: NDArray[np.floating], depth: NDArray[np.float32],
               focal_px: float) -> NDArray[np.float32]:  # fmt: skip
    """(N,) float32 1 visible / 0 hidden: inside the image, facing the camera
    (:data:`FACING_MIN_COS`), and not behind
    the nearest rendered surface (window ``depth`` (S, S), top row first) by more than
    :data:`DEPTH_TOLERANCE_CM` (iris points after the 468 mesh points:
    :data:`IRIS_DEPTH_TOLERANCE_CM`) at every one of the 3x3 pixels around its projection."""
    size = depth.shape[0]
    xy = project(points_cam, focal_px, size)
    inside = np.all((xy >= 0) & (xy < size), axis=1) & (points_cam[:, 2] < 0)
    view = -points_cam / np.linalg.norm(points_cam, axis=1, keepdims=True)
    unit = normals_cam / np.maximum(np.linalg.norm(normals_cam, axis=1, keepdims=True), 1e-12)
    facing = np.einsum("nd,nd->n", unit, view) > FACING_MIN_COS
    col = np.clip(np.floor(xy).astype(int), 0, size - 1)
    z_buffer = linear_depth(depth)  # background (depth 1) -> -FAR_CM
    farthest = np.full(len(xy), np.inf)  # the farthest of the 9 pixels' nearest surfaces
    for dy in (-1, 0, 1):
        for dx in (-1, 0, 1):
            r = np.clip(col[:, 1] + dy, 0, size - 1)
            c = np.clip(col[:, 0] + dx, 0, size - 1)
            farthest = np.minimum(farthest, z_buffer[r, c])
    tolerance = np.full(len(xy), DEPTH_TOLERANCE_CM)
    tolerance[MESH_POINTS:] = IRIS_DEPTH_TOLERANCE_CM
    unoccluded = points_cam[:, 2] >= farthest - tolerance
    return (inside & facing & unoccluded).astype(np.float32)
