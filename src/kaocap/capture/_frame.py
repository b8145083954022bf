"""Frame, the Source protocol, and image conversion/reading shared by every source."""

from __future__ import annotations

import logging
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol, Self, runtime_checkable

import cv2
import numpy as np
from numpy.typing import NDArray

from kaocap._closing import Closing
from kaocap.errors import InputError

logger = logging.getLogger(__name__)

#: File suffixes (lower case) read as still images; everything else is tried as video.
IMAGE_SUFFIXES: frozenset[str] = frozenset(
    {".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".webp", ".jp2", ".pgm", ".ppm", ".pnm"}
)

_UINT16_TO_UINT8 = 257.0  # 65535 / 255: maps the full 16-bit range onto the full 8-bit range


@dataclass(frozen=True, slots=True)
class Frame:
    """One image from a source.

    image: (H, W, 3) uint8 RGB, C-contiguous.
    timestamp_ms: ms, strictly increasing within a source (video: presentation time from the
        stream start; camera: monotonic clock since the source was opened).
    index: 0-based position of the frame in its source; gaps mean frames were dropped or
        skipped (a live camera drops stale frames, a folder skips unreadable files).
    """

    image: NDArray[np.uint8]
    timestamp_ms: int
    index: int

    def __post_init__(self) -> None:
        img = self.image
        ok = isinstance(img, np.ndarray) and img.ndim == 3 and img.shape[2] == 3
        if not (ok and img.dtype == np.uint8 and img.flags.c_contiguous):
            got = getattr(img, "shape", type(img).__name__), getattr(img, "dtype", "")
            raise ValueError(f"Frame.image must be a C-contiguous (H, W, 3) uint8 array, got {got}")


@runtime_checkable
class Source(Protocol):
    """A stream of frames: a camera, a video file, an image folder or one image.

    name: what it was opened from (path or ``"camera N"``). live: True for cameras, which drop
    stale frames rather than queue them. fps: nominal frame rate, or None when unknown.
    frame_count: number of frames when known in advance, else None. A source is iterated once.
    """

    name: str
    live: bool
    fps: float | None
    frame_count: int | None

    def __iter__(self) -> Iterator[Frame]: ...

    def close(self) -> None: ...

    def __enter__(self) -> Self: ...

    def __exit__(self, *exc: object) -> None: ...


class SourceBase(Closing):
    """Context-manager plumbing shared by the concrete sources."""

    name: str = ""
    live: bool = False
    fps: float | None = None
    frame_count: int | None = None

    def close(self) -> None:
        """Release the source; idempotent."""

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.name!r})"


def to_rgb8(image: NDArray) -> NDArray[np.uint8]:
    """Convert an image array to (H, W, 3) uint8 RGB, C-contiguous.

    Channels: (H, W) or (H, W, 1) grey is replicated; (H, W, 3) is taken as RGB and (H, W, 4) as
    RGBA (alpha dropped, no compositing). Colour order is never guessed: convert BGR (OpenCV)
    yourself, e.g. with :func:`read_image`. Values: uint8 as is; uint16 divided by 257 (65535 ->
    255); float in 0..1 scaled by 255 (clipped); bool -> 0 / 255.

    >>> to_rgb8(np.zeros((2, 3), np.uint16)).shape
    (2, 3, 3)
    """
    img = np.asarray(image)
    if img.ndim == 3 and img.shape[2] == 1:
        img = img[:, :, 0]
    if img.ndim == 2:
        img = np.repeat(img[:, :, None], 3, axis=2)
    elif img.ndim == 3 and img.shape[2] == 4:
        img = img[:, :, :3]
    elif not (img.ndim == 3 and img.shape[2] == 3):
        raise ValueError(
            f"expected an (H, W), (H, W, 1), (H, W, 3) or (H, W, 4) image, got {img.shape}"
        )
    return np.ascontiguousarray(_to_uint8(img))


def _to_uint8(img: NDArray) -> NDArray[np.uint8]:
    if img.dtype == np.uint8:
        return img
    if img.dtype == np.uint16:
        return np.round(img / _UINT16_TO_UINT8).astype(np.uint8)
    if img.dtype == np.bool_:
        return img.astype(np.uint8) * np.uint8(255)
    if np.issubdtype(img.dtype, np.floating):
        return np.round(np.clip(np.nan_to_num(img), 0.0, 1.0) * 255.0).astype(np.uint8)
    raise ValueError(f"unsupported image dtype {img.dtype}: use uint8, uint16, float 0..1 or bool")


def bgr_to_rgb8(image: NDArray) -> NDArray[np.uint8]:
    """OpenCV's channel order (grey, BGR or BGRA; uint8/uint16/float) -> (H, W, 3) uint8 RGB."""
    img = np.asarray(image)
    if img.ndim == 3 and img.shape[2] in (3, 4):
        img = img[:, :, 2::-1]  # BGR(A) -> RGB, alpha dropped
    return to_rgb8(img)


def read_image(path: str | Path) -> NDArray[np.uint8]:
    """Read an image file as (H, W, 3) uint8 RGB.

    Grey, alpha and 16-bit files are handled (see :func:`to_rgb8`); EXIF orientation is ignored.
    Raises :class:`~kaocap.errors.InputError` when the file is missing, empty or not an image.

    >>> read_image("face.jpg").shape                       # doctest: +SKIP
    (512, 512, 3)
    """
    p = Path(path)
    try:
        data = np.fromfile(p, dtype=np.uint8)  # imdecode also copes with non-ASCII paths
    except FileNotFoundError:
        raise InputError(f"{p}: no such file") from None
    except OSError as err:
        raise InputError(f"{p}: cannot be read ({err.strerror or err})") from None
    if data.size == 0:
        raise InputError(f"{p}: file is empty")
    image = cv2.imdecode(data, cv2.IMREAD_UNCHANGED)
    if image is None:
        raise InputError(f"{p}: not an image OpenCV can decode")
    try:
        return bgr_to_rgb8(image)
    except ValueError as err:
        raise InputError(f"{p}: {err}") from None


def default_image() -> NDArray[np.uint8]:
    """The embedded default input: (512, 512, 3) uint8 RGB, NASA's public-domain astronaut
    portrait shipped with scikit-image (``skimage.data.astronaut()``)."""
    from skimage import data  # lazy: scikit-image is only needed for this one picture

    return np.ascontiguousarray(data.astronaut(), dtype=np.uint8)


def natural_key(path: Path) -> tuple[tuple[int, int | str], ...]:
    """Sort key that orders ``img2.png`` before ``img10.png`` (case-insensitive)."""
    parts = re.split(r"(\d+)", path.name.lower())
    return tuple((0, int(p)) if p.isdigit() else (1, p) for p in parts if p)
