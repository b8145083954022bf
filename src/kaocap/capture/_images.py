"""Still-image sources: one image file, or a folder of images read in natural order."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from pathlib import Path

from kaocap.capture._frame import IMAGE_SUFFIXES, Frame, SourceBase, natural_key, read_image
from kaocap.errors import InputError

logger = logging.getLogger(__name__)

#: Frame rate that folder timestamps are spaced by when none is given.
DEFAULT_FOLDER_FPS = 30.0


class ImageSource(SourceBase):
    """One image file as a one-frame source (timestamp 0, index 0).

    The file is decoded when the source is opened, so a bad file fails early with
    :class:`~kaocap.errors.InputError`.

    >>> with ImageSource("face.jpg") as src:               # doctest: +SKIP
    ...     frame = next(iter(src))
    """

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self.name = str(self.path)
        self.live = False
        self.fps = None
        self.frame_count = 1
        self._image = read_image(self.path)

    def __iter__(self) -> Iterator[Frame]:
        yield Frame(self._image, 0, 0)


class FolderSource(SourceBase):
    """The images of a folder (not recursive), sorted naturally (``2.png`` before ``10.png``).

    Files whose suffix is not an image suffix are skipped with one warning; an image that cannot
    be decoded is skipped with a warning per file. ``Frame.index`` is the file's position in
    :attr:`paths` (so it has gaps where files were skipped); ``timestamp_ms = index * 1000 / fps``.
    Raises :class:`~kaocap.errors.InputError` if the folder holds no image files, or if none of
    them can be decoded (raised from the iterator).

    >>> with FolderSource("frames/", fps=25) as src:       # doctest: +SKIP
    ...     for frame in src: ...
    """

    def __init__(self, path: str | Path, *, fps: float = DEFAULT_FOLDER_FPS) -> None:
        self.path = Path(path)
        if not self.path.is_dir():
            raise InputError(f"{self.path}: not a folder")
        if fps <= 0:
            raise ValueError(f"fps must be > 0, got {fps}")
        self.name = str(self.path)
        self.live = False
        self.fps = float(fps)
        self.paths: tuple[Path, ...] = _list_images(self.path)
        self.frame_count = len(self.paths)

    def __iter__(self) -> Iterator[Frame]:
        delivered = 0
        for index, path in enumerate(self.paths):
            try:
                image = read_image(path)
            except InputError as err:
                logger.warning("skipping unreadable image: %s", err)
                continue
            delivered += 1
            yield Frame(image, round(index * 1000.0 / self.fps), index)
        if delivered == 0:
            raise InputError(f"{self.path}: none of its {len(self.paths)} images could be decoded")


def _list_images(folder: Path) -> tuple[Path, ...]:
    try:
        entries = [p for p in folder.iterdir() if p.is_file()]
    except OSError as err:
        raise InputError(f"{folder}: cannot be listed ({err.strerror or err})") from None
    images = sorted((p for p in entries if p.suffix.lower() in IMAGE_SUFFIXES), key=natural_key)
    skipped = len(entries) - len(images)
    if skipped:
        logger.warning("%s: skipping %d non-image file(s)", folder, skipped)
    if not images:
        raise InputError(f"{folder}: no image files in folder")
    return tuple(images)
