"""Model cards of trained learners: what the file is, what it was trained on, how well it does.

The card is written as ``<model_id>.card.json`` beside the weights (with the sha256 of every
file) and embedded in the ONNX file (without its own sha256, which it cannot contain).
"""

from __future__ import annotations

import json
import platform
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from kaocap.blendshapes.features import NUM_FEATURES
from kaocap.constants import BLENDSHAPES
from kaocap.models import sha256_file
from kaocap.train.registry import LearnerCard
from kaocap.train.samples import SampleSet

_OUTPUTS = [
    {"name": "blendshapes", "shape": [-1, len(BLENDSHAPES)], "desc": "0..1, kaocap.BLENDSHAPES order (Apple's), tongueOut included"},
    {"name": "rotation_6d", "shape": [-1, 6], "desc": "head rotation as the upright crop sees it: first two columns "
     "(Zhou et al. 2019); camera frame = Rz(-roi rotation) @ R (kaocap.blendshapes.features.crop_to_camera_rotation)"},
    {"name": "translation_cm", "shape": [-1, 3], "desc": "head position, camera frame (kaocap.types), cm"},
]  # fmt: skip
_LANDMARKS = {"name": "landmarks", "shape": [-1, 478, 3], "desc": "crop-normalised landmarks: x, y 0..1 across "
              "the crop, z / crop side (MediaPipe's 478-point topology)"}  # fmt: skip


def input_specs(card: LearnerCard) -> list[dict[str, Any]]:
    """Input names, shapes and normalisation of a learner kind (kaocap.blendshapes.learned)."""
    s = card.image_size
    specs = {
        "image": {"name": "image", "shape": [-1, 3, s, s], "layout": "NCHW",
                  "desc": f"RGB float32 0..1, the ROI's upright crop (kaocap.types.Roi.crop_matrix({s}))"},
        "features": {"name": "features", "shape": [-1, NUM_FEATURES],
                     "desc": "kaocap.blendshapes.features.geometric_features of the crop-normalised mesh"},
        "mesh": {"name": "mesh", "shape": [-1, 1434], "desc": "kaocap.blendshapes.features.normalise_mesh, flattened"},
    }  # fmt: skip
    names = {"image": ["image"], "features": ["features"], "mesh": ["mesh"], "hybrid": ["features", "mesh"],
             "rules": []}[card.input_kind]  # fmt: skip
    return [specs[n] for n in names]


def data_summary(roots: Sequence[Path], samples: SampleSet, mix: dict[str, float] | None) -> dict[str, Any]:
    """What the learner was trained on: dataset directories (and their manifests' ids), counts."""
    from kaocap.data.shards import read_manifest

    manifests = {}
    for root in roots:
        try:
            m = read_manifest(Path(root))
            manifests[str(root)] = {k: m[k] for k in ("name", "kind", "seed", "schema_version") if k in m}
        except (OSError, ValueError):
            manifests[str(root)] = {}
    people = {d: len(np.unique(samples.person[samples.domain == d])) for d in sorted(set(samples.domain))}
    return {"datasets": manifests, "train_samples": samples.counts(), "train_people": people, "mix": mix}


def base_card(card: LearnerCard, learner: Any, cfg: Any, hp: dict[str, Any], train: SampleSet,
              metrics: dict[str, Any], history: dict[str, Any], wall_s: float) -> dict[str, Any]:  # fmt: skip
    """Everything but the files' sha256."""
    params = 0
    if hasattr(learner, "parameters"):
        from kaocap.train.nets import count_parameters

        params = count_parameters(learner)
    step_s, step_cpu = history.get("step_s", []), history.get("step_cpu_s", [])
    return {
        "model_id": card.model_id, "family": card.family, "task": "52 ARKit blendshapes + head rotation (6D) + translation",
        "description": card.description, "input_kind": card.input_kind, "image_size": card.image_size,
        "inputs": input_specs(card), "outputs": _OUTPUTS + ([_LANDMARKS] if card.landmark_aux else []), "params": int(params),
        "size_mb_fp16": round(params * 2 / 1e6, 3), "licence": "Apache-2.0",
        "data": data_summary(cfg.data, train, cfg.mix), "hyper_parameters": hp, "seed": cfg.seed,
        "max_steps": cfg.max_steps, "steps": len(history.get("loss", [])),
        "step_time_ms": round(float(np.median(step_s[2:] or step_s)) * 1000, 2) if step_s else None,
        "step_cpu_ms": round(float(np.median(step_cpu[2:] or step_cpu)) * 1000, 2) if step_cpu else None,
        "history": history.get("epochs", []), "final_loss": history["loss"][-1] if history.get("loss") else None,
        "metrics": metrics, "command": cfg.command, "wall_time_s": round(wall_s, 1),
        "machine": {"cpus": _cpus(), "python": platform.python_version(), "torch": _torch_version()},
        "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
    }  # fmt: skip


def finish_card(info: dict[str, Any], out: Path, files: Sequence[Path], wall_s: float) -> Path:
    """Add the sha256 of ``files`` and the total wall time; write ``<model_id>.card.json``."""
    info["sha256"] = {Path(f).name: sha256_file(Path(f)) for f in files}
    info["total_wall_time_s"] = round(wall_s, 1)
    path = out / f"{info['model_id']}.card.json"
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(info, indent=1, sort_keys=True))
    tmp.replace(path)
    return path


def _cpus() -> int:
    import os

    return len(os.sched_getaffinity(0))


def _torch_version() -> str | None:
    try:
        import torch

        return str(torch.__version__)
    except ImportError:
        return None
