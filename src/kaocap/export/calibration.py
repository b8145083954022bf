"""Real face crops for int8 calibration and export parity, made exactly as the network sees them.

Every face MediaPipe's networks find (detect on every image, no tracking, no filtering) is
cropped as the data engine crops it (:func:`kaocap.blendshapes.learned.roi_crops`: the ROI's
upright crop, bilinear, border replicated) and turned into network input
(:func:`~kaocap.blendshapes.learned.image_input`: (N, 3, S, S) float32 RGB 0..1, NCHW).

>>> crops = face_crops(["photos/"], 128)                                   # doctest: +SKIP
>>> crops.shape, crops.dtype
((23, 3, 128, 128), dtype('float32'))
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from pathlib import Path

import numpy as np
from numpy.typing import NDArray

from kaocap.errors import InputError

#: Calibration gains little beyond a few hundred samples; parity runs them all.
MAX_CROPS = 256


def face_crops(images: Sequence[str | Path] | None, size: int, *, max_crops: int = MAX_CROPS) -> NDArray[np.float32]:
    """(N, 3, size, size) float32 network inputs of the faces in ``images`` (image files or
    folders of images, in order; a video gives its frames), at most ``max_crops``; None: the embedded default portrait
    (one face). Raises InputError when an image cannot be read or no face is found."""
    from kaocap import Pipeline
    from kaocap.blendshapes.learned import image_input, roi_crops
    from kaocap.config import PipelineConfig

    config = PipelineConfig.image_mode()
    crops: list[NDArray[np.uint8]] = []
    with Pipeline(config) as pipe:
        for timestamp_ms, image in enumerate(_images(images), start=1):
            rois = [face.roi for face in pipe(image, timestamp_ms).faces]
            crops.extend(roi_crops(image, rois, size)[: max_crops - len(crops)])
            if len(crops) >= max_crops:
                break
    if not crops:
        raise InputError(f"no face found in {', '.join(map(str, images)) if images else 'the default portrait'}")
    return image_input(np.stack(crops), size)


def _images(images: Sequence[str | Path] | None) -> Iterator[NDArray[np.uint8]]:
    from kaocap.capture import default_image, open_source

    if images is None:
        yield default_image()
        return
    for spec in images:
        with open_source(Path(spec)) as source:
            yield from (frame.image for frame in source)
