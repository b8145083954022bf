"""Face detection: BlazeFace short range, with a tiled pass for small faces."""

from __future__ import annotations

import numpy as np
from numpy.typing import NDArray

from kaocap.config import DetectorConfig
from kaocap.detect import process
from kaocap.detect.process import Detection
from kaocap.runtime import Session

__all__ = ["Detection", "FaceDetector"]

#: A tiled pass is only worth it when tiles are this much smaller than the frame's long side.
_MIN_TILE_GAIN = 1.5


class FaceDetector:
    """Runs BlazeFace on a whole frame and, for faces too small for that, on tiles.

    >>> detector = FaceDetector(session, DetectorConfig())     # doctest: +SKIP
    >>> detections = detector(image_rgb, max_faces=1)
    """

    def __init__(self, session: Session, config: DetectorConfig) -> None:
        self.session, self.config = session, config
        self._in = session.inputs[0].name
        self._reg, self._cls = (o.name for o in session.outputs)

    def _candidates(self, image: NDArray[np.uint8], region=None):
        tensor, affine = process.letterbox(image, region)
        out = self.session.run({self._in: tensor})
        raw = process.decode(out[self._reg][0], out[self._cls][0, :, 0], self.config.min_score)
        return process.to_image(raw, affine)

    def __call__(self, image: NDArray[np.uint8], max_faces: int) -> list[Detection]:
        """Detections sorted by score, at most ``max_faces``, in image px."""
        found = process.weighted_nms(*self._candidates(image), self.config.nms_iou)
        height, width = image.shape[:2]
        tile = int(min(height, width) * self.config.tile_fraction)
        if self.config.small_faces and len(found) < max_faces and max(height, width) >= _MIN_TILE_GAIN * tile:
            found += self._tiled(image, tile, found)
            found.sort(key=lambda d: -d.score)
        return found[:max_faces]

    def _tiled(self, image: NDArray[np.uint8], tile: int, found: list[Detection]) -> list[Detection]:
        parts = [self._candidates(image, r) for r in process.tile_regions(image.shape[1], image.shape[0], tile)]
        boxes, keypoints, scores = (np.concatenate(p) for p in zip(*parts))
        fresh = process.weighted_nms(boxes, keypoints, scores, self.config.nms_iou)
        return [d for d in fresh if not any(_contains(f.box, d) for f in found)]


def _contains(box: NDArray, detection: Detection) -> bool:
    """Whether the centre of ``detection`` lies inside ``box`` (x0 y0 x1 y1)."""
    cx, cy = (detection.box[:2] + detection.box[2:]) / 2
    return bool(box[0] <= cx <= box[2] and box[1] <= cy <= box[3])
