"""From a SampleSet to torch batches: network inputs per learner kind, augmentation, labels.

Vector inputs (geometric features, normalised mesh) are computed once per set in numpy with the
same functions the runtime uses (kaocap.blendshapes.features); image batches are augmented on
the fly with a generator seeded by (seed, epoch, step), so a run is reproducible.
"""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
import torch
from numpy.typing import NDArray

from kaocap.blendshapes.features import geometric_features, normalise_mesh
from kaocap.train.augment import AugmentConfig, affine_batch, colour_batch
from kaocap.train.samples import SampleSet

_CHUNK = 4096


def vector_inputs(input_kind: str, samples: SampleSet) -> dict[str, NDArray[np.float32]]:
    """{"features": (N, F)} and/or {"mesh": (N, 1434)} float32 from ``samples.mesh``; rows whose
    mesh is unknown come out NaN (filter with ``SampleSet.mesh_ok``)."""
    out: dict[str, list[NDArray]] = {}
    for start in range(0, len(samples), _CHUNK):
        mesh = samples.mesh[start : start + _CHUNK]
        if input_kind in ("features", "hybrid", "rules"):
            out.setdefault("features", []).append(geometric_features(mesh))
        if input_kind in ("mesh", "hybrid"):
            out.setdefault("mesh", []).append(normalise_mesh(mesh).reshape(len(mesh), -1))
    return {k: np.concatenate(v) for k, v in out.items()}


def usable(input_kind: str, samples: SampleSet) -> NDArray[np.bool_]:
    """(N,) samples a learner of ``input_kind`` can train on (mesh learners need a mesh)."""
    if input_kind == "image":
        return np.ones(len(samples), bool)
    return samples.mesh_ok()


def label_batch(samples: SampleSet, idx: NDArray[np.intp]) -> dict[str, torch.Tensor]:
    """Labels of the samples ``idx`` as tensors (see kaocap.train.losses)."""
    return {
        "blendshapes": torch.from_numpy(samples.blendshapes[idx]),
        "valid": torch.from_numpy(samples.valid[idx]),
        "rotation_crop": torch.from_numpy(samples.rotation_crop[idx]),
        "translation_cm": torch.from_numpy(samples.translation_cm[idx]),
        "landmarks": torch.from_numpy(samples.landmarks[idx]),
    }


def image_batch(samples: SampleSet, idx: NDArray[np.intp], rng: np.random.Generator | None,
                cfg: AugmentConfig | None) -> tuple[dict[str, torch.Tensor], dict[str, torch.Tensor]]:  # fmt: skip
    """(inputs {"image": (B, 3, S, S) 0..1}, labels) with augmentation when ``rng`` is given.

    The image tensor is a channels-last view of the (B, S, S, 3) array (no copy): the CNN trains
    in channels-last memory format, which is the faster one for its depthwise convolutions on CPU.
    """
    labels = label_batch(samples, idx)
    crops = samples.crops[idx]
    if rng is not None and cfg is not None:
        crops, lm, rot = affine_batch(crops, samples.landmarks[idx], samples.rotation_crop[idx], rng, cfg)
        labels["landmarks"], labels["rotation_crop"] = torch.from_numpy(lm), torch.from_numpy(rot)
    images = np.multiply(crops, np.float32(1 / 255), dtype=np.float32)
    if rng is not None and cfg is not None:
        images = colour_batch(images, rng, cfg)
    return {"image": torch.from_numpy(np.ascontiguousarray(images)).permute(0, 3, 1, 2)}, labels


def vector_batch(inputs: dict[str, NDArray], samples: SampleSet, idx: NDArray[np.intp]) -> tuple[dict, dict]:
    """(inputs {name: (B, D)}, labels) for the vector learners."""
    return {k: torch.from_numpy(v[idx]) for k, v in inputs.items()}, label_batch(samples, idx)


def epoch_indices(weights: NDArray[np.float64], steps: int, batch_size: int, seed: int, epoch: int) -> NDArray[np.intp]:
    """(steps, batch_size) sample indices drawn with replacement by ``weights`` (a pure function
    of seed and epoch)."""
    rng = np.random.default_rng([seed, epoch, 0])
    return rng.choice(len(weights), size=(steps, batch_size), replace=True, p=weights)


def eval_batches(n: int, batch_size: int) -> Iterator[NDArray[np.intp]]:
    """Consecutive index blocks covering 0..n-1."""
    for start in range(0, n, batch_size):
        yield np.arange(start, min(n, start + batch_size))
