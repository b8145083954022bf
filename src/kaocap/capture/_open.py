"""``open_source``: one entry point from a user's spec to the right source."""

from __future__ import annotations

from pathlib import Path

from kaocap.capture._camera import CameraSource
from kaocap.capture._frame import IMAGE_SUFFIXES, Source
from kaocap.capture._images import FolderSource, ImageSource
from kaocap.capture._video import VideoSource
from kaocap.errors import InputError


def open_source(spec: str | int | Path) -> Source:
    """Open a camera, a folder of images, an image or a video from one spec.

    * ``int`` or a string of digits (``0``, ``"1"``): camera index -> :class:`CameraSource`.
    * an existing folder: its images in natural order -> :class:`FolderSource`.
    * a path with an image suffix (``.png``, ``.jpg``, ...): :class:`ImageSource`.
    * any other path: a video decoded by PyAV -> :class:`VideoSource`.

    Raises :class:`~kaocap.errors.InputError` (one line naming the path and the problem) when the
    input is missing, empty or unreadable.

    >>> with open_source("clip.mp4") as src:               # doctest: +SKIP
    ...     for frame in src: ...
    """
    if isinstance(spec, bool):
        raise TypeError("open_source() takes a camera index, a path or a string, not a bool")
    if isinstance(spec, int):
        return CameraSource(spec)
    if isinstance(spec, str) and spec.strip().isdigit():
        return CameraSource(int(spec))
    path = Path(spec)
    if path.is_dir():
        return FolderSource(path)
    if not path.exists():
        raise InputError(f"{path}: no such file or folder")
    if path.suffix.lower() in IMAGE_SUFFIXES:
        return ImageSource(path)
    return VideoSource(path)
