"""Face detection: BlazeFace short range, with a tiled pass for small faces."""

from __future__ import annotations

import cv2
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
        self._reg, self._cls = process.OUTPUT_REGRESSORS, process.OUTPUT_SCORES

    def _candidates(self, image: NDArray[np.uint8], regions: list) -> tuple[NDArray, NDArray, NDArray]:
        """Decoded candidates of all ``regions`` (None = whole image), one batched network call."""
        inputs = [process.letterbox(image, region) for region in regions]
        out = self.session.run({self._in: np.concatenate([tensor for tensor, _ in inputs])})
        regressors = process.split_batch(out[self._reg], len(inputs))
        logits = process.split_batch(out[self._cls], len(inputs))[..., 0]
        parts = [
            process.to_image(process.decode(regressors[i], logits[i], self.config.min_score), affine)
            for i, (_, affine) in enumerate(inputs)
        ]
        boxes, keypoints, scores = (np.concatenate(p) for p in zip(*parts))
        return boxes, keypoints, scores

    def __call__(self, image: NDArray[np.uint8], max_faces: int) -> list[Detection]:
        """Detections sorted by score, at most ``max_faces``, in image px."""
        found = process.weighted_nms(*self._candidates(image, [None]), self.config.nms_iou)
        height, width = image.shape[:2]
        tile = int(min(height, width) * self.config.tile_fraction)
        if self.config.small_faces and len(found) < max_faces and max(height, width) >= _MIN_TILE_GAIN * tile:
            found += self._tiled(image, tile, found)
            found.sort(key=lambda d: -d.score)
        return found[:max_faces]

    def presence(self, crops: NDArray[np.uint8]) -> NDArray[np.float32]:
        """(N,) face presence in N square RGB crops (N, S, S, 3) uint8, each centred on a tracked
        face (a landmark ROI's upright crop): the best BlazeFace score of an anchor whose box
        centre lies in the crop's central half, 0 when none. One batched network call."""
        size = process.INPUT_SIZE
        if crops.shape[1:3] != (size, size):
            crops = np.stack([cv2.resize(c, (size, size), interpolation=cv2.INTER_AREA) for c in crops])
        tensor = crops.astype(np.float32) * np.float32(2.0 / 255.0) - np.float32(1.0)
        out = self.session.run({self._in: tensor})
        regressors = process.split_batch(out[self._reg], len(crops))
        logits = process.split_batch(out[self._cls], len(crops))[..., 0]
        scores = np.zeros(len(crops), np.float32)
        for i in range(len(crops)):
            boxes, _, probs = process.decode(regressors[i], logits[i], 0.0)
            centre = (boxes[:, :2] + boxes[:, 2:]) / 2
            inside = np.all(np.abs(centre - size / 2) <= size / 4, axis=1)
            scores[i] = probs[inside].max() if inside.any() else 0.0
        return scores

    def _tiled(self, image: NDArray[np.uint8], tile: int, found: list[Detection]) -> list[Detection]:
        regions = process.tile_regions(image.shape[1], image.shape[0], tile)
        fresh = process.weighted_nms(*self._candidates(image, regions), self.config.nms_iou)
        return [d for d in fresh if not any(_contains(f.box, d) for f in found)]


def _contains(box: NDArray, detection: Detection) -> bool:
    """Whether the centre of ``detection`` lies inside ``box`` (x0 y0 x1 y1)."""
    cx, cy = (detection.box[:2] + detection.box[2:]) / 2
    return bool(box[0] <= cx <= box[2] and box[1] <= cy <= box[3])
