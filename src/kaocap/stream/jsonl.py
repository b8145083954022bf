"""JSON Lines: one JSON object per frame, built from :meth:`FrameResult.to_dict`."""

from __future__ import annotations

import io
import json
import sys
from pathlib import Path
from typing import IO

from kaocap._closing import Closing
from kaocap.errors import OutputError
from kaocap.stream._files import open_output, write_all
from kaocap.types import FrameResult

#: Target meaning standard output.
STDOUT = "-"


class JsonlWriter(Closing):
    """Write one ``FrameResult.to_dict()`` object per line (UTF-8, compact separators).

    Each line is written with a single unbuffered write and flushed, so a job that stops early
    leaves only whole lines. ``target`` is a path, ``"-"`` for standard output, or an open binary
    or text stream (left open on :meth:`close`). ``landmarks`` adds the (478, 3) px landmarks of
    every face (about 20 kB a face).

    >>> with JsonlWriter("out.jsonl") as out:              # doctest: +SKIP
    ...     out.write(result)
    """

    def __init__(self, target: str | Path | IO = STDOUT, *, landmarks: bool = False) -> None:
        self.landmarks = landmarks
        self._owned = False
        if isinstance(target, str | Path) and str(target) != STDOUT:
            self.name = str(target)
            self._file: IO | None = open_output(target, binary=True)
            self._owned = True
        else:
            stream = sys.stdout if isinstance(target, str | Path) else target
            self.name = str(getattr(stream, "name", "<stream>"))
            self._file = stream
        self._binary = isinstance(self._file, io.RawIOBase | io.BufferedIOBase)

    def write(self, result: FrameResult) -> None:
        """Append one line for ``result``."""
        if self._file is None:
            raise OutputError(f"{self.name}: writer is closed")
        line = json.dumps(result.to_dict(landmarks=self.landmarks), separators=(",", ":")) + "\n"
        try:
            if self._binary:
                write_all(self._file, line.encode("utf-8"))
            else:
                self._file.write(line)
                self._file.flush()
        except OSError as err:
            raise OutputError(f"{self.name}: write failed ({err.strerror or err})") from None

    def close(self) -> None:
        """Close the file (streams passed in are only flushed); idempotent."""
        file, self._file = self._file, None
        if file is None:
            return
        if self._owned:
            file.close()
        else:
            file.flush()

