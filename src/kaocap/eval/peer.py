"""MediaPipe's own FaceLandmarker, the peer that kaocap is measured against.

Needs the ``mediapipe`` package (a peer for benchmarks and golden files, not a dependency of the
inference path). The model is the same ``face_landmarker.task`` kaocap reads its networks from.
"""

from __future__ import annotations

import sys
from typing import Any

import numpy as np
from numpy.typing import NDArray

from kaocap._closing import Closing
from kaocap.errors import RuntimeNotAvailable
from kaocap.models import task_file


def import_mediapipe() -> tuple[Any, Any, Any]:
    """``(mediapipe, BaseOptions, vision)``, imported without TensorFlow.

    mediapipe imports TensorFlow, when it is installed (kaocap[export] brings it), for its API
    documentation only; in a process that has loaded PyTorch, the GL renderer or LiteRT first that
    import can crash the interpreter. It is blocked for the import unless TensorFlow is loaded
    already. Raises ImportError when mediapipe is not installed.
    """
    block = "tensorflow" not in sys.modules
    if block:
        sys.modules["tensorflow"] = None  # type: ignore[assignment]  # -> ModuleNotFoundError
    try:
        import mediapipe as mp
        from mediapipe.tasks.python import BaseOptions, vision
    finally:
        if block:
            del sys.modules["tensorflow"]
    return mp, BaseOptions, vision


class MediaPipePeer(Closing):
    """mode: "image" (detect every frame) or "video" (MediaPipe's tracking)."""

    def __init__(self, mode: str = "image", max_faces: int = 1) -> None:
        try:
            mp, BaseOptions, vision = import_mediapipe()
        except ImportError as exc:
            raise RuntimeNotAvailable("the MediaPipe peer needs the mediapipe package: pip install mediapipe") from exc
        self._mp = mp
        running_mode = {"image": vision.RunningMode.IMAGE, "video": vision.RunningMode.VIDEO}[mode]
        options = vision.FaceLandmarkerOptions(
            base_options=BaseOptions(model_asset_path=str(task_file())),
            running_mode=running_mode,
            num_faces=max_faces,
            output_face_blendshapes=True,
            output_facial_transformation_matrixes=True,
        )
        self.mode = mode
        self._task = vision.FaceLandmarker.create_from_options(options)

    def raw(self, image: NDArray[np.uint8], timestamp_ms: int = 0):
        """MediaPipe's own result object for one RGB frame."""
        frame = self._mp.Image(image_format=self._mp.ImageFormat.SRGB, data=np.ascontiguousarray(image))
        if self.mode == "video":
            return self._task.detect_for_video(frame, timestamp_ms)
        return self._task.detect(frame)

    def detect(self, image: NDArray[np.uint8], timestamp_ms: int = 0):
        """(found, landmarks (478, 3) px, blendshape scores (52,) MediaPipe order, matrix (4, 4));
        arrays are NaN when no face is found."""
        result = self.raw(image, timestamp_ms)
        height, width = image.shape[:2]
        if not result.face_landmarks:
            return False, np.full((478, 3), np.nan), np.full(52, np.nan), np.full((4, 4), np.nan)
        landmarks = np.array([[p.x * width, p.y * height, p.z * width] for p in result.face_landmarks[0]])
        scores = np.array([c.score for c in result.face_blendshapes[0]])
        return True, landmarks, scores, np.asarray(result.facial_transformation_matrixes[0])

    def close(self) -> None:
        self._task.close()

