"""Frame sources: cameras, video files, image folders and single images.

Every source yields :class:`Frame` objects (``image`` (H, W, 3) uint8 RGB, ``timestamp_ms``,
``index``), is a context manager, and follows the small :class:`Source` protocol.

>>> from kaocap.capture import open_source
>>> with open_source("clip.mp4") as src:                   # doctest: +SKIP
...     for frame in src:
...         print(frame.index, frame.timestamp_ms, frame.image.shape)
"""

from kaocap.capture._camera import DEFAULT_TIMEOUT_S, CameraSource, VideoCaptureLike
from kaocap.capture._frame import (
    IMAGE_SUFFIXES,
    Frame,
    Source,
    bgr_to_rgb8,
    default_image,
    read_image,
    to_rgb8,
)
from kaocap.capture._images import FolderSource, ImageSource
from kaocap.capture._open import open_source
from kaocap.capture._reconnect import ReconnectingSource
from kaocap.capture._video import VideoSource

__all__ = [
    "DEFAULT_TIMEOUT_S",
    "IMAGE_SUFFIXES",
    "CameraSource",
    "FolderSource",
    "Frame",
    "ImageSource",
    "ReconnectingSource",
    "Source",
    "VideoCaptureLike",
    "VideoSource",
    "bgr_to_rgb8",
    "default_image",
    "open_source",
    "read_image",
    "to_rgb8",
]
