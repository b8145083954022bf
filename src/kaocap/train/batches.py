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

from kaocap.blendshapes.features import geometric_features, normalise_mesh, rotation_z
from kaocap.pose import head
from kaocap.train.augment import AugmentConfig, affine_batch, colour_batch, flip_batch
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


def label_arrays(samples: SampleSet, idx: NDArray[np.intp]) -> dict[str, NDArray]:
    """Labels of the samples ``idx`` (copies, see kaocap.train.losses for the keys)."""
    return {
        "blendshapes": samples.blendshapes[idx],
        "valid": samples.valid[idx],
        "rotation_crop": samples.rotation_crop[idx],
        "translation_cm": samples.translation_cm[idx],
        "landmarks": samples.landmarks[idx],
    }


def label_batch(samples: SampleSet, idx: NDArray[np.intp]) -> dict[str, torch.Tensor]:
    """Labels of the samples ``idx`` as tensors (see kaocap.train.losses)."""
    return {k: torch.from_numpy(v) for k, v in label_arrays(samples, idx).items()}


def image_batch(samples: SampleSet, idx: NDArray[np.intp], rng: np.random.Generator | None,
                cfg: AugmentConfig | None) -> tuple[dict[str, torch.Tensor], dict[str, torch.Tensor]]:  # fmt: skip
    """(inputs {"image": (B, 3, S, S) 0..1}, labels) with augmentation when ``rng`` is given.

    The image tensor is a channels-last view of the (B, S, S, 3) array (no copy): the CNN trains
    in channels-last memory format, which is the faster one for its depthwise convolutions on CPU.
    """
    labels = label_arrays(samples, idx)
    crops = samples.crops[idx]
    if rng is not None and cfg is not None:
        if cfg.flip > 0:
            crops = flip_batch(crops, labels, rng.random(len(idx)) < cfg.flip)
        crops, labels["landmarks"], labels["rotation_crop"] = affine_batch(
            crops, labels["landmarks"], labels["rotation_crop"], rng, cfg)
    images = np.multiply(crops, np.float32(1 / 255), dtype=np.float32)
    if rng is not None and cfg is not None:
        images = colour_batch(images, rng, cfg)
    tensors = {k: torch.from_numpy(v) for k, v in labels.items()}
    return {"image": torch.from_numpy(np.ascontiguousarray(images)).permute(0, 3, 1, 2)}, tensors


def head_batch(samples: SampleSet, idx: NDArray[np.intp], rng: np.random.Generator | None,
               cfg: AugmentConfig | None, negatives: NegativeCrops | None = None,
               negative_fraction: float = 0.0) -> tuple[dict[str, torch.Tensor], dict[str, torch.Tensor]]:  # fmt: skip
    """(inputs, labels) for head learners: each crop re-cut on the sample's head ROI
    (kaocap.pose.head, upright at any yaw), jittered by ``cfg`` (shift in ROI sides, scale as a
    log factor, rotation) when ``rng`` is given, with labels ``roi`` (where the head ROI is, as
    the jittered crop sees it) and ``presence`` 1; then ``negative_fraction`` of the batch
    replaced by crops of face-free backgrounds (presence 0, every other label unknown)."""
    labels = label_batch(samples, idx)
    crops, size = samples.crops[idx], samples.crops.shape[1]
    rot = samples.rotation_crop[idx].astype(np.float64)
    target = head.head_rois(samples.landmarks[idx] * size, rot)
    jitter = target.copy()
    if rng is not None and cfg is not None:
        n = len(idx)
        jitter[:, :2] += rng.uniform(-cfg.shift, cfg.shift, (n, 2)) * target[:, 2:3]
        jitter[:, 2] *= np.exp(rng.uniform(-cfg.scale, cfg.scale, n))
        jitter[:, 3] += np.radians(rng.uniform(-cfg.rotation_deg, cfg.rotation_deg, n))
    out = head.recut(crops, jitter)
    labels["rotation_crop"] = torch.from_numpy((rotation_z(jitter[:, 3]) @ rot).astype(np.float32))
    labels["landmarks"] = torch.full_like(labels["landmarks"], float("nan"))
    labels["roi"] = torch.from_numpy(head.relative_roi(target, jitter))
    labels["presence"] = torch.ones(len(idx))
    if rng is not None and negatives is not None and negative_fraction > 0:
        neg = np.flatnonzero(rng.random(len(idx)) < negative_fraction)
        out[neg] = negatives.sample(rng, len(neg), size)
        for key in ("rotation_crop", "translation_cm", "roi"):
            labels[key][neg] = float("nan")
        labels["valid"][neg] = False
        labels["presence"][neg] = 0.0
    images = np.multiply(out, np.float32(1 / 255), dtype=np.float32)
    if rng is not None and cfg is not None:
        images = colour_batch(images, rng, cfg)
    return {"image": torch.from_numpy(np.ascontiguousarray(images)).permute(0, 3, 1, 2)}, labels


class NegativeCrops:
    """Crops without a head: random parts of face-free background photos (the render engine's
    bank, kaocap.data.render_shards.default_bank) or, without photos, procedural backgrounds."""

    def __init__(self, seed: int = 0) -> None:
        from kaocap.data._render.appearance import noise_texture
        from kaocap.data.render import RenderConfig
        from kaocap.data.render_shards import default_bank

        self.bank = default_bank(RenderConfig(seed=seed))
        self._noise = noise_texture(seed=seed)

    def sample(self, rng: np.random.Generator, n: int, size: int) -> NDArray[np.uint8]:
        from kaocap.data._render.backgrounds import procedural_background

        out = np.empty((n, size, size, 3), np.uint8)
        for i in range(n):
            if self.bank is not None and len(self.bank) and rng.random() < 0.8:
                out[i] = self.bank.sample(rng, size)
            else:
                out[i] = procedural_background(rng, size, self._noise)
        return out


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
