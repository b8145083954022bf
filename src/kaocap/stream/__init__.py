"""Writers and senders of results; every format is built from the result dataclasses.

* :class:`~kaocap.stream.jsonl.JsonlWriter`: JSON Lines, one ``FrameResult.to_dict()`` per line.
* :class:`~kaocap.stream.csv_livelink.LiveLinkCsvWriter`: Live Link Face CSV (and
  :func:`~kaocap.stream.csv_livelink.read_livelink_csv`).
* :class:`~kaocap.stream.preview.PreviewWriter`: an annotated MP4 (and
  :func:`~kaocap.stream.preview.draw_overlay`).

Each writer is a context manager with ``write(result)`` and an idempotent ``close()``; an
unwritable path raises :class:`~kaocap.errors.OutputError`. Submodules are imported lazily so
that ``import kaocap.stream`` stays cheap.
"""

from __future__ import annotations

import importlib
from typing import Any

_EXPORTS = {
    "JsonlWriter": "kaocap.stream.jsonl",
    "LiveLinkCsvWriter": "kaocap.stream.csv_livelink",
    "read_livelink_csv": "kaocap.stream.csv_livelink",
    "PreviewWriter": "kaocap.stream.preview",
    "draw_overlay": "kaocap.stream.preview",
}

__all__ = ["JsonlWriter", "LiveLinkCsvWriter", "PreviewWriter", "draw_overlay", "read_livelink_csv"]


def __getattr__(name: str) -> Any:
    if name in _EXPORTS:
        return getattr(importlib.import_module(_EXPORTS[name]), name)
    raise AttributeError(f"module 'kaocap.stream' has no attribute {name!r}")
