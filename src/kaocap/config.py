"""Configuration: a frozen dataclass per component, composed by PipelineConfig.

TOML files map onto the same dataclasses (``[detector]``, ``[tracking]``, ``[filter]``,
``[runtime]`` tables plus top-level keys); unknown keys and values of the wrong type fail with
one line and a "did you mean" hint. Nothing is auto-corrected.
"""

from __future__ import annotations

import dataclasses
import difflib
import tomllib
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from kaocap.errors import ConfigError

#: Face models the pipeline can run (PipelineConfig.model).
MODELS = ("kaocap", "mediapipe")

@dataclass(frozen=True, slots=True)
class DetectorConfig:
    """min_score: BlazeFace score threshold. nms_iou: weighted-NMS overlap. small_faces: when the
    full-frame pass finds fewer faces than wanted, search again in overlapping tiles (finds
    faces down to ~4% of the frame height). tile_fraction: tile side / frame short side."""

    min_score: float = 0.5
    nms_iou: float = 0.3
    small_faces: bool = True
    tile_fraction: float = 0.6


@dataclass(frozen=True, slots=True)
class TrackingConfig:
    """enabled: crop each frame from the last landmarks (VIDEO mode); off = detect every frame.
    min_presence: landmark-network presence below which a face is lost. redetect_interval:
    also re-run the detector every N frames while tracking (0 = only when faces are missing).
    find_heads: while tracking fewer faces than ``max_faces``, look every
    ``head_find_interval`` frames for heads seen from the side or behind (MediaPipe's BlazePose
    body networks, kaocap.detect.body) and track them with kaocap's head model."""

    enabled: bool = True
    min_presence: float = 0.5
    redetect_interval: int = 0
    find_heads: bool = True
    head_find_interval: int = 10


@dataclass(frozen=True, slots=True)
class FilterConfig:
    """One Euro filtering of landmarks, blendshapes and pose. enabled: None = on for live
    sources (camera) and off otherwise."""

    enabled: bool | None = None
    min_cutoff: float = 1.5
    beta: float = 0.05
    d_cutoff: float = 1.0
    blendshape_min_cutoff: float = 3.0
    blendshape_beta: float = 1.0


@dataclass(frozen=True, slots=True)
class RuntimeConfig:
    """Inference runtime per network (openvino, litert, onnxruntime; "" = measured default)
    and intra-op threads per network. ``face`` is kaocap's own face model (model = "kaocap")."""

    detector: str = ""
    landmarks: str = ""
    blendshapes: str = ""
    face: str = ""
    threads: int = 1


@dataclass(frozen=True, slots=True)
class PipelineConfig:
    """Everything the pipeline needs. model: the face model, "kaocap" (kaocap's own CNN, the
    default) or "mediapipe" (MediaPipe's landmark + blendshape networks). calibration: path of
    a neutral-face calibration JSON."""

    model: str = "kaocap"
    max_faces: int = 1
    detector: DetectorConfig = field(default_factory=DetectorConfig)
    tracking: TrackingConfig = field(default_factory=TrackingConfig)
    filter: FilterConfig = field(default_factory=FilterConfig)
    runtime: RuntimeConfig = field(default_factory=RuntimeConfig)
    calibration: str = ""

    def __post_init__(self) -> None:
        if self.model not in MODELS:
            raise ConfigError(f"model must be one of {', '.join(MODELS)}, got {self.model!r}")
        if self.max_faces < 1:
            raise ConfigError(f"max_faces must be >= 1, got {self.max_faces}")
        if self.runtime.threads < 1:
            raise ConfigError(f"runtime.threads must be >= 1, got {self.runtime.threads}")
        if self.tracking.head_find_interval < 1:
            raise ConfigError(f"tracking.head_find_interval must be >= 1, got {self.tracking.head_find_interval}")
        for name in ("min_score", "nms_iou"):
            value = getattr(self.detector, name)
            if not 0.0 <= value <= 1.0:
                raise ConfigError(f"detector.{name} must be in 0..1, got {value}")

    @classmethod
    def image_mode(cls, **changes: Any) -> PipelineConfig:
        """MediaPipe's networks, a detection on every frame, no smoothing: MediaPipe's IMAGE mode,
        what the teacher, the data builders and the evaluations run (``changes`` as in replace)."""
        return cls(model="mediapipe", tracking=TrackingConfig(enabled=False), filter=FilterConfig(enabled=False),
                   **changes)  # fmt: skip

    def replace(self, **changes: Any) -> PipelineConfig:
        """A copy with top-level fields replaced, e.g. ``cfg.replace(max_faces=2)``."""
        return dataclasses.replace(self, **changes)


@dataclass(frozen=True, slots=True)
class RunOptions:
    """The ``[run]`` table: what ``kaocap run`` does besides the pipeline. Empty strings and
    zeros mean "not set" (TOML has no null): input "" = the embedded portrait, camera -1 = none,
    max_frames 0 = all, max_fps 0 = uncapped."""

    input: str = ""
    camera: int = -1
    jsonl: str = ""
    csv: str = ""
    preview: str = ""
    send: tuple[str, ...] = ()
    landmarks: bool = True
    max_frames: int = 0
    max_fps: float = 0.0
    stats: bool = False


def _read_toml(path: str | Path) -> dict[str, Any]:
    try:
        return tomllib.loads(Path(path).read_text())
    except OSError as exc:
        raise ConfigError(f"cannot read config {path}: {exc.strerror or exc}") from exc
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"config {path} is not valid TOML: {exc}") from exc


def load_config(path: str | Path) -> PipelineConfig:
    """Read the pipeline part of a TOML file (a ``[run]`` table is allowed and ignored here)."""
    return load_file(path)[0]


def load_file(path: str | Path) -> tuple[PipelineConfig, RunOptions]:
    """Read a TOML file into (PipelineConfig, RunOptions); unknown keys or bad types raise
    ConfigError with one line and a "did you mean" hint."""
    data = _read_toml(path)
    run = data.pop("run", {})
    if not isinstance(run, dict):
        raise ConfigError("config key 'run' must be a table")
    return from_dict(PipelineConfig, data), from_dict(RunOptions, run, prefix="run.")


def from_dict(cls: type, data: dict[str, Any], prefix: str = "") -> Any:
    """Build dataclass ``cls`` from nested dicts, rejecting unknown keys and wrong types."""
    hints = typing.get_type_hints(cls)
    names = [f.name for f in dataclasses.fields(cls)]
    kwargs = {}
    for key, value in data.items():
        if key not in names:
            if cls is PipelineConfig:
                names = [*names, "run"]
            close = difflib.get_close_matches(key, names, n=1)
            hint = f" (did you mean {prefix + close[0]!r}?)" if close else f" (known: {', '.join(names)})"
            raise ConfigError(f"unknown config key {prefix + key!r}{hint}")
        kwargs[key] = _coerce(hints[key], value, f"{prefix}{key}")
    try:
        return cls(**kwargs)
    except (TypeError, ValueError) as exc:
        raise ConfigError(str(exc)) from exc


def _coerce(hint: Any, value: Any, name: str) -> Any:
    if dataclasses.is_dataclass(hint):
        if not isinstance(value, dict):
            raise ConfigError(f"config key {name!r} must be a table")
        return from_dict(hint, value, prefix=f"{name}.")
    if typing.get_origin(hint) is tuple:
        item = typing.get_args(hint)[0]
        if not isinstance(value, list) or not all(isinstance(v, item) for v in value):
            raise ConfigError(f"config key {name!r} must be a list of {item.__name__}, got {value!r}")
        return tuple(value)
    allowed = typing.get_args(hint) if isinstance(hint, types.UnionType) else (hint,)
    for typ in allowed:
        if typ is type(None) and value is None:
            return value
        if typ is float and isinstance(value, int) and not isinstance(value, bool):
            return float(value)
        if typ is not type(None) and isinstance(value, typ) and not (typ is int and isinstance(value, bool)):
            return value
    wanted = " or ".join(getattr(t, "__name__", str(t)) for t in allowed)
    raise ConfigError(f"config key {name!r} must be {wanted}, got {type(value).__name__} {value!r}")
