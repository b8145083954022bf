"""kaocap: real-time face capture on a plain CPU.

Frames in; for every face out come the 52 ARKit blendshapes, the 6-DoF head pose, 478 landmarks
and a confidence.

>>> import kaocap
>>> with kaocap.Pipeline() as pipe:                      # doctest: +SKIP
...     result = pipe(kaocap.default_image(), timestamp_ms=0)
>>> result.faces[0].blendshape("jawOpen")                # doctest: +SKIP
"""

from kaocap.constants import BLENDSHAPES
from kaocap.errors import KaocapError
from kaocap.types import Face, FrameResult, HeadPose, Roi

__all__ = [
    "BLENDSHAPES",
    "Face",
    "FrameResult",
    "HeadPose",
    "KaocapError",
    "Pipeline",
    "PipelineConfig",
    "Roi",
    "default_image",
]
__version__ = "0.1.0"


def __getattr__(name: str):  # lazy: importing kaocap must stay cheap (no runtimes loaded)
    if name == "Pipeline":
        from kaocap.pipeline import Pipeline

        return Pipeline
    if name == "PipelineConfig":
        from kaocap.config import PipelineConfig

        return PipelineConfig
    if name == "default_image":
        from kaocap.capture import default_image

        return default_image
    raise AttributeError(name)
