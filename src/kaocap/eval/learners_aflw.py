"""The labelled AFLW2000-3D samples in ``../shared/data/headpose``, prepared for the learners.

Only yaw is labelled there: ``3ddfa_aflw2000_labels_no_images/test.configs/AFLW2000-3D.pose.npy``
holds 2000 signed yaws (degrees) in sorted file-name order (the file names are listed in
``img2pose_label_lists_no_images/.../AFLW2000_annotations.txt``), and ``deca/TestSamples/AFLW2000``
holds 9 of the images. Their sign is the opposite of kaocap's (checked against MediaPipe's pose on
these images), so ``yaw_deg = -label``.

Each image goes through kaocap's MediaPipe path (detector + 478 landmarks, every frame detected)
for the ROI and landmarks the learners read, exactly as the runtime would feed them.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
from numpy.typing import NDArray

from kaocap.blendshapes.features import landmarks_to_crop

POSE_FILE = Path("3ddfa_aflw2000_labels_no_images/test.configs/AFLW2000-3D.pose.npy")
NAMES_FILE = Path("img2pose_label_lists_no_images/evaluation/jupyter_notebooks/AFLW2000_annotations.txt")
IMAGE_DIR = Path("deca/TestSamples/AFLW2000")
#: kaocap yaw = YAW_SIGN * AFLW2000-3D.pose.npy yaw.
YAW_SIGN = -1.0
#: Crops are taken at this size and area-resized by each learner (as shard crops are).
CROP_SIZE = 256


@dataclass(frozen=True, slots=True)
class AflwFaces:
    """M faces found by the MediaPipe path. crops (M, 256, 256, 3) uint8 RGB of the landmark ROI;
    mesh (M, 478, 3) crop-normalised landmarks; roi_rotation_rad (M,); yaw_deg (M,) label in
    kaocap's convention; mediapipe_yaw_deg (M,) MediaPipe's own head pose; names (M,)."""

    crops: NDArray[np.uint8]
    mesh: NDArray[np.float32]
    roi_rotation_rad: NDArray[np.float64]
    yaw_deg: NDArray[np.float64]
    mediapipe_yaw_deg: NDArray[np.float64]
    names: tuple[str, ...]
    missed: tuple[str, ...]


def yaw_labels(headpose_dir: Path) -> dict[str, float]:
    """File name -> labelled yaw in kaocap's convention (degrees), all 2000 images."""
    names = sorted(Path(line.split()[0]).name for line in (headpose_dir / NAMES_FILE).read_text().splitlines() if line.strip())
    yaw = np.load(headpose_dir / POSE_FILE)
    if len(names) != len(yaw):
        raise ValueError(f"{len(names)} AFLW2000 names but {len(yaw)} yaw labels")
    return {n: YAW_SIGN * float(y) for n, y in zip(names, yaw)}


def load_aflw_faces(headpose_dir: Path) -> AflwFaces:
    """Run the MediaPipe path on the labelled images; images without a face go to ``missed``."""
    from kaocap.capture import read_image
    from kaocap.config import PipelineConfig
    from kaocap.landmarks.process import crop
    from kaocap.pipeline import Pipeline

    labels = yaw_labels(Path(headpose_dir))
    cfg = PipelineConfig.image_mode()
    crops, mesh, rot, yaw, mp_yaw, names, missed = [], [], [], [], [], [], []
    with Pipeline(cfg) as pipe:
        for i, path in enumerate(sorted((Path(headpose_dir) / IMAGE_DIR).glob("*.jpg"))):
            image = read_image(path)
            faces = pipe(image, i + 1).faces
            if not faces or path.name not in labels:
                missed.append(path.name)
                continue
            face = faces[0]
            crops.append((crop(image, [face.roi], CROP_SIZE)[0] * 255 + 0.5).astype(np.uint8))
            mesh.append(landmarks_to_crop(face.landmarks, face.roi))
            rot.append(face.roi.rotation_rad)
            yaw.append(labels[path.name])
            mp_yaw.append(face.pose.euler_deg[0])
            names.append(path.name)
    empty = np.zeros((0, CROP_SIZE, CROP_SIZE, 3), np.uint8)
    return AflwFaces(np.stack(crops) if crops else empty, np.array(mesh, np.float32).reshape(-1, 478, 3),
                     np.array(rot), np.array(yaw), np.array(mp_yaw), tuple(names), tuple(missed))  # fmt: skip
