"""Neutral-face calibration: make the user's resting face read 0 on every blendshape.

Record a few seconds of the resting face; for each shape the rest level ``n`` is the median
over those frames, and values are remapped ``v -> clip((v - n) / (1 - n), 0, 1)``, so rest
reads 0 and a full activation still reads 1. Rest levels differ between face models, so the file
records the model it was made with and a pipeline with another model refuses it.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from numpy.typing import NDArray

from kaocap.constants import BLENDSHAPES
from kaocap.errors import ConfigError
from kaocap.types import FrameResult

#: Rest levels at or above this are treated as saturated: the shape is left as it is.
_MAX_REST = 0.95


@dataclass(frozen=True, slots=True)
class Calibration:
    """neutral: (52,) float32 rest level per shape, order BLENDSHAPES; frames: how many were used;
    model: the face model that made it (PipelineConfig.model; "" in files from before it was kept)."""

    neutral: NDArray[np.float32]
    frames: int
    model: str = ""

    def apply(self, values: NDArray[np.float32]) -> NDArray[np.float32]:
        """Remap (52,) blendshape values so that the rest level reads 0."""
        n = np.where(self.neutral < _MAX_REST, self.neutral, 0.0)
        return np.clip((values - n) / (1.0 - n), 0.0, 1.0).astype(np.float32)

    def save(self, path: str | Path) -> None:
        data = {"frames": self.frames, "model": self.model, "neutral": dict(zip(BLENDSHAPES, map(float, self.neutral)))}
        Path(path).write_text(json.dumps(data, indent=1))

    @classmethod
    def load(cls, path: str | Path) -> Calibration:
        try:
            data = json.loads(Path(path).read_text())
            neutral = np.array([data["neutral"][n] for n in BLENDSHAPES], dtype=np.float32)
            return cls(neutral, int(data["frames"]), str(data.get("model", "")))
        except (OSError, ValueError, KeyError, TypeError) as exc:
            raise ConfigError(f"calibration file {path} is unreadable or incomplete: {exc}") from exc

    @classmethod
    def from_results(cls, results: Iterable[FrameResult], *, min_frames: int = 10, model: str = "") -> Calibration:
        """Rest levels from frames of a resting face (the first face of each frame), made by ``model``."""
        samples = [r.faces[0].blendshapes for r in results if r.faces]
        if len(samples) < min_frames:
            raise ConfigError(f"calibration needs at least {min_frames} frames with a face, got {len(samples)}")
        return cls(np.median(np.stack(samples), axis=0).astype(np.float32), len(samples), model)

    def check_model(self, model: str, path: str | Path) -> None:
        """ConfigError (one line) when this calibration was made with another face model."""
        if self.model and self.model != model:
            raise ConfigError(f"calibration {path} was recorded with --model {self.model}, this run uses --model "
                              f"{model}: record it again with 'kaocap calibrate --model {model}' or run with --model {self.model}")  # fmt: skip
