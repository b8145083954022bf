"""Training losses. All take the learner's output dict (kaocap.train.nets) and a batch dict.

Batch keys: ``blendshapes`` (N, 52) 0..1, ``valid`` (N, 52) bool (tongueOut is False on real
samples), ``rotation_crop`` (N, 3, 3), ``translation_cm`` (N, 3), and for the landmark aux
target ``landmarks`` (N, 478, 3) crop-normalised (NaN where unknown); for head learners ``roi``
(N, 4) (kaocap.train.nets.ROI_FIELDS, NaN where unknown) and ``presence`` (N,) 0/1.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch.nn import functional as F

from kaocap.train.nets import TRANSLATION_SCALE_CM, rotation_6d_to_matrix


@dataclass(frozen=True)
class LossWeights:
    """Weights of the terms: blendshape BCE and L1, rotation geodesic (rad), translation L1
    (in units of TRANSLATION_SCALE_CM), landmark L1 (crop-normalised units x 10), head ROI
    L1 (crop sides, log scale, rad; x 10) and head presence BCE (head learners only).
    standardised: squared blendshape error over each shape's spread in the training labels
    (:func:`standardised_blendshape_loss`)."""

    bce: float = 1.0
    l1: float = 1.0
    rotation: float = 1.0
    translation: float = 0.1
    landmarks: float = 0.0
    roi: float = 1.0
    presence: float = 0.5
    standardised: float = 0.0


def masked_blendshape_losses(logits: torch.Tensor, target: torch.Tensor, valid: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(BCE with soft targets, L1 of sigmoid) averaged over the valid entries of (N, 52)."""
    mask = valid.to(logits.dtype)
    count = mask.sum().clamp_min(1.0)
    bce = F.binary_cross_entropy_with_logits(logits, target, reduction="none")
    l1 = (torch.sigmoid(logits) - target).abs()
    return (bce * mask).sum() / count, (l1 * mask).sum() / count


def standardised_blendshape_loss(logits: torch.Tensor, target: torch.Tensor, valid: torch.Tensor,
                                 shape_std: torch.Tensor) -> torch.Tensor:
    """Mean ((sigmoid - target) / std)^2 over the valid entries of (N, 52); ``shape_std`` (52,)
    is each shape's standard deviation in the training labels.

    Pearson r is blind to a shape's scale, BCE and L1 are not: a shape that barely moves (gaze,
    frown, jaw sideways) costs them almost nothing when predicted flat. Dividing by the spread
    weighs every shape's ups and downs alike, which is what the per-shape r rewards.
    """
    mask = valid.to(logits.dtype)
    z = (torch.sigmoid(logits) - target) / shape_std
    return (z.square() * mask).sum() / mask.sum().clamp_min(1.0)


def label_spread(blendshapes, valid, floor: float = 0.02) -> torch.Tensor:
    """(52,) standard deviation of each shape over its valid training labels (at least ``floor``)."""
    b, v = torch.as_tensor(blendshapes, dtype=torch.float64), torch.as_tensor(valid).to(torch.float64)
    n = v.sum(dim=0).clamp_min(1.0)
    mean = (b * v).sum(dim=0) / n
    std = (((b - mean) ** 2 * v).sum(dim=0) / n).sqrt()
    return std.clamp_min(floor).to(torch.float32)


def geodesic_loss(rotation_6d: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Mean angle (rad) between the predicted (N, 6) and target (N, 3, 3) rotations; rows with a
    non-finite target are skipped."""
    ok = torch.isfinite(target).flatten(1).all(dim=1)
    if not bool(ok.any()):
        return rotation_6d.sum() * 0.0
    pred = rotation_6d_to_matrix(rotation_6d[ok])
    rel = pred.transpose(1, 2) @ target[ok]
    cos = (rel.diagonal(dim1=1, dim2=2).sum(dim=1) - 1.0) / 2.0
    return torch.acos(cos.clamp(-1.0 + 1e-6, 1.0 - 1e-6)).mean()


def masked_l1(pred: torch.Tensor, target: torch.Tensor, scale: float = 1.0) -> torch.Tensor:
    """Mean |pred - target| / scale over the finite target entries."""
    ok = torch.isfinite(target)
    if not bool(ok.any()):
        return pred.sum() * 0.0
    return (pred[ok] - target[ok]).abs().mean() / scale


def total_loss(out: dict[str, torch.Tensor], batch: dict[str, torch.Tensor], w: LossWeights,
               shape_std: torch.Tensor | None = None) -> tuple[torch.Tensor, dict[str, float]]:  # fmt: skip
    """Weighted sum and its parts (as floats, for logging). ``shape_std`` (52,), from
    :func:`label_spread`, is needed when ``w.standardised`` > 0."""
    bce, l1 = masked_blendshape_losses(out["blend_logits"], batch["blendshapes"], batch["valid"])
    parts = {
        "bce": bce,
        "l1": l1,
        "rotation": geodesic_loss(out["rotation_6d"], batch["rotation_crop"]),
        "translation": masked_l1(out["translation_cm"], batch["translation_cm"], TRANSLATION_SCALE_CM),
    }
    if w.standardised > 0:
        if shape_std is None:
            raise ValueError("the standardised blendshape loss needs shape_std (label_spread of the training set)")
        parts["standardised"] = standardised_blendshape_loss(out["blend_logits"], batch["blendshapes"], batch["valid"], shape_std)
    if w.landmarks > 0 and "landmarks" in out:
        parts["landmarks"] = masked_l1(out["landmarks"], batch["landmarks"]) * 10.0
    if "roi" in out and "roi" in batch:
        parts["roi"] = masked_l1(out["roi"], batch["roi"]) * 10.0
        parts["presence"] = F.binary_cross_entropy_with_logits(out["presence_logit"], batch["presence"])
    total = sum(getattr(w, k) * v for k, v in parts.items())
    return total, {k: float(v.detach()) for k, v in parts.items()}
