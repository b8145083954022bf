"""Opening output files with one-line :class:`~kaocap.errors.OutputError` messages."""

from __future__ import annotations

from pathlib import Path
from typing import IO

from kaocap.errors import OutputError


def open_output(path: str | Path, *, binary: bool = False) -> IO:
    """Open ``path`` for writing (truncating it); unbuffered when ``binary``.

    Raises :class:`~kaocap.errors.OutputError` naming the path when it cannot be written.
    """
    p = Path(path)
    if p.is_dir():
        raise OutputError(f"{p}: is a folder, not a file")
    try:
        if binary:
            return open(p, "wb", buffering=0)
        return open(p, "w", encoding="utf-8", newline="")
    except OSError as err:
        raise OutputError(f"{p}: cannot be written ({err.strerror or err})") from None


def write_all(file: IO[bytes], data: bytes) -> None:
    """Write every byte of ``data`` to an unbuffered binary file, then flush."""
    view = memoryview(data)
    while view:
        written = file.write(view)
        view = view[written or 0 :]
    file.flush()
