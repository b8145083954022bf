"""Agreement between kaocap and MediaPipe's FaceLandmarker on the same real frames.

The golden set is a fixed list of frames from ``../shared/data/videos`` (10 clips, 10 people);
``scripts/make_goldens.py`` runs the real peer on them and stores its outputs, and the golden
test compares kaocap against that file, so CI needs no MediaPipe.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from numpy.typing import NDArray

from kaocap.constants import (
    BLENDSHAPES,
    LANDMARK_LEFT_EYE_OUTER,
    LANDMARK_RIGHT_EYE_OUTER,
    MEDIAPIPE_BLENDSHAPES,
    MEDIAPIPE_MISSING_BLENDSHAPES,
)

#: (clip relative to shared/data/videos, number of frames sampled evenly). One person per clip.
GOLDEN_CLIPS: tuple[tuple[str, int], ...] = (
    ("liveportrait/assets/examples/driving/d0.mp4", 32),
    ("liveportrait/assets/examples/driving/d3.mp4", 32),
    ("liveportrait/assets/examples/driving/d9.mp4", 32),
    ("liveportrait/assets/examples/driving/d6.mp4", 32),
    ("liveportrait/assets/examples/source/s18.mp4", 32),
    ("sadtalker/examples/ref_video/WDA_KatieHill_000.mp4", 32),
    ("sadtalker/examples/ref_video/WDA_AlexandriaOcasioCortez_000.mp4", 32),
    ("mead_lrs3_spectre/samples/MEAD/W023_level_2_surprised_010.mp4", 32),
    ("mead_lrs3_spectre/samples/MEAD/M003_level_1_happy_024.mp4", 32),
    ("lia_vox/obama.mov", 32),
)


def frame_indices(total: int, count: int) -> list[int]:
    """``count`` frame indices spread evenly over ``total`` frames."""
    return sorted({round(i * (total - 1) / max(count - 1, 1)) for i in range(count)})


def decode_frames(path: Path, indices: list[int]) -> Iterator[tuple[int, NDArray[np.uint8]]]:
    """Yield (index, RGB frame) for the wanted frame indices of a video, decoded with PyAV."""
    import av

    wanted = set(indices)
    with av.open(str(path)) as container:
        for i, frame in enumerate(container.decode(video=0)):
            if i in wanted:
                yield i, frame.to_ndarray(format="rgb24")
            if i >= max(indices):
                break


def count_frames(path: Path) -> int:
    import av

    with av.open(str(path)) as container:
        return sum(1 for _ in container.decode(video=0))


def mediapipe_to_arkit(scores: NDArray[np.floating]) -> NDArray[np.float32]:
    """(52,) MediaPipe-ordered scores -> (52,) Apple order (tongueOut NaN: not produced)."""
    index = {n: i for i, n in enumerate(MEDIAPIPE_BLENDSHAPES)}
    return np.array([np.nan if n in MEDIAPIPE_MISSING_BLENDSHAPES else scores[index[n]] for n in BLENDSHAPES],
                    dtype=np.float32)  # fmt: skip


def rotation_angle_deg(a: NDArray, b: NDArray) -> float:
    """Angle in degrees of the rotation taking (3, 3) ``a`` to ``b``."""
    cos = (np.trace(np.asarray(a, np.float64).T @ np.asarray(b, np.float64)) - 1) / 2
    return float(np.degrees(np.arccos(np.clip(cos, -1.0, 1.0))))


@dataclass(frozen=True, slots=True)
class Agreement:
    """Agreement figures over frames where both found a face (detection agreement over all).

    landmark_median_iod: median over frames and points of the landmark distance / inter-ocular
    distance. blendshape_mae: mean abs difference averaged over shapes; blendshape_mae_worst:
    the largest per-shape mean (name in worst_shape). rotation_median_deg: median rotation
    difference. detection_agreement: fraction of frames where both agree on face / no face.
    """

    frames: int
    both_found: int
    detection_agreement: float
    landmark_median_iod: float
    blendshape_mae: float
    blendshape_mae_worst: float
    worst_shape: str
    rotation_median_deg: float

    def lines(self) -> list[str]:
        return [
            f"frames {self.frames}, face found by both on {self.both_found}",
            f"detection agreement {self.detection_agreement:.2%}",
            f"landmark median distance {self.landmark_median_iod:.4%} of inter-ocular distance",
            f"blendshape mean |diff| {self.blendshape_mae:.4f} (worst shape {self.worst_shape} {self.blendshape_mae_worst:.4f})",
            f"head rotation median difference {self.rotation_median_deg:.3f} deg",
        ]


def compare(ours: dict[str, NDArray], peer: dict[str, NDArray]) -> Agreement:
    """Both dicts hold per-frame arrays: ``found`` (F,) bool, ``landmarks_px`` (F, 478, 3),
    ``blendshapes`` (F, 52) Apple order (NaN = not produced), ``rotation`` (F, 3, 3)."""
    both = ours["found"] & peer["found"]
    lm_o, lm_p = ours["landmarks_px"][both], peer["landmarks_px"][both]
    iod = np.linalg.norm(lm_p[:, LANDMARK_LEFT_EYE_OUTER, :2] - lm_p[:, LANDMARK_RIGHT_EYE_OUTER, :2], axis=1)
    dist = np.linalg.norm(lm_o[..., :2] - lm_p[..., :2], axis=2) / iod[:, None]
    diff = np.abs(ours["blendshapes"][both] - peer["blendshapes"][both])
    valid = ~np.all(np.isnan(diff), axis=0)  # shapes one side does not produce (tongueOut)
    per_shape = np.full(diff.shape[1], np.nan)
    per_shape[valid] = np.nanmean(diff[:, valid], axis=0)
    worst = int(np.nanargmax(per_shape))
    angles = [rotation_angle_deg(a, b) for a, b in zip(ours["rotation"][both], peer["rotation"][both])]
    return Agreement(
        frames=len(both),
        both_found=int(both.sum()),
        detection_agreement=float(np.mean(ours["found"] == peer["found"])),
        landmark_median_iod=float(np.median(dist)),
        blendshape_mae=float(per_shape[valid].mean()),
        blendshape_mae_worst=float(per_shape[worst]),
        worst_shape=BLENDSHAPES[worst],
        rotation_median_deg=float(np.median(angles)),
    )
