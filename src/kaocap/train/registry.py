"""Registry of learners: one 3-line factory per model id, each with a card (timm style).

>>> from kaocap.train.registry import create_model, list_models   # needs kaocap[train]
>>> sorted(list_models())                                          # doctest: +SKIP
['blendshapes_cnn_s', 'blendshapes_cnn_s_lmk', 'blendshapes_cnn_xs', 'blendshapes_feat_mlp', ...]
>>> net = create_model("blendshapes_cnn_s")                        # doctest: +SKIP
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import Any

from kaocap.errors import ConfigError


@dataclass(frozen=True)
class LearnerCard:
    """What a learner is and how it trains by default.

    input_kind: "image" | "features" | "mesh" | "hybrid" | "rules" (kaocap.blendshapes.learned).
    image_size: crop side in px (image learners). train_steps: default length of a run in
    optimiser steps (``--epochs`` overrides it), sized from the measured step time so that a full
    run fits 2 hours on the 2-core machine. batch_size, lr, weight_decay: AdamW with a cosine
    schedule. landmark_aux: weight of the auxiliary landmark loss (0 = none).
    """

    model_id: str
    family: str
    input_kind: str
    description: str
    image_size: int = 128
    train_steps: int = 12_000
    batch_size: int = 64
    lr: float = 2e-3
    weight_decay: float = 0.05
    landmark_aux: float = 0.0
    extra: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


_FACTORIES: dict[str, Callable[..., Any]] = {}
CARDS: dict[str, LearnerCard] = {}


def register_model(card: LearnerCard) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """Decorator: register ``fn`` as the factory of ``card.model_id``."""

    def wrap(fn: Callable[..., Any]) -> Callable[..., Any]:
        if card.model_id != fn.__name__:
            raise ValueError(f"factory {fn.__name__} must be named after its card {card.model_id}")
        _FACTORIES[card.model_id] = fn
        CARDS[card.model_id] = card
        return fn

    return wrap


def list_models() -> list[str]:
    return list(_FACTORIES)


def get_card(model_id: str) -> LearnerCard:
    try:
        return CARDS[model_id]
    except KeyError:
        raise ConfigError(f"unknown model {model_id!r}; known: {', '.join(CARDS)}") from None


def create_model(model_id: str, **kwargs: Any) -> Any:
    """A fresh (untrained) learner: a torch module, or a RuleSolver for the rules baseline."""
    get_card(model_id)
    return _FACTORIES[model_id](**kwargs)


def _num_features() -> int:
    from kaocap.blendshapes.features import NUM_FEATURES

    return NUM_FEATURES


def _nets():
    from kaocap.train import nets

    return nets


# Default run lengths (optimiser steps) from step times measured with ``kaocap train --model X
# --time-steps 20`` (batch 64 for the CNNs, 256 for the MLPs): the CNN's ~0.5 s per step on the
# 2 cores gives 12k steps ~ 100 min + loading, validation and export; the MLPs cost 15-90 ms.
_MLP: dict[str, Any] = {"train_steps": 15_000, "batch_size": 256, "lr": 2e-3}


@register_model(LearnerCard("blendshapes_feat_mlp", "feature_mlp", "features", "MLP on geometric mesh features (SuperCV (a))", **_MLP))
def blendshapes_feat_mlp(**kw: Any) -> Any:
    return _nets().FeatureMLP(_num_features(), **kw)


@register_model(LearnerCard("blendshapes_mesh_mlp", "mesh_mlp", "mesh", "MLP on the normalised 478-point mesh (SuperCV (b))", **_MLP))
def blendshapes_mesh_mlp(**kw: Any) -> Any:
    return _nets().MeshMLP(**kw)


@register_model(LearnerCard("blendshapes_hybrid_mlp", "hybrid_mlp", "hybrid", "features + mesh branches (SuperCV (c))", **_MLP))
def blendshapes_hybrid_mlp(**kw: Any) -> Any:
    return _nets().HybridMLP(_num_features(), **kw)


@register_model(LearnerCard("blendshapes_cnn_s", "cnn", "image", "MobileNetV3-small-class CNN on 128 px crops (SuperCV (d))"))
def blendshapes_cnn_s(**kw: Any) -> Any:
    return _nets().ImageCNN(width=1.0, **kw)


@register_model(LearnerCard("blendshapes_cnn_s_lmk", "cnn", "image", "blendshapes_cnn_s + auxiliary 478-landmark target", landmark_aux=1.0))
def blendshapes_cnn_s_lmk(**kw: Any) -> Any:
    return _nets().ImageCNN(width=1.0, landmark_aux=True, **kw)


#: The second face CNN: the landmark target, a global depthwise pooling that keeps where in the
#: crop a feature is (gaze, mouth corners) and a loss that weighs every shape by its spread.
_CNN2: dict[str, Any] = {"landmark_aux": 1.0, "extra": {"loss": {"standardised": 0.1}}}


@register_model(LearnerCard("blendshapes_cnn_s_gd", "cnn", "image", "blendshapes_cnn_s_lmk + global depthwise pooling + per-shape standardised loss", **_CNN2))
def blendshapes_cnn_s_gd(**kw: Any) -> Any:
    return _gdconv_cnn("blendshapes_cnn_s_gd", **kw)


def _gdconv_cnn(model_id: str, **kw: Any) -> Any:
    """The landmark CNN with global depthwise pooling, its kernel sized from the card's image_size."""
    kw.setdefault("image_size", CARDS[model_id].image_size)
    return _nets().ImageCNN(width=1.0, landmark_aux=True, pool="gdconv", **kw)


#: The second face CNN trained on mirrored faces half the time (labels swapped left/right):
#: twice the faces, no side favoured. Measured worse than blendshapes_cnn_s_gd on every
#: measure (README): the MediaPipe teacher is not mirror-symmetric, so a symmetric student
#: agrees less with it. Kept for exact-label data, where that does not hold.
_CNN2_FLIP: dict[str, Any] = {**_CNN2, "extra": {**_CNN2["extra"], "augment": {"flip": 0.5}}}


@register_model(LearnerCard("blendshapes_cnn_s_gdf", "cnn", "image", "blendshapes_cnn_s_gd + horizontal flips with left/right labels swapped", **_CNN2_FLIP))
def blendshapes_cnn_s_gdf(**kw: Any) -> Any:
    return _gdconv_cnn("blendshapes_cnn_s_gdf", **kw)


@register_model(LearnerCard("blendshapes_cnn_xs", "cnn", "image", "0.75-width MobileNetV3-small-class CNN on 128 px crops", train_steps=14_000))
def blendshapes_cnn_xs(**kw: Any) -> Any:
    return _nets().ImageCNN(width=0.75, **kw)


#: The head learner: every yaw, crops re-cut on the upright head ROI and jittered far more than
#: the face learners' (the pipeline follows a turning head with its ``roi`` output, so it must
#: pull an off-centre crop back), 20% face-free crops, rear views drawn 3x as often; no
#: blendshape loss (a face it cannot see has none).
_HEAD: dict[str, Any] = {
    "train_steps": 6_000,
    "extra": {"augment": {"shift": 0.15, "scale": 0.2, "rotation_deg": 25.0}, "negative_fraction": 0.2,
              "rear_weight": 3.0, "loss": {"bce": 0.0, "l1": 0.0, "translation": 0.0, "rotation": 2.0}},
}  # fmt: skip


@register_model(LearnerCard("head_cnn_xs", "head", "image", "full-range head learner (360 deg yaw, head ROI, presence) on 128 px crops", **_HEAD))
def head_cnn_xs(**kw: Any) -> Any:
    return _nets().HeadCNN(width=0.75, **kw)


@register_model(LearnerCard("blendshapes_rules", "rules", "rules", "rule-based geometric solver, per-shape ranges fitted on data (MeFaMo/KalidoKit spirit)", train_steps=0))
def blendshapes_rules(**kw: Any) -> Any:
    from kaocap.blendshapes.rules import RuleSolver

    return RuleSolver(**kw)
